package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
)

// nowSecs is the test clock in SenML's seconds since the epoch.
var nowSecs = float64(now.Unix())

// A pack using base name, base time and base unit resolves to the same
// readings as device protocol v1, each at its own time.
func TestDecodeSenMLValidPack(t *testing.T) {
	payload := fmt.Sprintf(`[
		{"bn":"urn:dev:mac:0024befffe804ff1:","bt":%.0f,"bu":"%%","bver":10,"n":"spo2","v":94},
		{"n":"heart_rate","u":"beat/min","v":88,"t":-60},
		{"n":"respiratory_rate","u":"1/min","v":18,"t":-60.25},
		{"n":"temperature","u":"Cel","v":37.25},
		{"n":"supplemental_oxygen","vb":true},
		{"n":"consciousness","vs":"C"},
		{"n":"battery","u":"%%EL","v":82},
		{"n":"msg_id","vs":"ox-0042-000123"},
		{"n":"systolic_bp","u":"mmHg","v":120,"ut":60},
		{"n":"diastolic_bp","u":"mmHg","v":70,"future_field":1}
	]`, nowSecs-30)
	m, err := DecodeSenML(dev, []byte(payload), now, DefaultLimits())
	if err != nil {
		t.Fatalf("DecodeSenML: %v", err)
	}
	if m.MsgID != "ox-0042-000123" || m.Battery == nil || *m.Battery != 0.82 || len(m.Problems) != 0 {
		t.Fatalf("message = %+v (battery %v)", m, m.Battery)
	}
	at := now.Add(-30 * time.Second)
	want := []vward.Reading{
		{Kind: vward.SpO2, Value: 94, At: at},
		{Kind: vward.HeartRate, Value: 88, At: at.Add(-60 * time.Second)},
		{Kind: vward.RespiratoryRate, Value: 18, At: at.Add(-60250 * time.Millisecond)},
		{Kind: vward.Temperature, Value: 37.25, At: at},
		{Kind: vward.SupplementalOxygen, Value: 1, At: at},
		{Kind: vward.Consciousness, Value: float64(vward.Confused), At: at},
		{Kind: vward.SystolicBP, Value: 120, At: at},
		{Kind: vward.DiastolicBP, Value: 70, At: at},
	}
	if len(m.Readings) != len(want) {
		t.Fatalf("readings = %+v", m.Readings)
	}
	for i, w := range want {
		w.Device, w.MsgID = dev, "ox-0042-000123"
		if m.Readings[i] != w {
			t.Errorf("reading %d = %+v, want %+v", i, m.Readings[i], w)
		}
	}
}

