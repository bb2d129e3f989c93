package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
)

// planOf parses a plan of rules given as JSON objects.
func planOf(t testing.TB, rules ...string) *careplan.Plan {
	t.Helper()
	p, err := careplan.Parse([]byte(`{"version": 1, "name": "Test", "rules": [` + strings.Join(rules, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	hrAbove100 = `{"id": "hr-above-100", "name": "Heart rate above 100 in rate-controlled AF", "risk": "medium",
		"type": "threshold", "kind": "heart_rate", "op": ">", "value": 100, "basis": "test"}`
	hrAbove120 = `{"id": "hr-above-120", "name": "Heart rate above 120", "risk": "high",
		"type": "threshold", "kind": "heart_rate", "op": ">", "value": 120, "basis": "test"}`
	hrWithin1m = `{"id": "hr-within-1m", "name": "Heart rate above 100 in the last minute", "risk": "medium",
		"type": "threshold", "kind": "heart_rate", "op": ">", "value": 100, "within": "1m", "basis": "test"}`
	spo2Sustained = `{"id": "spo2-94-twice", "name": "SpO2 94% or less twice running", "risk": "low-medium",
		"type": "sustained", "kind": "spo2", "op": "<=", "value": 94, "sets": 2, "basis": "test"}`
)

// cpStep is one thing that happens to patient p1, a minute after the last.
type cpStep struct {
	hr     float64           // a round of normal vitals but this heart rate; 0: none
	plan   []string          // a new plan of these rules (version bumped)
	end    bool              // the plan ended
	ack    string            // acknowledge the open care_plan alert of this rule
	solve  string            // resolve it
	redo   bool              // deliver the last round again
	wrong  bool              // the last round was entered in error
	only   vward.ReadingKind // with wrong: only this kind of it
	spo2   float64           // with this SpO2 instead of normal's
	expect []string          // open care_plan alerts after the step: "rule:state:risk"
}

func TestCarePlanCondition(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps []cpStep
	}{
		{name: "a rule that holds raises, at its risk", steps: []cpStep{
			{plan: []string{hrAbove100}},
			{hr: 105, expect: []string{"hr-above-100:raised:medium"}},
			{hr: 108, expect: []string{"hr-above-100:raised:medium"}}, // the same alert, not another
			{redo: true, expect: []string{"hr-above-100:raised:medium"}},
		}},
		{name: "a rule that does not hold raises nothing", steps: []cpStep{
			{plan: []string{hrAbove100}},
			{hr: 100}, {hr: 70},
		}},
		{name: "no plan, no care plan alert", steps: []cpStep{
			{hr: 125},
		}},
		{name: "one alert per rule", steps: []cpStep{
			{plan: []string{hrAbove100, hrAbove120}},
			{hr: 110, expect: []string{"hr-above-100:raised:medium"}},
			{hr: 125, expect: []string{"hr-above-100:raised:medium", "hr-above-120:raised:high"}},
			{hr: 110, expect: []string{"hr-above-100:raised:medium", "hr-above-120:cleared:high"}},
		}},
		{name: "cleared, raised again, resolved, raised anew", steps: []cpStep{
			{plan: []string{hrAbove100}},
			{hr: 105, expect: []string{"hr-above-100:raised:medium"}},
			{hr: 80, expect: []string{"hr-above-100:cleared:medium"}},
			{hr: 105, expect: []string{"hr-above-100:raised:medium"}},
			{ack: "hr-above-100", expect: []string{"hr-above-100:acknowledged:medium"}},
			{hr: 80},
			{hr: 105, expect: []string{"hr-above-100:raised:medium"}},
		}},
		{name: "resolved while it holds: only a newer reading raises again", steps: []cpStep{
			{plan: []string{hrAbove100}},
			{hr: 105, expect: []string{"hr-above-100:raised:medium"}},
			{solve: "hr-above-100"},
			{redo: true},
			{hr: 106, expect: []string{"hr-above-100:raised:medium"}},
		}},
		{name: "a rule removed by a plan change withdraws its alert", steps: []cpStep{
			{plan: []string{hrAbove100, hrAbove120}},
			{hr: 125, expect: []string{"hr-above-100:raised:medium", "hr-above-120:raised:high"}},
			{plan: []string{hrAbove100}, expect: []string{"hr-above-100:raised:medium"}},
		}},
		{name: "a plan ended withdraws every care plan alert", steps: []cpStep{
			{plan: []string{hrAbove100, hrAbove120}},
			{hr: 125, expect: []string{"hr-above-100:raised:medium", "hr-above-120:raised:high"}},
			{end: true},
			{hr: 125},
			{plan: []string{hrAbove100}},
			{hr: 126, expect: []string{"hr-above-100:raised:medium"}},
		}},
		{name: "a changed rule is judged at once on the readings kept", steps: []cpStep{
			{plan: []string{hrAbove120}},
			{hr: 110},
			{plan: []string{hrAbove100}, expect: []string{"hr-above-100:raised:medium"}},
		}},
		{name: "a sustained rule counts readings", steps: []cpStep{
			{plan: []string{spo2Sustained}},
			{hr: 70, spo2: 94},
			{hr: 70, spo2: 93, expect: []string{"spo2-94-twice:raised:low-medium"}},
			{hr: 70, spo2: 97, expect: []string{"spo2-94-twice:cleared:low-medium"}},
		}},
		{name: "a reading entered in error clears what it raised", steps: []cpStep{
			{plan: []string{hrAbove100}},
			{hr: 80},
			{hr: 130, expect: []string{"hr-above-100:raised:medium"}},
			{wrong: true, expect: []string{"hr-above-100:cleared:medium"}},
		}},
		{name: "an entry in error after a clearing and a raise clears again", steps: []cpStep{
			{plan: []string{hrAbove100}},
			{hr: 130, expect: []string{"hr-above-100:raised:medium"}},
			{hr: 80, expect: []string{"hr-above-100:cleared:medium"}},
			{hr: 130, expect: []string{"hr-above-100:raised:medium"}},
			{wrong: true, expect: []string{"hr-above-100:cleared:medium"}},
		}},
		{name: "a reading of another kind entered in error leaves a stale rule's alert", steps: []cpStep{
			{plan: []string{hrWithin1m, spo2Sustained}},
			{hr: 130, expect: []string{"hr-within-1m:raised:medium"}},
			{ack: "hr-within-1m", expect: []string{"hr-within-1m:acknowledged:medium"}},
			{wrong: true, only: vward.SpO2, expect: []string{"hr-within-1m:acknowledged:medium"}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{t: t0}
			r := newRig(t, dbPath(t), clk, Config{})
			ctx := context.Background()
			version := 0
			var last []vward.Reading
			var kept []vward.Reading
			for i, s := range c.steps {
				clk.Set(t0.Add(time.Duration(i+1) * time.Minute))
				at := clk.Now()
				switch {
				case s.plan != nil:
					version++
					if !r.monitor.SetCarePlan("p1", planOf(t, s.plan...), version, nil, "set by test") {
						t.Fatalf("step %d: SetCarePlan changed nothing", i)
					}
				case s.end:
					r.monitor.SetCarePlan("p1", nil, 0, nil, "ended by test")
				case s.ack != "":
					if _, err := r.engine.Acknowledge(ctx, carePlanAlert(t, r, s.ack).ID, "nurse", ""); err != nil {
						t.Fatal(err)
					}
				case s.solve != "":
					if _, err := r.engine.Resolve(ctx, carePlanAlert(t, r, s.solve).ID, "nurse", ""); err != nil {
						t.Fatal(err)
					}
				case s.redo:
					r.monitor.Observe(last)
				case s.wrong:
					wrong := last
					if s.only != "" {
						wrong = slices.DeleteFunc(slices.Clone(last), func(r vward.Reading) bool { return r.Kind != s.only })
					}
					if !r.monitor.Retract("p1", wrong, kept, "entered in error") {
						t.Fatalf("step %d: Retract changed nothing", i)
					}
				default:
					v := normal
					v.hr = s.hr
					if s.spo2 != 0 {
						v.spo2 = s.spo2
					}
					kept = append(kept, last...)
					last = v.readings("p1", at, fmt.Sprint(i))
					r.monitor.Observe(last)
				}
				if got := openCarePlan(t, r); !slices.Equal(got, s.expect) {
					t.Fatalf("step %d: open care_plan alerts %v, want %v", i, got, s.expect)
				}
			}
			// NEWS2 of these rounds is 0 or 1: a plan adds, it raises no NEWS2.
			if as := r.list(t, Filter{Condition: News2}); len(as) != 0 {
				t.Errorf("NEWS2 alerts %+v", as)
			}
		})
	}
}

func openCarePlan(t *testing.T, r *rig) []string {
	t.Helper()
	var out []string
	for _, a := range r.list(t, Filter{State: "open", Condition: CarePlan}) {
		out = append(out, fmt.Sprintf("%s:%s:%s", a.Rule, a.State, a.Risk))
	}
	slices.Sort(out)
	return out
}

func carePlanAlert(t *testing.T, r *rig, rule string) Alert {
	t.Helper()
	for _, a := range r.list(t, Filter{State: "open", Condition: CarePlan}) {
		if a.Rule == rule {
			return a
		}
	}
	t.Fatalf("no open care_plan alert of rule %s", rule)
	return Alert{}
}

// The alert names its rule (ID, name, and the finding in words) in its
// reason and its evidence, is clinical, and escalates like any other.
func TestCarePlanAlertNamesItsRule(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	r.monitor.SetCarePlan("p1", planOf(t, hrAbove100), 1, nil, "set by test")
	v := normal
	v.hr = 112
	r.observe(v, t0)
	a := carePlanAlert(t, r, "hr-above-100")
	if a.Queue != Clinical || a.Condition != CarePlan || !strings.Contains(a.Reason, "hr-above-100") ||
		!strings.Contains(a.Reason, "Heart rate above 100 in rate-controlled AF: heart_rate 112") {
		t.Errorf("alert %+v", a)
	}
	_, audit, err := r.engine.Alert(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Rule        ruleView
		Description string
		Finding     careplan.Finding
	}
	if err := json.Unmarshal(audit[0].Observations, &ev); err != nil {
		t.Fatalf("evidence %s: %v", audit[0].Observations, err)
	}
	if ev.Rule.ID != "hr-above-100" || ev.Rule.Name != "Heart rate above 100 in rate-controlled AF" ||
		!strings.HasPrefix(ev.Description, ev.Rule.Name+": heart_rate 112") || ev.Finding.State != careplan.Holds || ev.Finding.Latest.Value != 112 {
		t.Errorf("evidence %s", audit[0].Observations)
	}
	// Not acknowledged within the medium timeout: escalated, as NEWS2 is.
	clk.Set(t0.Add(r.engine.Config().PolicyFor("w1").AckTimeout.For(a.Risk) + time.Second))
	r.engine.Tick()
	if _, acts := r.audit(t, a.ID); !slices.Contains(acts, ActEscalated) {
		t.Errorf("audit %v, want an escalation", acts)
	}
}

// A plan never suppresses, delays, lowers or changes NEWS2: the same rounds
// make the same NEWS2 alerts, transition for transition, with a plan whose
// rules hold throughout and without one.
func TestCarePlanLeavesNEWS2Alone(t *testing.T) {
	rounds := []vitals{normal, mild, medium, high, worse, high, medium, normal, normal, normal, red, normal, normal, normal}
	run := func(plan *careplan.Plan) []string {
		clk := &clock{t: t0}
		r := newRig(t, dbPath(t), clk, Config{})
		if plan != nil {
			r.monitor.SetCarePlan("p1", plan, 1, nil, "set by test")
		}
		for i, v := range rounds {
			at := t0.Add(time.Duration(i) * 20 * time.Minute)
			clk.Set(at)
			r.observe(v, at)
			r.engine.Tick()
		}
		var out []string
		for _, a := range r.list(t, Filter{Condition: News2}) {
			_, acts := r.audit(t, a.ID)
			out = append(out, fmt.Sprintf("%d %s %s %d %v", a.ID, a.State, a.Risk, a.Score, acts))
		}
		return out
	}
	without := run(nil)
	all := planOf(t, hrAbove100, hrAbove120, spo2Sustained,
		`{"id": "any-temp", "name": "Any temperature", "risk": "high", "type": "threshold", "kind": "temperature", "op": ">", "value": 30, "basis": "test"}`)
	with := run(all)
	if len(without) == 0 {
		t.Fatal("the rounds raised no NEWS2 alert")
	}
	// IDs differ by the care plan alerts raised in between; compare the rest.
	strip := func(ss []string) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			_, out[i], _ = strings.Cut(s, " ")
		}
		return out
	}
	if !reflect.DeepEqual(strip(with), strip(without)) {
		t.Errorf("NEWS2 alerts with a plan\n%v\nwithout\n%v", with, without)
	}
}

// The window a plan keeps is bounded by its look-back and by
// MaxCarePlanWindow, and keeps what the rules read.
func TestCarePlanWindowIsBounded(t *testing.T) {
	w := newPlanWatch(planOf(t, spo2Sustained, hrAbove100), 1)
	for i := range 3 * MaxCarePlanWindow {
		at := t0.Add(time.Duration(i) * time.Second)
		w.add(vward.Reading{Kind: vward.SpO2, Value: 97, At: at})
		w.add(vward.Reading{Kind: vward.Temperature, Value: 37, At: at}) // no rule reads it
		if len(w.window) > 64 && len(w.window) > 2*(w.sets+2)*len(w.kinds)+64 {
			t.Fatalf("after %d readings the window holds %d", i+1, len(w.window))
		}
	}
	w.add(vward.Reading{Kind: vward.HeartRate, Value: 70, At: t0})
	w.trim()
	var spo2 int
	for _, r := range w.window {
		if r.Kind == vward.Temperature {
			t.Fatal("kept a kind no rule reads")
		}
		if r.Kind == vward.SpO2 {
			spo2++
		}
	}
	if spo2 < w.sets || !slices.ContainsFunc(w.window, func(r vward.Reading) bool { return r.Kind == vward.HeartRate }) {
		t.Errorf("window %v lost what the rules read", w.window)
	}

	// A day-long breach at a reading a second: bounded all the same, and
	// the newest kept.
	w = newPlanWatch(planOf(t, `{"id": "spo2-day", "name": "SpO2 94% or less for a day", "risk": "medium",
		"type": "sustained", "kind": "spo2", "op": "<=", "value": 94, "for": "1d", "basis": "test"}`), 1)
	var at time.Time
	for i := range 3 * MaxCarePlanWindow {
		at = t0.Add(time.Duration(i) * time.Second)
		w.add(vward.Reading{Kind: vward.SpO2, Value: 93, At: at})
		if len(w.window) > maxUntrimmed {
			t.Fatalf("after %d readings the window holds %d", i+1, len(w.window))
		}
	}
	if n := len(w.window); n < MaxCarePlanWindow || !w.window[n-1].At.Equal(at) {
		t.Errorf("window of %d ending %v, want at least %d ending at %v", n, w.window[n-1].At, MaxCarePlanWindow, at)
	}
}

// After a restart the open care_plan alert is the same rule's: the rule
// still breached keeps it rather than raising a second, and a reading
// that no longer breaks it clears it; an old reading delivered again
// cannot raise a resolved one.
func TestCarePlanAlertAfterRestart(t *testing.T) {
	clk := &clock{t: t0}
	path := dbPath(t)
	r := newRig(t, path, clk, Config{})
	plan := planOf(t, hrAbove100, hrAbove120)
	r.monitor.SetCarePlan("p1", plan, 1, nil, "set by test")
	v := normal
	v.hr = 125
	r.observe(v, t0)
	before := openCarePlan(t, r)

	clk.Set(t0.Add(time.Minute))
	r = newRig(t, path, clk, Config{})
	r.monitor.SetCarePlan("p1", plan, 1, nil, "node started")
	r.observe(v, t0.Add(time.Minute))
	if got := openCarePlan(t, r); !slices.Equal(got, before) || len(got) != 2 {
		t.Fatalf("after the restart %v, want %v", got, before)
	}
	v.hr = 110
	r.observe(v, t0.Add(2*time.Minute))
	if got, want := openCarePlan(t, r), []string{"hr-above-100:raised:medium", "hr-above-120:cleared:high"}; !slices.Equal(got, want) {
		t.Fatalf("after 110: %v, want %v", got, want)
	}
	a := carePlanAlert(t, r, "hr-above-120")
	if _, err := r.engine.Acknowledge(context.Background(), a.ID, "nurse", ""); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(3 * time.Minute))
	r = newRig(t, path, clk, Config{})
	r.monitor.SetCarePlan("p1", plan, 1, nil, "node started")
	v.hr = 125
	r.observe(v, t0) // the first round, delivered again
	if got, want := openCarePlan(t, r), []string{"hr-above-100:raised:medium"}; !slices.Equal(got, want) {
		t.Fatalf("an old reading again: %v, want %v", got, want)
	}
}

