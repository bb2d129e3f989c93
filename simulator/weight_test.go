package simulator_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/simulator"
)

// weightPlan is one patient weighed every morning, starting at 08:00 on
// day 0, with the given trajectories.
func weightPlan(t *testing.T, trajectories string) *simulator.Plan {
	t.Helper()
	return mustPlan(t, `{"name":"w","seed":5,"duration":"96h","patients":[{"id":"hf","baseline":{"weight":80},
	  "trajectories":[`+trajectories+`],"devices":[{"kind":"scale"}]}]}`)
}

// A fluid_retention course adds its magnitude in kg to the weight, rising
// linearly over its span, and moves nothing else: the same patient without
// it differs by exactly the gain at every moment.
func TestFluidRetention(t *testing.T) {
	with := weightPlan(t, `{"kind":"fluid_retention","onset":"24h","span":"72h","magnitude":2.8}`).Patients[0].Model
	without := weightPlan(t, ``).Patients[0].Model
	for _, c := range []struct {
		at   time.Duration
		gain float64
	}{
		{0, 0},
		{23 * time.Hour, 0},
		{24 * time.Hour, 0},
		{36 * time.Hour, 2.8 / 6},
		{60 * time.Hour, 1.4},
		{96 * time.Hour, 2.8},
		{120 * time.Hour, 2.8},
	} {
		a, b := with.Truth(c.at), without.Truth(c.at)
		if got := a.Weight - b.Weight; math.Abs(got-c.gain) > 1e-9 {
			t.Errorf("at %s: weight gain %.3f kg, want %.3f", c.at, got, c.gain)
		}
		a.Weight, b.Weight = 0, 0
		if a != b {
			t.Errorf("at %s: fluid retention moved other vitals: %+v vs %+v", c.at, a, b)
		}
	}
	dflt := weightPlan(t, `{"kind":"fluid_retention","span":"1h"}`).Patients[0].Model
	if got := dflt.Truth(2*time.Hour).Weight - without.Truth(2*time.Hour).Weight; math.Abs(got-1) > 1e-9 {
		t.Errorf("fluid retention without a magnitude gains %.3f kg, want 1", got)
	}
}

// A stable patient's weight wanders within ±0.3 kg from day to day at the
// same hour, with the morning the lightest time of the day.
func TestWeightThroughTheDay(t *testing.T) {
	p := weightPlan(t, ``).Patients[0].Model
	varied := false
	for day := 1; day <= 4; day++ {
		// Day 0 starts at 08:00, so 07:30 of day d is t = d·24h − 30m.
		morning := p.Truth(time.Duration(day)*24*time.Hour - 30*time.Minute)
		evening := p.Truth(time.Duration(day)*24*time.Hour + 11*time.Hour) // 19:00
		if d := morning.Weight - 80; math.Abs(d) > 0.3+0.01 {
			t.Errorf("day %d: morning weight %.2f kg is more than 0.3 kg off the baseline", day, morning.Weight)
		} else if math.Abs(d) > 0.05 {
			varied = true
		}
		if d := evening.Weight - morning.Weight; d < 0.7 || d > 0.9 {
			t.Errorf("day %d: evening %.2f kg, morning %.2f kg: want about 0.8 kg heavier in the evening", day, evening.Weight, morning.Weight)
		}
	}
	if !varied {
		t.Error("the morning weight never varied from day to day")
	}
}

// A scale weighs once a morning at 07:30 by default and sends the weight
// alone, in tenths of a kilogram.
func TestScaleWeighsEachMorning(t *testing.T) {
	plan := weightPlan(t, `{"kind":"fluid_retention","onset":"24h","span":"72h","magnitude":2.8}`)
	clock := plan.Scenario.NewClock(origin, 0)
	var at []time.Duration
	var weights []float64
	for _, st := range published(plan, clock) {
		if len(st.Readings) != 1 || st.Readings[0].Kind != vward.Weight {
			t.Fatalf("a scale sent %v", st.Readings)
		}
		w := st.Readings[0].Value
		if math.Abs(w*10-math.Round(w*10)) > 1e-9 {
			t.Errorf("weight %v is not in tenths of a kg", w)
		}
		at = append(at, st.At)
		weights = append(weights, w)
	}
	// From 08:00: 07:30 is 23h30m in, then daily; the scenario is 96h.
	want := []time.Duration{23*time.Hour + 30*time.Minute, 47*time.Hour + 30*time.Minute, 71*time.Hour + 30*time.Minute, 95*time.Hour + 30*time.Minute}
	if len(at) != len(want) {
		t.Fatalf("weighed at %v, want %v", at, want)
	}
	for i := range want {
		if at[i] != want[i] {
			t.Errorf("weighing %d at %s, want %s", i, at[i], want[i])
		}
	}
	if gain := weights[len(weights)-1] - weights[0]; gain < 2.8-0.7 || gain > 2.8+0.7 {
		t.Errorf("weights %v: gain %.1f kg, want 2.8 ± 0.7", weights, gain)
	}
}

// What the weight adds to a scenario file is checked when it loads, with
// errors that name the field.
func TestWeightScenarioValidation(t *testing.T) {
	patient := func(p string) string {
		return `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p",` + p + `}]}`
	}
	for _, c := range []struct {
		name, src, want string
	}{
		{"weight out of range", patient(`"baseline":{"weight":900},"devices":[{"kind":"scale"}]`), "baseline weight 900 kg"},
		{"gain too large", patient(`"trajectories":[{"kind":"fluid_retention","magnitude":45}],"devices":[{"kind":"scale"}]`), "magnitude 45 kg"},
		{"kind not modelled", patient(`"devices":[{"kind":"hub","measures":["blood_glucose"]}]`), `no physiology for "blood_glucose"`},
		{"unknown template", patient(`"care_plan":{"template":"gout"},"devices":[{"kind":"scale"}]`), `template "gout"`},
		{"template and plan", patient(`"care_plan":{"template":"heart_failure","plan":{"version":1,"name":"x"}},"devices":[{"kind":"scale"}]`), "not both"},
		{"empty care plan", patient(`"care_plan":{},"devices":[{"kind":"scale"}]`), "give a template"},
		{"bad plan", patient(`"care_plan":{"plan":{"version":2,"name":"x"}},"devices":[{"kind":"scale"}]`), "care_plan: plan:"},
		{"unknown care plan field", patient(`"care_plan":{"templates":"heart_failure"},"devices":[{"kind":"scale"}]`), `unknown field "templates"`},
	} {
		_, err := simulator.Parse([]byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
	for name, src := range map[string]string{
		"template":    patient(`"care_plan":{"template":"heart_failure"},"devices":[{"kind":"scale","times":["07:00"]}]`),
		"inline plan": patient(`"care_plan":{"plan":{"version":1,"name":"Weight","rules":[{"id":"w","name":"up","risk":"medium","type":"change","kind":"weight","direction":"rise","op":">","value":2,"window":"3d"}]}},"devices":[{"kind":"scale"}]`),
	} {
		sc, err := simulator.Parse([]byte(src))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if plan, _ := sc.Plan(); plan.Patients[0].CarePlan == nil {
			t.Errorf("%s: the plan's patient has no care plan", name)
		}
	}
}