// Without a msg_id record the id is derived from the payload: the same
// bytes give the same id (a redelivery dedups), other bytes another.
func TestDecodeSenMLDerivedMsgID(t *testing.T) {
	pack := func(v int) []byte {
		return fmt.Appendf(nil, `[{"bn":"ox-0042/","bt":%.0f,"n":"spo2","u":"%%","v":%d}]`, nowSecs, v)
	}
	a, err := DecodeSenML(dev, pack(94), now, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := DecodeSenML(dev, pack(94), now.Add(time.Minute), DefaultLimits())
	c, _ := DecodeSenML(dev, pack(95), now, DefaultLimits())
	if !strings.HasPrefix(a.MsgID, "senml-") || len(a.MsgID) != len("senml-")+32 {
		t.Errorf("derived msg_id = %q, want senml- and 32 hex digits", a.MsgID)
	}
	if a.MsgID != b.MsgID {
		t.Errorf("same payload gave msg_ids %q and %q", a.MsgID, b.MsgID)
	}
	if a.MsgID == c.MsgID {
		t.Errorf("different payloads share msg_id %q", a.MsgID)
	}
	if a.Readings[0].MsgID != a.MsgID || !a.Readings[0].At.Equal(now) {
		t.Errorf("reading = %+v", a.Readings[0])
	}
}

// A base value is added to each value that follows (RFC 8428 §4.1).
func TestDecodeSenMLBaseValue(t *testing.T) {
	payload := fmt.Sprintf(`[{"bt":%.0f,"bv":90,"bu":"%%","n":"spo2","v":4,"t":-1},{"n":"spo2","v":5}]`, nowSecs)
	m, err := DecodeSenML(dev, []byte(payload), now, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Readings) != 2 || m.Readings[0].Value != 94 || m.Readings[1].Value != 95 {
		t.Errorf("readings = %+v, want 94 and 95", m.Readings)
	}
}

// Each malformed pack is refused with its own code and a reason that says
// what was wrong and where.
func TestDecodeSenMLRejectsMalformed(t *testing.T) {
	bt := fmt.Sprintf(`"bt":%.0f`, nowSecs)
	rec := `{` + bt + `,"n":"spo2","u":"%","v":95}`
	tests := []struct {
		name, payload, code, reason string
	}{
		{"empty", ``, RejectJSON, "payload is empty"},
		{"object, not array", `{"n":"spo2","v":95}`, RejectJSON, "a SenML pack is a JSON array of record objects, got JSON object"},
		{"no record", `[]`, RejectEnvelope, "no record"},
		{"a key twice", `[` + rec + `,{"n":"spo2","u":"%","v":95,"v":70}]`, RejectJSON, "key [1].v appears more than once"},
		{"trailing data", `[` + rec + `] []`, RejectJSON, "after the SenML pack"},
		{"value wrong JSON type", `[{` + bt + `,"n":"spo2","u":"%","v":"95"}]`, RejectJSON, "expected float64"},
		{"too many records", `[` + strings.Repeat(rec+",", 500) + rec + `]`, RejectEnvelope, "501 records; the limit is 500"},
		{"too large", `[` + rec + `,{"n":"x","vs":"` + strings.Repeat("x", 70000) + `"}]`, RejectTooLarge, "the limit is 65536"},
		{"invalid UTF-8", "[{\"n\":\"spo2\xff\",\"v\":95}]", RejectEncoding, "not valid UTF-8"},
		{"newer version", `[{"bver":11,` + bt + `,"n":"spo2","u":"%","v":95}]`, RejectEnvelope, "SenML version 11 is newer than 10"},
		{"must-understand field", `[{` + bt + `,"n":"spo2","u":"%","v":95,"crit_":1}]`, RejectEnvelope, `record 0: field "crit_" must be understood`},
		{"two msg_ids", `[{"n":"msg_id","vs":"a"},{"n":"msg_id","vs":"b"},` + rec + `]`, RejectEnvelope, "more than one msg_id"},
		{"msg_id not a string", `[{"n":"msg_id","v":7},` + rec + `]`, RejectEnvelope, "msg_id must be a string value (vs)"},
		{"msg_id not printable", `[{"n":"msg_id","vs":"a\tb"},` + rec + `]`, RejectEnvelope, "printable ASCII"},
		{"relative time", `[{"n":"spo2","u":"%","v":95,"t":-5}]`, RejectTime, "readings[0] (spo2): time -5 is relative to now or missing"},
		{"no time at all", `[{"n":"spo2","u":"%","v":95}]`, RejectTime, "relative to now or missing"},
		{"time in the future", fmt.Sprintf(`[{"bt":%.0f,"n":"spo2","u":"%%","v":95}]`, nowSecs+3600), RejectTime, "in the future"},
		{"time far in the future", `[{"bt":1e300,"n":"spo2","u":"%","v":95}]`, RejectTime, "in the future"},
		{"time too old", fmt.Sprintf(`[{"bt":%.0f,"n":"spo2","u":"%%","v":95}]`, nowSecs-30*86400), RejectTime, "older than"},
		{"unknown name", `[{` + bt + `,"n":"glucose","u":"mmol/l","v":5}]`, RejectReadings, `readings[0] (glucose): unknown reading name "glucose"`},
		{"name missing", `[{` + bt + `,"u":"%","v":95}]`, RejectReadings, "readings[0]: name is missing"},
		{"name with a space", `[{` + bt + `,"n":"sp o2","u":"%","v":95}]`, RejectReadings, `name "sp o2" is not a valid SenML name`},
		{"unit missing", `[{` + bt + `,"n":"temperature","v":37}]`, RejectReadings, "unit is missing; temperature takes Cel"},
		{"wrong unit", `[{` + bt + `,"n":"temperature","u":"K","v":310}]`, RejectReadings, `unit "K" is not accepted for temperature; send Cel`},
		{"fahrenheit by range", `[{` + bt + `,"n":"temperature","u":"Cel","v":98.6}]`, RejectReadings, "outside the possible range 25–45"},
		{"value missing", `[{` + bt + `,"n":"spo2","u":"%"}]`, RejectReadings, "value is missing"},
		{"sum only", `[{` + bt + `,"n":"spo2","u":"%","s":95}]`, RejectReadings, "value must be a number (v)"},
		{"number as string", `[{` + bt + `,"n":"heart_rate","u":"beat/min","vs":"88"}]`, RejectReadings, "value must be a number (v)"},
		{"bool as number", `[{` + bt + `,"n":"supplemental_oxygen","v":1}]`, RejectReadings, "value must be a boolean (vb)"},
		{"bool with unit", `[{` + bt + `,"n":"supplemental_oxygen","u":"/","vb":true}]`, RejectReadings, "supplemental_oxygen takes no unit"},
		{"bad ACVPU", `[{` + bt + `,"n":"consciousness","vs":"X"}]`, RejectReadings, `consciousness "X" is not one of A, C, V, P, U`},
		{"glucose in mg/dL", `[{` + bt + `,"n":"blood_glucose","u":"mg/dL","v":110}]`, RejectReadings, `unit "mg/dL" is not accepted for blood_glucose; send mmol/L`},
		{"pain with a unit", `[{` + bt + `,"n":"pain_score","u":"%","v":30}]`, RejectReadings, `unit "%": pain_score is a 0–10 score and takes no unit`},
		{"pain under a base unit", `[{` + bt + `,"bu":"kg","n":"pain_score","v":3}]`, RejectReadings, "pain_score is a 0–10 score and takes no unit"},
		{"fall false", `[{` + bt + `,"n":"fall_event","vb":false}]`, RejectReadings, "a fall_event reports a fall, so it is always true"},
		{"fall as a number", `[{` + bt + `,"n":"fall_event","v":1}]`, RejectReadings, "value must be a boolean (vb)"},
		{"only a msg_id", `[{"n":"msg_id","vs":"a"}]`, RejectReadings, "no reading"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeSenML(dev, []byte(tc.payload), now, DefaultLimits())
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("DecodeSenML error = %v, want a *RejectError", err)
			}
			if re.Code != tc.code || !strings.Contains(re.Detail, tc.reason) {
				t.Errorf("rejection = %q: %q, want %q containing %q", re.Code, re.Detail, tc.code, tc.reason)
			}
		})
	}
}

