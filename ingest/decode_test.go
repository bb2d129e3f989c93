package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
)

var now = time.Date(2026, 11, 23, 10, 15, 30, 0, time.UTC)

const dev vward.DeviceID = "ox-0042"

func TestDecodeValidMessage(t *testing.T) {
	payload := `{"msg_id":"ox-0042-000123","ts":"2026-11-23T10:15:00Z","readings":[
		{"type":"spo2","value":94},
		{"type":"heart_rate","value":88},
		{"type":"supplemental_oxygen","value":true},
		{"type":"consciousness","value":"C"},
		{"type":"temperature","value":37.25,"ts":"2026-11-23T10:14:00.5Z"}],
		"battery":0.82,"firmware":"1.2"}`
	m, err := Decode(dev, []byte(payload), now, DefaultLimits())
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if m.MsgID != "ox-0042-000123" || *m.Battery != 0.82 || len(m.Problems) != 0 {
		t.Fatalf("message = %+v", m)
	}
	at := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	want := []vward.Reading{
		{Device: dev, MsgID: "ox-0042-000123", Kind: vward.SpO2, Value: 94, At: at},
		{Device: dev, MsgID: "ox-0042-000123", Kind: vward.HeartRate, Value: 88, At: at},
		{Device: dev, MsgID: "ox-0042-000123", Kind: vward.SupplementalOxygen, Value: 1, At: at},
		{Device: dev, MsgID: "ox-0042-000123", Kind: vward.Consciousness, Value: float64(vward.Confused), At: at},
		{Device: dev, MsgID: "ox-0042-000123", Kind: vward.Temperature, Value: 37.25, At: time.Date(2026, 11, 23, 10, 14, 0, 5e8, time.UTC)},
	}
	if len(m.Readings) != len(want) {
		t.Fatalf("readings = %+v", m.Readings)
	}
	for i := range want {
		if m.Readings[i] != want[i] {
			t.Errorf("reading %d = %+v, want %+v", i, m.Readings[i], want[i])
		}
	}
}

// The kinds beyond NEWS2's, for care plans, decode in their units; a fall
// is a true, stored as 1.
func TestDecodeCarePlanKinds(t *testing.T) {
	payload := `{"msg_id":"hub-7","ts":"2026-11-23T10:15:00Z","readings":[
		{"type":"weight","value":82.4},
		{"type":"blood_glucose","value":6.1},
		{"type":"peak_flow","value":320},
		{"type":"pain_score","value":0},
		{"type":"fall_event","value":true}]}`
	m, err := Decode(dev, []byte(payload), now, DefaultLimits())
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := map[vward.ReadingKind]float64{vward.Weight: 82.4, vward.BloodGlucose: 6.1, vward.PeakFlow: 320, vward.PainScore: 0, vward.FallEvent: 1}
	if len(m.Readings) != len(want) || len(m.Problems) != 0 {
		t.Fatalf("message = %+v", m)
	}
	for _, r := range m.Readings {
		if v, ok := want[r.Kind]; !ok || r.Value != v {
			t.Errorf("%s = %v, want %v", r.Kind, r.Value, v)
		}
	}
}

