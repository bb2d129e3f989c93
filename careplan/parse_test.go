package careplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
)

// doc is a plan with the given rules (JSON objects) and nothing else.
func doc(rules ...string) string {
	return `{"version": 1, "name": "Test", "expected": [], "rules": [` + strings.Join(rules, ",") + `]}`
}

const okThreshold = `{"id": "t", "name": "Low SpO2", "risk": "high", "type": "threshold", "kind": "spo2", "op": "<=", "value": 92}`

func TestParseAccepts(t *testing.T) {
	cases := []struct {
		name  string
		json  string
		check func(*testing.T, *Plan)
	}{
		{"threshold", doc(okThreshold), func(t *testing.T, p *Plan) {
			r := p.Rules[0]
			if r.Type != Threshold || r.Kind != vward.SpO2 || r.Op != AtMost || r.Value != 92 || r.Risk != RiskHigh {
				t.Errorf("%+v", r)
			}
		}},
		{"sustained for", doc(`{"id": "s", "name": "n", "risk": "medium", "type": "sustained", "kind": "spo2", "op": "<", "value": 90, "for": "2m"}`),
			func(t *testing.T, p *Plan) {
				if p.Rules[0].For != 2*time.Minute || p.Rules[0].Sets != 0 {
					t.Errorf("%+v", p.Rules[0])
				}
			}},
		{"sustained sets", doc(`{"id": "s", "name": "n", "risk": "medium", "type": "sustained", "kind": "heart_rate", "op": ">", "value": 100, "sets": 2}`),
			func(t *testing.T, p *Plan) {
				if p.Rules[0].Sets != 2 {
					t.Errorf("%+v", p.Rules[0])
				}
			}},
		{"change", doc(`{"id": "c", "name": "n", "risk": "medium", "type": "change", "kind": "weight", "direction": "rise", "op": ">", "value": 2, "window": "3d"}`),
			func(t *testing.T, p *Plan) {
				if r := p.Rules[0]; r.Window != 72*time.Hour || r.Direction != Rise {
					t.Errorf("%+v", r)
				}
			}},
		{"deviation, clinician's baseline", doc(`{"id": "d", "name": "n", "risk": "medium", "type": "deviation", "kind": "spo2", "direction": "fall", "op": ">=", "value": 4,
			"baseline": {"value": 90, "set_by": "dr.a", "set_at": "2026-11-20T10:00:00Z"}}`),
			func(t *testing.T, p *Plan) {
				if b := p.Rules[0].Baseline; !b.Clinical() || b.Value != 90 || b.SetBy != "dr.a" {
					t.Errorf("%+v", b)
				}
			}},
		{"deviation, median with the default count", doc(`{"id": "d", "name": "n", "risk": "medium", "type": "deviation", "kind": "weight", "direction": "rise", "op": ">", "value": 3, "percent": true,
			"baseline": {"median_of": "7d"}}`),
			func(t *testing.T, p *Plan) {
				if b := p.Rules[0].Baseline; b.Clinical() || b.MedianOf != 7*day || b.MinReadings != defaultMinReadings || !p.Rules[0].Percent {
					t.Errorf("%+v", p.Rules[0])
				}
			}},
		{"event", doc(`{"id": "f", "name": "Fall", "risk": "medium", "type": "threshold", "kind": "fall_event", "within": "1d"}`),
			func(t *testing.T, p *Plan) {
				if p.Rules[0].Within != day {
					t.Errorf("%+v", p.Rules[0])
				}
			}},
		{"expected with a deadline", `{"version": 1, "name": "x", "expected": [{"kind": "weight", "every": "1d", "by": "10:00"}, {"kind": "consciousness", "every": "12h"}]}`,
			func(t *testing.T, p *Plan) {
				if e := p.Expected[0]; e.By != 10*time.Hour || e.Every != day {
					t.Errorf("%+v", e)
				}
			}},
		{"escalation plan", `{"version": 1, "name": "x", "escalation_plan": {"ceiling": "no_hospital_transfer", "text": "Treat at home; not for admission.", "decided_by": "dr.a", "decided_at": "2026-11-20T10:00:00Z", "review_by": "2026-12-20T10:00:00Z"}}`,
			func(t *testing.T, p *Plan) {
				if e := p.Escalation; e == nil || e.Ceiling != NoHospitalTransfer || e.DecidedBy != "dr.a" || e.ReviewBy.IsZero() {
					t.Errorf("%+v", e)
				}
			}},
		{"null is absent", `{"version": 1, "name": "x", "template": null, "escalation_plan": null}`,
			func(t *testing.T, p *Plan) {
				if p.Escalation != nil || p.Template != "" {
					t.Errorf("%+v", p)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(c.json))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, p)
			roundTrip(t, p)
		})
	}
}