// A bad record does not lose the good ones; a bad battery is a problem,
// not a reason to refuse the readings.
func TestDecodeSenMLPartlyBadPack(t *testing.T) {
	payload := fmt.Sprintf(`[{"bt":%.0f,"n":"spo2","u":"%%","v":95},
		{"n":"temperature","u":"degF","v":99},
		{"n":"battery","u":"%%EL","v":120},
		{"n":"heart_rate","u":"/min","v":72}]`, nowSecs)
	m, err := DecodeSenML(dev, []byte(payload), now, DefaultLimits())
	if err != nil {
		t.Fatalf("DecodeSenML: %v", err)
	}
	if len(m.Readings) != 2 || m.Readings[0].Kind != vward.SpO2 || m.Readings[1].Kind != vward.HeartRate || m.Battery != nil {
		t.Errorf("message = %+v, want spo2 and heart_rate and no battery", m)
	}
	want := `readings[1] (temperature): unit "degF" is not accepted for temperature; send Cel; readings[2] (battery): battery 1.2 is outside 0–1`
	if got := ProblemsText(m.Problems); got != want {
		t.Errorf("problems = %q\nwant       %q", got, want)
	}
}

// Every kind of protocol v1 has a SenML spelling: a numeric kind takes one
// of its units, the others a vb or vs value.
func TestSenMLCoversEveryKind(t *testing.T) {
	for _, k := range vward.ReadingKinds {
		var rec string
		switch k {
		case vward.SupplementalOxygen:
			rec = `"vb":false`
		case vward.Consciousness:
			rec = `"vs":"A"`
		case vward.FallEvent:
			rec = `"vb":true`
		case vward.PainScore:
			rec = `"v":3`
		default:
			us := SenMLUnits(k)
			if len(us) == 0 {
				t.Errorf("%s has no SenML unit", k)
				continue
			}
			r := k.PossibleRange()
			rec = fmt.Sprintf(`"u":%q,"v":%g`, us[0], (r.Min+r.Max)/2)
		}
		payload := fmt.Sprintf(`[{"bt":%.0f,"n":%q,%s}]`, nowSecs, k, rec)
		m, err := DecodeSenML(dev, []byte(payload), now, DefaultLimits())
		if err != nil || len(m.Readings) != 1 || m.Readings[0].Kind != k {
			t.Errorf("%s: %s → %+v, %v", k, payload, m.Readings, err)
		}
	}
}

