package careplan

import (
	"testing"
	"time"

	"github.com/vward/vward"
)

// A heart failure patient weighed each morning, with the shipped
// template: a climb over three days raises; a blip does not.
func TestHeartFailureWeightScenario(t *testing.T) {
	p, err := Template("heart_failure")
	if err != nil {
		t.Fatal(err)
	}
	type day struct {
		kg   float64
		want State // of hf-weight-gain-3d once that day's weight is in
	}
	scenarios := []struct {
		name string
		days []day
	}{
		// Still climbing on the fourth day: the gain within the last
		// three days is still more than 2 kg.
		{"climbing over three days raises on the third", []day{
			{80.0, NotEnoughData}, {80.7, DoesNotHold}, {81.4, DoesNotHold}, {82.1, Holds}, {82.9, Holds},
		}},
		{"a one-day blip up does not", []day{
			{80.0, NotEnoughData}, {80.2, DoesNotHold}, {81.7, DoesNotHold}, {80.3, DoesNotHold}, {80.1, DoesNotHold},
		}},
		{"a one-day blip down does not", []day{
			{80.0, NotEnoughData}, {80.2, DoesNotHold}, {78.6, DoesNotHold}, {80.3, DoesNotHold}, {80.1, DoesNotHold},
		}},
		{"the same 2.1 kg spread over four days does not", []day{
			{80.0, NotEnoughData}, {80.5, DoesNotHold}, {81.0, DoesNotHold}, {81.5, DoesNotHold}, {82.1, DoesNotHold},
		}},
		{"re-gaining after a diuretic dose counts from the lowest", []day{
			{81.0, NotEnoughData}, {79.6, DoesNotHold}, {80.6, DoesNotHold}, {81.8, Holds},
		}},
		{"exactly 2 kg is not more than 2 kg", []day{
			{80.0, NotEnoughData}, {80.8, DoesNotHold}, {81.4, DoesNotHold}, {82.0, DoesNotHold},
		}},
	}
	rule := -1
	for i, r := range p.Rules {
		if r.ID == "hf-weight-gain-3d" {
			rule = i
		}
	}
	if rule < 0 {
		t.Fatal("the heart failure template has no hf-weight-gain-3d")
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			var e Evaluator
			var readings []vward.Reading
			var fs []Finding
			for i, d := range s.days {
				// Weighed between 07:00 and 08:30, as people are.
				at := t0.Add(-3*time.Hour + time.Duration(i)*24*time.Hour + time.Duration(i%3)*45*time.Minute)
				readings = append(readings, rd(Weight, at.Sub(t0), d.kg))
				fs = e.Evaluate(p, readings, at, fs[:0])
				if got := fs[rule]; got.State != d.want {
					t.Errorf("day %d, %.1f kg: %s, want %s (%s)", i, d.kg, got.State, d.want, p.Rules[rule].Describe(got))
				}
			}
		})
	}
}
