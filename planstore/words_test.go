package planstore_test

import (
	"testing"

	"github.com/vward/vward/careplan"
	"github.com/vward/vward/planstore"
)

// Every shipped template's rules and expectations read as words.
func TestWords(t *testing.T) {
	want := map[string]string{
		"hf-weight-gain-3d":       "weight up more than 2 kg from the lowest within 3d",
		"hf-spo2-below-94":        "spo2 below 94 %, on 2 readings running",
		"copd-spo2-below-usual":   "spo2 at least 4 points below, against the median of 7d ending 1d before the latest reading",
		"frailty-fall":            "a fall event recorded in the last 1d",
		"frailty-temp-above-37-8": "temperature above 37.8 °C",
		"ari-spo2-94-or-less":     "spo2 at or below 94 %",
	}
	seen := 0
	for _, name := range careplan.TemplateNames() {
		p, err := careplan.Template(name)
		if err != nil {
			t.Fatal(err)
		}
		v := planstore.Present(planstore.Version{Plan: p})
		if len(v.Words.Rules) != len(p.Rules) || len(v.Words.Expected) != len(p.Expected) {
			t.Errorf("%s: words %+v", name, v.Words)
		}
		for i, r := range p.Rules {
			if w, ok := want[r.ID]; ok {
				seen++
				if v.Words.Rules[i] != w {
					t.Errorf("%s: %q, want %q", r.ID, v.Words.Rules[i], w)
				}
			}
		}
		if name == "heart_failure" && v.Words.Expected[0] != "weight every 1d by 10:00" {
			t.Errorf("heart failure's first expectation: %q", v.Words.Expected[0])
		}
	}
	if seen != len(want) {
		t.Errorf("%d of %d rules found in the templates", seen, len(want))
	}
	if v := planstore.Present(planstore.Version{}); v.Words != nil || !v.Ended {
		t.Errorf("an ended version in words: %+v", v)
	}
}