// FuzzDecodeSenML: whatever a device sends, DecodeSenML returns without
// panicking, either a message with at least one valid, in-range, absolute
// reading or a coded rejection.
func FuzzDecodeSenML(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(`[{"bn":"urn:dev:x:","bt":%.0f,"n":"spo2","u":"%%","v":95},{"n":"msg_id","vs":"m"}]`, nowSecs)))
	f.Add([]byte(fmt.Sprintf(`[{"bt":%.3f,"bv":1,"n":"consciousness","vs":"V"},{"n":"supplemental_oxygen","vb":false,"t":-1.5}]`, nowSecs)))
	f.Add([]byte(`[{"n":"temperature","u":"Cel","v":37,"t":1e300}]`))
	f.Add([]byte(`[{"x_":1}]`))
	f.Add([]byte("[\xff]"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := DecodeSenML(dev, payload, now, DefaultLimits())
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) || re.Code == "" || re.Detail == "" {
				t.Fatalf("error %v is not a coded rejection", err)
			}
			return
		}
		if len(m.Readings) == 0 || m.MsgID == "" {
			t.Fatalf("accepted %+v", m)
		}
		for _, r := range m.Readings {
			if !r.Kind.Known() || !r.Kind.PossibleRange().Contains(r.Value) || r.MsgID != m.MsgID {
				t.Fatalf("accepted invalid reading %+v", r)
			}
			if r.At.After(now.Add(DefaultLimits().ClockSkew)) || r.At.Before(now.Add(-DefaultLimits().MaxAge)) {
				t.Fatalf("accepted a reading out of time %+v", r)
			}
		}
	})
}

func BenchmarkDecodeSenML(b *testing.B) {
	payload := []byte(fmt.Sprintf(`[{"bn":"urn:dev:mac:0024befffe804ff1:","bt":%.0f,"n":"spo2","u":"%%","v":94},
		{"n":"heart_rate","u":"beat/min","v":88},{"n":"respiratory_rate","u":"1/min","v":18},
		{"n":"temperature","u":"Cel","v":37.1},{"n":"battery","u":"%%EL","v":82},{"n":"msg_id","vs":"ox-0042-000123"}]`,
		nowSecs-60))
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := DecodeSenML(dev, payload, now, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}
