package careplan

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/vward/vward"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic; a plan it
// accepts must marshal to JSON that parses to the same plan, and evaluate
// without panicking; a refusal must be an *InvalidError naming problems.
func FuzzParse(f *testing.F) {
	for _, n := range TemplateNames() {
		data, err := templateFS.ReadFile(templateFiles[n])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		doc(okThreshold),
		doc(`{"id": "d", "name": "n", "risk": "medium", "type": "deviation", "kind": "spo2", "direction": "fall", "op": ">=", "value": 4, "baseline": {"value": 90, "set_by": "a", "set_at": "2026-11-20T10:00:00.5+01:00"}}`),
		doc(`{"id": "s", "name": "n", "risk": "low", "type": "sustained", "kind": "spo2", "op": "<", "value": 90, "for": "1d"}`),
		`{"version": 1, "name": "x", "escalation_plan": {"ceiling": "comfort_care", "text": "t", "decided_by": "a", "decided_at": "2026-11-20T10:00:00Z"}}`,
		`{"version": 1, "name": "x", "name": "y", "Rules": [], "rules": [{"id": "x", "baseline": {"baseline": {}}}]}`,
		`{"version": 1e400}`, `[]`, `null`, `{"version": 1, "name": "x", "expected": [{"kind": "weight", "every": "7d", "by": "23:59"}]}`,
	} {
		f.Add([]byte(s))
	}
	readings := []vward.Reading{
		{Kind: vward.SpO2, Value: 88, At: t0}, {Kind: Weight, Value: 80, At: t0.Add(-48 * time.Hour)},
		{Kind: Weight, Value: 83, At: t0}, {Kind: vward.Temperature, Value: 38.5, At: t0}, {Kind: FallEvent, Value: 1, At: t0},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var ie *InvalidError
			if !errors.As(err, &ie) || len(ie.Problems) == 0 || !errors.Is(err, vward.ErrInvalid) {
				t.Fatalf("refusal %T %v", err, err)
			}
			for _, pr := range ie.Problems {
				if pr.Message == "" {
					t.Fatalf("a problem without a message: %+v", ie.Problems)
				}
			}
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(out)
		if err != nil {
			t.Fatalf("accepted %q, but not its own marshalling %s: %v", data, out, err)
		}
		again, _ := json.Marshal(q)
		if !bytes.Equal(out, again) {
			t.Fatalf("marshal, parse, marshal differs:\n%s\n%s", out, again)
		}
		fs := Evaluate(p, readings, t0)
		if len(fs) != len(p.Rules) {
			t.Fatalf("%d findings for %d rules", len(fs), len(p.Rules))
		}
		for i, f := range fs {
			if f.State != Holds && f.State != DoesNotHold && f.State != NotEnoughData {
				t.Fatalf("rule %d: state %q", i, f.State)
			}
			_ = p.Rules[i].Describe(f)
		}
		_ = p.Due(t0, t0.Add(-time.Hour), map[vward.ReadingKind]time.Time{Weight: t0}, nil, nil)
	})
}
