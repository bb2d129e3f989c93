package web

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/news2"
)

// The board's JSON (docs/websocket.md): the rows of the snapshot and of
// GET /api/v1/patients, and the events of the stream. A patient's row
// changes thousands of times a second, so its event is written by hand
// from the monitor's alerting.Row (appendRowEvent); everything else is
// encoding/json's of the types below.

// Vital is the latest value of one kind of reading, as the board shows it.
type Vital struct {
	Value   float64   `json:"value"`
	Display string    `json:"display"`
	Unit    string    `json:"unit,omitempty"`
	At      time.Time `json:"at"`
}

// PatientView is one row of the board.
type PatientView struct {
	Patient   vward.PatientID `json:"patient"`
	Ward      vward.WardID    `json:"ward"`
	Name      string          `json:"name"`
	SpO2Scale int             `json:"spo2_scale"`
	// Paused: in hospital for now; no alert is raised for them.
	Paused bool             `json:"paused,omitempty"`
	Vitals map[string]Vital `json:"vitals"`
	News2  *alerting.Score  `json:"news2,omitempty"`
	// Needs is what the patient's NEWS2 lacks to be full, each parameter
	// with when it was last measured; [] when it is complete. It is here
	// rather than in News2 so that a patient with no current value at all
	// says what to ask for too.
	Needs []alerting.Need `json:"needs"`
	// Trend is omitted when empty, and from a stream event when it has not
	// changed since the patient's previous event (docs/websocket.md): a
	// day's trend is most of a row's bytes and changes at most every few
	// minutes for a stable patient, whose row is sent every second.
	Trend    []alerting.TrendPoint `json:"trend,omitempty"`
	LastSeen time.Time             `json:"last_seen,omitzero"`
}

// Event is what the board's stream carries: a patient's row changed
// ("patient"), an alert did ("alert", docs/alerts.md), or a patient was
// discharged ("discharged").
type Event struct {
	Type    string          `json:"type"` // "patient", "alert" or "discharged"
	Patient *PatientView    `json:"patient,omitempty"`
	Alert   *alerting.Alert `json:"alert,omitempty"`
	// Change is the audit action of an alert event: raised, upgraded, …
	Change string `json:"change,omitempty"`
	// Page reports that the alert event needs a clinician now. Technical
	// alerts never page.
	Page bool `json:"page,omitempty"`
}

// eventOf is the board's event of what the monitor or the alert engine
// published. A discharge names only the patient and their ward.
func eventOf(e alerting.Event) Event {
	out := Event{Type: e.Type, Alert: e.Alert, Change: e.Change, Page: e.Page}
	if e.Patient != "" {
		out.Patient = &PatientView{Patient: e.Patient, Ward: e.Ward}
	}
	return out
}

// newPatientView is the board's row of a patient.
func newPatientView(r *alerting.Row) PatientView {
	v := PatientView{
		Patient: r.Patient, Ward: r.Ward, Name: r.Name, SpO2Scale: r.SpO2Scale, Paused: r.Paused,
		Vitals: make(map[string]Vital, len(r.Vitals)), Trend: r.Trend, LastSeen: r.LastSeen,
	}
	for _, rd := range r.Vitals {
		if rd.Kind != "" {
			v.Vitals[string(rd.Kind)] = Vital{Value: rd.Value, Display: rd.Display(), Unit: rd.Kind.Unit(), At: rd.At}
		}
	}
	if r.Scored {
		s := alerting.NewScore(r.Result)
		v.News2 = &s
	}
	v.Needs = r.Needs()
	return v
}

// patientViews is the board's rows of a snapshot, most acute first.
func patientViews(rows []alerting.Row) []PatientView {
	out := make([]PatientView, len(rows))
	for i := range rows {
		out[i] = newPatientView(&rows[i])
	}
	sortByAcuity(out)
	return out
}

// sortByAcuity orders rows by risk, then score, then name: whoever is
// deteriorating comes first.
func sortByAcuity(rows []PatientView) {
	rank := func(v PatientView) (int, int) {
		if v.News2 == nil {
			return -1, -1
		}
		var r news2.Risk
		_ = r.UnmarshalText([]byte(v.News2.Risk))
		return int(r), v.News2.Score
	}
	sort.SliceStable(rows, func(i, j int) bool {
		ri, si := rank(rows[i])
		rj, sj := rank(rows[j])
		if ri != rj {
			return ri > rj
		}
		if si != sj {
			return si > sj
		}
		return rows[i].Name < rows[j].Name
	})
}

// appendTrend appends `,"trend":[…]`.
func appendTrend(b []byte, trend []alerting.TrendPoint) []byte {
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
// newPatientView(r) (TestPatientAppendEventMatchesRow), without the
// PatientView, its maps and its strings, which cost more than the encoding
// itself, and without encoding/json's reflection. A field added to
// PatientView must be added here too.
func appendRowEvent(b []byte, r *alerting.Row) []byte {
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
	b = appendNeeds(b, r)
	if len(r.Trend) > 0 {
		b = appendTrend(b, r.Trend)
	}
	if !r.LastSeen.IsZero() {
		b = append(b, `,"last_seen":`...)
		b = appendJSONTime(b, r.LastSeen)
	}
	return append(b, "}}"...)
}

// appendNeeds appends `,"needs":[…]`: alerting.Row.Needs without the slice.
func appendNeeds(b []byte, r *alerting.Row) []byte {
	b = append(b, `,"needs":[`...)
	first := true
	for p := range news2.NumParameters {
		if r.Result.Has(p) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"parameter":`...)
		b = appendJSONString(b, p.String())
		if at, ok := r.LastAt(p); ok && !at.IsZero() {
			b = append(b, `,"last_at":`...)
			b = appendJSONTime(b, at)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendDisplay is appendJSONString(b, r.Display()) without the string: a
// number's display is its shortest form, which needs no escaping.
func appendDisplay(b []byte, r *vward.Reading) []byte {
	switch r.Kind {
	case vward.SupplementalOxygen, vward.Consciousness, vward.FallEvent:
		return appendJSONString(b, r.Display())
	}
	b = append(b, '"')
	b = strconv.AppendFloat(b, r.Value, 'g', -1, 64)
	return append(b, '"')
}

// appendResultJSON is encoding/json's alerting.NewScore(r), without the
// Score.
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
