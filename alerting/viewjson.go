package alerting

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// appendTrend appends `,"trend":[…]`.
func appendTrend(b []byte, trend []TrendPoint) []byte {
	b = append(b, `,"trend":[`...)
	for i, p := range trend {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"at":`...)
		b = appendJSONTime(b, p.At)
		b = append(b, `,"score":`...)
		b = strconv.AppendInt(b, int64(p.Score), 10)
		if p.Partial {
			b = append(b, `,"partial":true`...)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString copies a string encoding/json would copy unchanged
// (printable ASCII but quotes, backslashes, <, > and &; valid UTF-8 but
// U+2028 and U+2029, which it escapes) and leaves any other to
// encoding/json itself. Units ("°C") and the NEWS2 monitoring frequency
// ("4–6-hourly") are in nearly every event.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return appendMarshalled(b, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return appendMarshalled(b, s)
		}
		i += size
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendMarshalled(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// appendJSONFloat is encoding/json's float64 encoding. Values are finite
// (ingest refuses the rest); a non-finite one is written as null rather
// than failing the whole event.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONTime is time.Time's MarshalJSON (RFC 3339 with nanoseconds);
// years it would refuse go through it so the result stays the same.
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		q, _ := json.Marshal(t)
		return append(b, q...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// kindsByName is vward.ReadingKinds's indices in the order of their names:
// the order in which encoding/json writes a row's vitals map.
var kindsByName = func() [vward.NumReadingKinds]int {
	var idx [vward.NumReadingKinds]int
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx[:], func(a, b int) int {
		return strings.Compare(string(vward.ReadingKinds[a]), string(vward.ReadingKinds[b]))
	})
	return idx
}()

// paramsByName is the NEWS2 parameters in the order of their names: the
// order of a Score's subscores map in JSON.
var paramsByName = func() [news2.NumParameters]news2.Parameter {
	var ps [news2.NumParameters]news2.Parameter
	for p := range news2.NumParameters {
		ps[p] = p
	}
	slices.SortFunc(ps[:], func(a, b news2.Parameter) int { return strings.Compare(a.String(), b.String()) })
	return ps
}()

// appendRowEvent appends a row's board event: byte for byte what
// encoding/json writes for Event{Type: "patient", Patient: &v}, v being
// viewOf(r) (TestPatientAppendEventMatchesRow), without the PatientView,
// its maps and its strings, which cost more than the encoding itself, and
// without encoding/json's reflection. A field added to PatientView must be
// added here too.
func appendRowEvent(b []byte, r *Row) []byte {
	b = append(b, `{"type":"patient","patient":{"patient":`...)
	b = appendJSONString(b, string(r.Patient))
	b = append(b, `,"ward":`...)
	b = appendJSONString(b, string(r.Ward))
	b = append(b, `,"name":`...)
	b = appendJSONString(b, r.Name)
	b = append(b, `,"spo2_scale":`...)
	b = strconv.AppendInt(b, int64(r.SpO2Scale), 10)
	if r.Paused {
		b = append(b, `,"paused":true`...)
	}
	b = append(b, `,"vitals":{`...)
	first := true
	for _, i := range kindsByName {
		v := &r.Vitals[i]
		if v.Kind == "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, string(v.Kind))
		b = append(b, `:{"value":`...)
		b = appendJSONFloat(b, v.Value)
		b = append(b, `,"display":`...)
		b = appendDisplay(b, v)
		if u := v.Kind.Unit(); u != "" {
			b = append(b, `,"unit":`...)
			b = appendJSONString(b, u)
		}
		b = append(b, `,"at":`...)
		b = appendJSONTime(b, v.At)
		b = append(b, '}')
	}
	b = append(b, '}')
	if r.Scored {
		b = append(b, `,"news2":`...)
		b = appendResultJSON(b, r.Result)
	}
	if len(r.Trend) > 0 {
		b = appendTrend(b, r.Trend)
	}
	if !r.LastSeen.IsZero() {
		b = append(b, `,"last_seen":`...)
		b = appendJSONTime(b, r.LastSeen)
	}
	return append(b, "}}"...)
}

// appendDisplay is appendJSONString(b, r.Display()) without the string: a
// number's display is its shortest form, which needs no escaping.
func appendDisplay(b []byte, r *vward.Reading) []byte {
	switch r.Kind {
	case vward.SupplementalOxygen, vward.Consciousness:
		return appendJSONString(b, r.Display())
	}
	b = append(b, '"')
	b = strconv.AppendFloat(b, r.Value, 'g', -1, 64)
	return append(b, '"')
}

// appendResultJSON is Score.appendJSON of NewScore(r), without the Score.
func appendResultJSON(b []byte, r news2.Result) []byte {
	b = append(b, `{"score":`...)
	b = strconv.AppendInt(b, int64(r.Score), 10)
	b = append(b, `,"risk":`...)
	b = appendJSONString(b, r.Risk.String())
	b = append(b, `,"red_score":`...)
	b = strconv.AppendBool(b, r.RedScore)
	b = append(b, `,"complete":`...)
	b = strconv.AppendBool(b, r.Complete)
	b = append(b, `,"missing":[`...)
	first := true
	for p := range news2.NumParameters {
		if !r.Has(p) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, p.String())
		}
	}
	b = append(b, `],"subscores":{`...)
	first = true
	for _, p := range paramsByName {
		if r.Has(p) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, p.String())
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(r.Subscores[p]), 10)
		}
	}
	b = append(b, `},"monitoring":`...)
	b = appendJSONString(b, r.Monitoring())
	b = append(b, `,"response":`...)
	return append(appendJSONString(b, r.Response()), '}')
}