// Each malformed payload is refused with its own code and a reason that says
// what was wrong and where.
func TestDecodeRejectsMalformed(t *testing.T) {
	ts := `"ts":"2026-11-23T10:15:00Z"`
	huge := `{"msg_id":"m",` + ts + `,"readings":[` + strings.Repeat(`{"type":"spo2","value":95},`, 600) + `{"type":"spo2","value":95}]}`
	deep := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	tests := []struct {
		name, payload, code, reason string
	}{
		{"empty", ``, RejectJSON, "payload is empty"},
		{"truncated", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2"`, RejectJSON, "truncated"},
		{"not an object", `[1,2]`, RejectJSON, "expected ingest.wireMessage"},
		{"trailing data", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2","value":95}]} {}`, RejectJSON, "after the JSON object"},
		{"msg_id wrong type", `{"msg_id":7,` + ts + `,"readings":[{"type":"spo2","value":95}]}`, RejectJSON, "field msg_id: expected string"},
		{"msg_id missing", `{` + ts + `,"readings":[{"type":"spo2","value":95}]}`, RejectEnvelope, "msg_id is required"},
		{"msg_id too long", `{"msg_id":"` + strings.Repeat("x", 129) + `",` + ts + `,"readings":[{"type":"spo2","value":95}]}`, RejectEnvelope, "msg_id is longer than 128"},
		{"ts missing", `{"msg_id":"m","readings":[{"type":"spo2","value":95}]}`, RejectEnvelope, "ts is required"},
		{"readings missing", `{"msg_id":"m",` + ts + `}`, RejectEnvelope, "readings is required"},
		{"readings empty", `{"msg_id":"m",` + ts + `,"readings":[]}`, RejectEnvelope, "readings must not be empty"},
		{"battery out of range", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2","value":95}],"battery":82}`, RejectEnvelope, "battery 82 is outside 0–1"},
		{"ts not RFC 3339", `{"msg_id":"m","ts":"23/11/2026 10:15","readings":[{"type":"spo2","value":95}]}`, RejectTime, `"23/11/2026 10:15" is not an RFC 3339 time`},
		{"ts in the future", `{"msg_id":"m","ts":"2026-11-23T11:15:00Z","readings":[{"type":"spo2","value":95}]}`, RejectTime, "in the future"},
		{"ts too old", `{"msg_id":"m","ts":"2026-10-01T10:00:00Z","readings":[{"type":"spo2","value":95}]}`, RejectTime, "older than"},
		{"huge array", huge, RejectEnvelope, "readings has 601 entries; the limit is 500"},
		{"too large", `{"msg_id":"m",` + ts + `,"pad":"` + strings.Repeat("x", 70000) + `"}`, RejectTooLarge, "the limit is 65536"},
		{"deep nesting", deep, RejectTooLarge, "the limit is 65536"},
		{"deep nesting within size", strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10001), RejectJSON, "exceeded max depth"},
		{"invalid UTF-8", "{\"msg_id\":\"m\xff\"," + ts + `,"readings":[{"type":"spo2","value":95}]}`, RejectEncoding, "not valid UTF-8"},
		{"NaN", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2","value":NaN}]}`, RejectJSON, "invalid character 'N'"},
		{"Infinity", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2","value":Infinity}]}`, RejectJSON, "invalid character 'I'"},
		{"number overflow", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2","value":1e400}]}`, RejectReadings, "readings[0] (spo2): value 1e400 is not a number"},
		{"unknown type", `{"msg_id":"m",` + ts + `,"readings":[{"type":"glucose_mmol","value":5}]}`, RejectReadings, `readings[0] (glucose_mmol): unknown reading type "glucose_mmol"`},
		{"type missing", `{"msg_id":"m",` + ts + `,"readings":[{"value":5}]}`, RejectReadings, "readings[0]: type is missing"},
		{"value missing", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2"}]}`, RejectReadings, "readings[0] (spo2): value is missing"},
		{"value null", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2","value":null}]}`, RejectReadings, "value is missing"},
		{"value wrong type", `{"msg_id":"m",` + ts + `,"readings":[{"type":"heart_rate","value":"88"}]}`, RejectReadings, `readings[0] (heart_rate): value "88" is not a number`},
		{"bool as number", `{"msg_id":"m",` + ts + `,"readings":[{"type":"supplemental_oxygen","value":1}]}`, RejectReadings, "value 1 is not true or false"},
		{"bad ACVPU", `{"msg_id":"m",` + ts + `,"readings":[{"type":"consciousness","value":"X"}]}`, RejectReadings, `consciousness "X" is not one of A, C, V, P, U`},
		{"out of range", `{"msg_id":"m",` + ts + `,"readings":[{"type":"temperature","value":98.6}]}`, RejectReadings, "value 98.6 °C is outside the possible range 25–45"},
		{"negative", `{"msg_id":"m",` + ts + `,"readings":[{"type":"heart_rate","value":-5}]}`, RejectReadings, "outside the possible range"},
		{"duplicate msg_id", `{"msg_id":"a","msg_id":"b",` + ts + `,"readings":[{"type":"spo2","value":95}]}`, RejectJSON, "key msg_id appears more than once"},
		{"duplicate key in another case", `{"msg_id":"a",` + ts + `,"MSG_ID":"b","readings":[{"type":"spo2","value":95}]}`, RejectJSON, "key MSG_ID appears more than once"},
		{"duplicate value in a reading", `{"msg_id":"a",` + ts + `,"readings":[{"type":"spo2","value":95},{"type":"spo2","value":95,"value":70}]}`, RejectJSON, "key readings[1].value appears more than once"},
		{"fall reported false", `{"msg_id":"m",` + ts + `,"readings":[{"type":"fall_event","value":false}]}`, RejectReadings, "readings[0] (fall_event): value false: a fall_event reports a fall"},
		{"fall as a number", `{"msg_id":"m",` + ts + `,"readings":[{"type":"fall_event","value":1}]}`, RejectReadings, "value 1 is not true"},
		{"weight in pounds", `{"msg_id":"m",` + ts + `,"readings":[{"type":"weight","value":650}]}`, RejectReadings, "readings[0] (weight): value 650 kg is outside the possible range 1–500"},
		{"glucose in mg/dL", `{"msg_id":"m",` + ts + `,"readings":[{"type":"blood_glucose","value":110}]}`, RejectReadings, "value 110 mmol/L is outside the possible range 0.5–60"},
		{"pain above 10", `{"msg_id":"m",` + ts + `,"readings":[{"type":"pain_score","value":11}]}`, RejectReadings, "(pain_score): value 11 /10 is outside the possible range 0–10"},
		{"peak flow as a string", `{"msg_id":"m",` + ts + `,"readings":[{"type":"peak_flow","value":"350"}]}`, RejectReadings, `value "350" is not a number`},
		{"reading ts in the future", `{"msg_id":"m",` + ts + `,"readings":[{"type":"spo2","value":95,"ts":"2027-01-01T00:00:00Z"}]}`, RejectReadings, "readings[0] (spo2): ts: 2027-01-01T00:00:00Z is"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(dev, []byte(tc.payload), now, DefaultLimits())
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("Decode error = %v, want a *RejectError", err)
			}
			if re.Code != tc.code || !strings.Contains(re.Detail, tc.reason) {
				t.Errorf("rejection = %q: %q, want %q containing %q", re.Code, re.Detail, tc.code, tc.reason)
			}
		})
	}
}

// A message with some bad readings keeps the good ones and names the bad.
func TestDecodePartlyBadMessage(t *testing.T) {
	payload := `{"msg_id":"m","ts":"2026-11-23T10:15:00Z","readings":[
		{"type":"spo2","value":95},
		{"type":"temperature","value":"hot"},
		{"type":"heart_rate","value":72},
		{"type":"weight_kg","value":80}]}`
	m, err := Decode(dev, []byte(payload), now, DefaultLimits())
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(m.Readings) != 2 || m.Readings[0].Kind != vward.SpO2 || m.Readings[1].Kind != vward.HeartRate {
		t.Errorf("kept readings = %+v, want spo2 and heart_rate", m.Readings)
	}
	got := ProblemsText(m.Problems)
	want := `readings[1] (temperature): value "hot" is not a number; readings[3] (weight_kg): unknown reading type "weight_kg"`
	if got != want {
		t.Errorf("problems = %q\nwant       %q", got, want)
	}
}

func TestParseTopic(t *testing.T) {
	for topic, want := range map[string]string{
		"vward/v1/devices/ox-1/readings": "ox-1",
		"vward/v1/devices/ox-1/senml":    "ox-1",
		"vward/v1/devices/ox-1/rejected": "error",
		"vward/v1/devices/ox-1/status":   "error",
		"vward/v1/devices//readings":     "error",
		"other/ox-1/readings":            "error",
		"vward/v1/devices/ox-1":          "error",
	} {
		d, err := ParseTopic(topic)
		got := string(d)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ParseTopic(%q) = %q (%v), want %q", topic, got, err, want)
		}
	}
}

// FuzzDecode: whatever a device sends, Decode returns without panicking,
// either a message with at least one valid, in-range reading or a
// rejection with a code and a reason.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"msg_id":"m","ts":"2026-11-23T10:15:00Z","readings":[{"type":"spo2","value":95}]}`))
	f.Add([]byte(`{"msg_id":"m","ts":"2026-11-23T10:15:00Z","readings":[{"type":"consciousness","value":"V"},{"type":"supplemental_oxygen","value":false}],"battery":0.1}`))
	f.Add([]byte(`{"msg_id":"m","ts":"2026-11-23T10:15:00Z","readings":[{"type":"temperature","value":"x","ts":"2026-11-23T10:00:00+01:00"}]}`))
	f.Add([]byte(`{"msg_id":"`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := Decode(dev, payload, now, DefaultLimits())
		if err != nil {
			var re *RejectError
			if !errors.As(err, &re) || re.Code == "" || re.Detail == "" {
				t.Fatalf("error %v is not a coded rejection", err)
			}
			return
		}
		if len(m.Readings) == 0 {
			t.Fatal("accepted a message with no reading")
		}
		for _, r := range m.Readings {
			if !r.Kind.Known() || !r.Kind.PossibleRange().Contains(r.Value) {
				t.Fatalf("accepted invalid reading %+v", r)
			}
			if r.At.After(now.Add(DefaultLimits().ClockSkew)) {
				t.Fatalf("accepted a future reading %+v", r)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	payload := []byte(fmt.Sprintf(`{"msg_id":"ox-0042-000123","ts":%q,"readings":[
		{"type":"spo2","value":94},{"type":"heart_rate","value":88},
		{"type":"respiratory_rate","value":18},{"type":"temperature","value":37.1}],"battery":0.82}`,
		now.Add(-time.Minute).Format(time.RFC3339)))
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := Decode(dev, payload, now, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}