// Readings read back from the history fill a rule's window: a weight gain
// over three days raises at once, for the plan at its version only; a
// plan changed since, or a patient not admitted, takes nothing.
func TestFillCarePlan(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	gain := planOf(t, `{"id": "weight-gain-3d", "name": "Weight up more than 2 kg in 3 days", "risk": "medium",
		"type": "change", "kind": "weight", "direction": "rise", "op": ">", "value": 2, "window": "3d", "basis": "test"}`)
	r.monitor.SetCarePlan("p1", gain, 2, nil, "set by test")
	r.monitor.Observe([]vward.Reading{weighed(t0.Add(-time.Hour))})
	if got := openCarePlan(t, r); len(got) != 0 {
		t.Fatalf("one weight: %v", got)
	}
	earlier := []vward.Reading{weighed(t0.Add(-60 * time.Hour)), weighed(t0.Add(-30 * time.Hour))}
	earlier[0].Value, earlier[1].Value = 79.0, 80.2
	if r.monitor.FillCarePlan("p1", 1, earlier, "read back") {
		t.Fatal("filled a plan at another version")
	}
	if r.monitor.FillCarePlan("p9", 2, earlier, "read back") {
		t.Fatal("filled the plan of a patient not admitted")
	}
	if got := openCarePlan(t, r); len(got) != 0 {
		t.Fatalf("after fills refused: %v", got)
	}
	if !r.monitor.FillCarePlan("p1", 2, earlier, "read back from the history") {
		t.Fatal("FillCarePlan refused the plan's version")
	}
	if got, want := openCarePlan(t, r), []string{"weight-gain-3d:raised:medium"}; !slices.Equal(got, want) {
		t.Fatalf("after the read back: %v, want %v", got, want)
	}
	if a := carePlanAlert(t, r, "weight-gain-3d"); !strings.Contains(a.Reason, "read back from the history") {
		t.Errorf("reason %q", a.Reason)
	}
}