// roundTrip checks that a plan marshals to what Parse reads back as the
// same plan, and that marshalling is stable.
func roundTrip(t *testing.T, p *Plan) {
	t.Helper()
	out, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(out)
	if err != nil {
		t.Fatalf("the marshalled plan does not parse: %v\n%s", err, out)
	}
	again, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, again) {
		t.Fatalf("marshal, parse, marshal differs:\n%s\n%s", out, again)
	}
	var viaUnmarshal Plan
	if err := json.Unmarshal(out, &viaUnmarshal); err != nil {
		t.Fatalf("json.Unmarshal of a plan: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	rule := func(fields string) string {
		return doc(`{"id": "r", "name": "n", "risk": "medium", ` + fields + `}`)
	}
	long := strings.Repeat("x", maxNameLen+1)
	var many []string
	for i := range MaxRules + 1 {
		many = append(many, fmt.Sprintf(`{"id": "r%d", "name": "n", "risk": "high", "type": "threshold", "kind": "spo2", "op": "<", "value": 90}`, i))
	}
	cases := []struct {
		name string
		json string
		want []string // each must be one of the problems, whole
	}{
		{"not JSON", `{"version": 1,`, []string{"invalid JSON: the plan ends too soon"}},
		{"not an object", `[1]`, []string{"the plan must be a JSON object"}},
		{"trailing data", `{"version": 1, "name": "x"} {}`, []string{"invalid JSON: more data after the plan's object"}},
		{"no version", `{"name": "x"}`, []string{"version: required: the plan format's version, 1"}},
		{"a later version", `{"version": 2, "name": "x"}`, []string{"version: want 1, the only plan format this vward reads, not 2"}},
		{"no name", `{"version": 1}`, []string{"name: required"}},
		{"blank name", `{"version": 1, "name": "  "}`, []string{"name: must not be blank"}},
		{"long name", `{"version": 1, "name": "` + long + `"}`, []string{"name: 121 characters, more than the 120 allowed"}},
		{"control character", `{"version": 1, "name": "a\u0007b"}`, []string{"name: contains a control character"}},
		{"unknown template", `{"version": 1, "name": "x", "template": "cardiology"}`,
			[]string{`template: "cardiology" is not a template vward ships (one of acute_respiratory_infection, frailty, heart_failure, respiratory)`}},
		{"unknown field", `{"version": 1, "name": "x", "owner": "me"}`, []string{"owner: unknown field"}},
		{"field in another case", `{"version": 1, "Name": "x"}`, []string{`Name: unknown field (field names are exact: "name")`}},
		{"field twice", `{"version": 1, "name": "x", "name": "y"}`, []string{"name: given more than once"}},
		{"unknown rule field", doc(`{"id": "t", "name": "n", "risk": "high", "type": "threshold", "kind": "spo2", "op": "<", "value": 90, "windw": "1h"}`),
			[]string{"rules[0].windw: unknown field"}},
		{"unknown baseline field", rule(`"type": "deviation", "kind": "spo2", "direction": "fall", "op": ">", "value": 4, "baseline": {"median_of": "7d", "mean": true}`),
			[]string{"rules[0].baseline.mean: unknown field"}},
		{"wrong JSON type", rule(`"type": "threshold", "kind": "spo2", "op": "<", "value": "ninety"`), []string{"rules[0].value: want a number, not string"}},
		{"sets not whole", rule(`"type": "sustained", "kind": "spo2", "op": "<", "value": 90, "sets": 2.5`), []string{"rules[0].sets: want a whole number, not number 2.5"}},
		{"rules not a list", `{"version": 1, "name": "x", "rules": {}}`, []string{"rules: want a list, not object"}},
		{"too many rules", doc(many...), []string{"rules: 33 rules, more than the 32 a plan may have"}},
		{"rule without id, type", doc(`{"name": "n", "risk": "high"}`), []string{"rules[0].id: required", "rules[0].type: required: one of threshold, sustained, change, deviation"}},
		{"id twice", rule(`"type": "threshold", "kind": "spo2", "op": "<", "value": 90, "id": "Low SpO2"`), []string{"rules[0].id: given more than once"}},
		{"id with spaces", doc(`{"id": "Low SpO2", "name": "n", "risk": "high", "type": "threshold", "kind": "spo2", "op": "<", "value": 90}`),
			[]string{`rules[0].id: want 1 to 64 of a-z, 0-9, - and _, beginning with a letter or digit, not "Low SpO2"`}},
		{"duplicate id", doc(okThreshold, okThreshold), []string{`rules[1].id: "t" is the id of rules[0] too`}},
		{"bad risk", doc(`{"id": "t", "name": "n", "risk": "urgent", "type": "threshold", "kind": "spo2", "op": "<", "value": 90}`),
			[]string{`rules[0].risk: "urgent" is not one of low, low-medium, medium, high`}},
		{"bad type", rule(`"type": "trend", "kind": "spo2"`), []string{`rules[0].type: "trend" is not one of threshold, sustained, change, deviation`}},
		{"unknown kind", rule(`"type": "threshold", "kind": "wieght", "op": ">", "value": 90`),
			[]string{`rules[0].kind: "wieght" is not a numeric kind or an event (one of respiratory_rate, spo2, systolic_bp, diastolic_bp, heart_rate, temperature, weight, blood_glucose, peak_flow, pain_score, fall_event)`}},
		{"categorical kind", rule(`"type": "change", "kind": "consciousness", "direction": "rise", "op": ">", "value": 1, "window": "1d"`),
			[]string{`rules[0].kind: "consciousness" is not a numeric kind (one of respiratory_rate, spo2, systolic_bp, diastolic_bp, heart_rate, temperature, weight, blood_glucose, peak_flow, pain_score)`}},
		{"bad op", rule(`"type": "threshold", "kind": "spo2", "op": "=<", "value": 90`), []string{`rules[0].op: "=<" is not one of <, <=, >, >=`}},
		{"value outside the kind's range", rule(`"type": "threshold", "kind": "spo2", "op": "<", "value": 101`), []string{"rules[0].value: 101 is outside spo2's possible 0–100"}},
		{"never holds", rule(`"type": "threshold", "kind": "spo2", "op": "<", "value": 0`), []string{"rules[0].value: spo2 < 0 can never hold: spo2 is 0–100"}},
		{"always holds", rule(`"type": "threshold", "kind": "spo2", "op": "<=", "value": 100`), []string{"rules[0].value: spo2 <= 100 always holds: spo2 is 0–100"}},
		{"within out of bounds", rule(`"type": "threshold", "kind": "spo2", "op": "<", "value": 90, "within": "30s"`),
			[]string{`rules[0].within: want a duration from 1m to 14d, not "30s"`}},
		{"a field the type does not use", rule(`"type": "threshold", "kind": "spo2", "op": "<", "value": 90, "window": "1d"`),
			[]string{"rules[0].window: not used by a threshold rule"}},
		{"event with op", rule(`"type": "threshold", "kind": "fall_event", "within": "1d", "op": ">=", "value": 1`),
			[]string{"rules[0].op: not used for fall_event, an event: the rule holds while one was recorded in the last within",
				"rules[0].value: not used for fall_event, an event: the rule holds while one was recorded in the last within"}},
		{"event without within", rule(`"type": "threshold", "kind": "fall_event"`), []string{"rules[0].within: required: a duration from 1m to 14d"}},
		{"sustained with both", rule(`"type": "sustained", "kind": "spo2", "op": "<", "value": 90, "for": "2m", "sets": 3`),
			[]string{"rules[0].for: give exactly one of for (a duration from 1m to 24h) and sets (2 to 20 readings)"}},
		{"sustained with neither", rule(`"type": "sustained", "kind": "spo2", "op": "<", "value": 90`),
			[]string{"rules[0].for: give exactly one of for (a duration from 1m to 24h) and sets (2 to 20 readings)"}},
		{"sustained for too long", rule(`"type": "sustained", "kind": "spo2", "op": "<", "value": 90, "for": "2d"`),
			[]string{`rules[0].for: want a duration from 1m to 1d, not "2d"`}},
		{"sets out of bounds", rule(`"type": "sustained", "kind": "spo2", "op": "<", "value": 90, "sets": 1`),
			[]string{"rules[0].sets: want a whole number of readings from 2 to 20, not 1"}},
		{"change window short", rule(`"type": "change", "kind": "weight", "direction": "rise", "op": ">", "value": 2, "window": "30m"`),
			[]string{`rules[0].window: want a duration from 1h to 14d, not "30m"`}},
		{"change window unreadable", rule(`"type": "change", "kind": "weight", "direction": "rise", "op": ">", "value": 2, "window": "3 days"`),
			[]string{`rules[0].window: want a duration from 1h to 14d, not "3 days"`}},
		{"change window missing", rule(`"type": "change", "kind": "weight", "direction": "rise", "op": ">", "value": 2`),
			[]string{"rules[0].window: required: a duration from 1h to 14d"}},
		{"change with < op", rule(`"type": "change", "kind": "weight", "direction": "rise", "op": "<", "value": 2, "window": "3d"`),
			[]string{`rules[0].op: "<" is not > (more than) or >= (at least): the direction says which way`}},
		{"change direction", rule(`"type": "change", "kind": "weight", "direction": "up", "op": ">", "value": 2, "window": "3d"`),
			[]string{`rules[0].direction: "up" is not rise or fall`}},
		{"change amount zero", rule(`"type": "change", "kind": "weight", "direction": "rise", "op": ">", "value": 0, "window": "3d"`),
			[]string{"rules[0].value: want more than 0 and at most 499 kg, not 0"}},
		{"deviation percent over 100", rule(`"type": "deviation", "kind": "weight", "direction": "rise", "op": ">", "value": 150, "percent": true, "baseline": {"median_of": "7d"}`),
			[]string{"rules[0].value: want more than 0 and at most 100%, not 150"}},
		{"deviation without baseline", rule(`"type": "deviation", "kind": "spo2", "direction": "fall", "op": ">", "value": 4`),
			[]string{"rules[0].baseline: required: a value set by a clinician (value, set_by, set_at) or a median (median_of, excluding_last, min_readings)"}},
		{"deviation with both baselines", rule(`"type": "deviation", "kind": "spo2", "direction": "fall", "op": ">", "value": 4, "baseline": {"value": 90, "median_of": "7d"}`),
			[]string{"rules[0].baseline: give either a value set by a clinician (value, set_by, set_at) or a median (median_of, excluding_last, min_readings), not both"}},
		{"clinician's baseline incomplete", rule(`"type": "deviation", "kind": "spo2", "direction": "fall", "op": ">", "value": 4, "baseline": {"value": 190}`),
			[]string{"rules[0].baseline.value: 190 is outside spo2's possible 0–100", "rules[0].baseline.set_by: required",
				"rules[0].baseline.set_at: required: an RFC 3339 time such as 2026-11-23T10:15:00Z"}},
		{"median bounds", rule(`"type": "deviation", "kind": "spo2", "direction": "fall", "op": ">", "value": 4, "baseline": {"median_of": "30d", "excluding_last": "8d", "min_readings": 0}`),
			[]string{`rules[0].baseline.median_of: want a duration from 1h to 14d, not "30d"`,
				`rules[0].baseline.excluding_last: want a duration from 0s to 7d, not "8d"`,
				"rules[0].baseline.min_readings: want a whole number from 1 to 1000, not 0"}},
		{"expected kind twice", `{"version": 1, "name": "x", "expected": [{"kind": "spo2", "every": "4h"}, {"kind": "spo2", "every": "1d"}]}`,
			[]string{"expected[1].kind: spo2 is expected by expected[0] already"}},
		{"expected event", `{"version": 1, "name": "x", "expected": [{"kind": "fall_event", "every": "4h"}]}`,
			[]string{`expected[0].kind: "fall_event" is not a kind that is measured (an event is not expected) (one of respiratory_rate, spo2, supplemental_oxygen, systolic_bp, diastolic_bp, heart_rate, consciousness, temperature, weight, blood_glucose, peak_flow, pain_score)`}},
		{"expected too often", `{"version": 1, "name": "x", "expected": [{"kind": "spo2", "every": "5m"}]}`,
			[]string{`expected[0].every: want a duration from 15m to 7d, not "5m"`}},
		{"deadline needs whole days", `{"version": 1, "name": "x", "expected": [{"kind": "weight", "every": "36h", "by": "10:00"}]}`,
			[]string{`expected[0].every: want whole days with a deadline (by), not "36h"`}},
		{"deadline unreadable", `{"version": 1, "name": "x", "expected": [{"kind": "weight", "every": "1d", "by": "10am"}]}`,
			[]string{`expected[0].by: want a time of day from 00:01 to 23:59 as HH:MM, not "10am"`}},
		{"deadline midnight", `{"version": 1, "name": "x", "expected": [{"kind": "weight", "every": "1d", "by": "00:00"}]}`,
			[]string{`expected[0].by: want a time of day from 00:01 to 23:59 as HH:MM, not "00:00"`}},
		{"escalation plan incomplete", `{"version": 1, "name": "x", "escalation_plan": {"ceiling": "dnr", "text": ""}}`,
			[]string{`escalation_plan.ceiling: "dnr" is not one of full_escalation, no_critical_care, no_hospital_transfer, comfort_care`,
				"escalation_plan.text: must not be blank", "escalation_plan.decided_by: required",
				"escalation_plan.decided_at: required: an RFC 3339 time such as 2026-11-23T10:15:00Z"}},
		{"review before decision", `{"version": 1, "name": "x", "escalation_plan": {"ceiling": "comfort_care", "text": "t", "decided_by": "a", "decided_at": "2026-11-20T10:00:00Z", "review_by": "2026-11-19T10:00:00Z"}}`,
			[]string{"escalation_plan.review_by: must be after decided_at"}},
		{"too large", `{"version": 1, "name": "` + strings.Repeat("x", MaxPlanBytes) + `"}`, []string{"the plan is 65562 bytes, more than the 65536 allowed"}},
		{"not UTF-8", "{\"version\": 1, \"name\": \"\xff\"}", []string{"the plan is not UTF-8"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(c.json))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if !errors.Is(err, vward.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("error %T is not an *InvalidError", err)
			}
			got := make(map[string]bool)
			for _, pr := range ie.Problems {
				got[pr.String()] = true
			}
			for _, w := range c.want {
				if !got[w] {
					t.Errorf("missing problem %q; got:\n%s", w, strings.Join(keys(got), "\n"))
				}
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Every problem is reported, not only the first, up to a bound.
func TestParseReportsEveryProblem(t *testing.T) {
	var rules []string
	for i := range 30 {
		rules = append(rules, fmt.Sprintf(`{"id": "r%d", "name": "n", "risk": "high", "type": "threshold", "kind": "spo2", "op": "<", "value": 900}`, i))
	}
	_, err := Parse([]byte(doc(rules...)))
	var ie *InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("%v", err)
	}
	if n := len(ie.Problems); n != maxProblems+1 {
		t.Fatalf("%d problems, want %d and a count of the rest", n, maxProblems+1)
	}
	if last := ie.Problems[maxProblems].String(); last != "and 10 more problems" {
		t.Errorf("last problem %q", last)
	}
	if !strings.HasPrefix(err.Error(), "invalid care plan: rules[0].value: 900 is outside spo2's possible 0–100; rules[1].value") {
		t.Errorf("message %q", err)
	}
}

func TestDuration(t *testing.T) {
	ok := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"3d", 72 * time.Hour, "3d"},
		{"72h", 72 * time.Hour, "3d"},
		{"1d12h", 36 * time.Hour, "1d12h"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"90s", 90 * time.Second, "1m30s"},
		{"14d", 14 * day, "14d"},
		{"1h0m30s", time.Hour + 30*time.Second, "1h30s"},
		{"0s", 0, "0s"},
	}
	for _, c := range ok {
		d, err := parseDuration(c.in)
		if err != nil || d != c.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", c.in, d, err, c.want)
		}
		if got := formatDuration(d); got != c.out {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, c.out)
		}
	}
	for _, in := range []string{"", "d", "3", "-1d", "+1d", "1.5d", "1d-2h", "1h2d", "3 days", "0d", "1dd", "d1h"} {
		if d, err := parseDuration(in); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", in, d)
		}
	}
}
