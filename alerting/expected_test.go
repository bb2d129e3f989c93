package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
)

// dailyWeight is a plan expecting a weight every day by 10:00.
func dailyWeight(t testing.TB) *careplan.Plan {
	t.Helper()
	p, err := careplan.Parse([]byte(`{"version": 1, "name": "Test", "expected": [{"kind": "weight", "every": "1d", "by": "10:00"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func weighed(at time.Time) vward.Reading {
	return vward.Reading{Device: "scale-p1", Patient: "p1", Ward: "w1", MsgID: at.Format(time.RFC3339Nano), Kind: vward.Weight, Value: 81.5, At: at}
}

// expectedAlert returns p1's overdue alert of the weight the plan
// expects, nil when there is none open.
func expectedAlert(t *testing.T, r *rig) *Alert {
	t.Helper()
	var found *Alert
	for _, a := range r.list(t, Filter{State: "open", Condition: Overdue}) {
		if a.Rule == "" {
			continue // NEWS2's
		}
		if a.Rule != ExpectedRule(vward.Weight) || found != nil {
			t.Fatalf("unexpected overdue alert %+v", a)
		}
		found = &a
	}
	return found
}

// A measurement the plan expects raises overdue once its due time has
// passed, not at it; the measurement clears it, and the next day's
// deadline raises it again. NEWS2's overdue check is not touched.
func TestExpectedMeasurementOverdue(t *testing.T) {
	clk := &clock{t: t0} // Monday 10:00
	r := newRig(t, dbPath(t), clk, Config{Location: time.UTC})
	since := map[vward.ReadingKind]time.Time{vward.Weight: t0.Add(-time.Hour)}
	r.monitor.SetCarePlan("p1", dailyWeight(t), 1, since, "set by test")
	r.engine.Tick()
	if a := expectedAlert(t, r); a != nil {
		t.Fatalf("at the deadline itself: %+v", a)
	}
	clk.Set(t0.Add(time.Minute))
	r.engine.Tick()
	a := expectedAlert(t, r)
	if a == nil || a.State != Raised || !a.Active {
		t.Fatalf("a minute past the deadline: %+v, want a raised overdue alert", a)
	}
	if !strings.Contains(a.Reason, "no weight since the care plan began to expect it") || !strings.Contains(a.Reason, "every 1d by 10:00") {
		t.Errorf("reason %q", a.Reason)
	}
	if n := len(r.list(t, Filter{State: "open", Condition: Overdue})); n != 1 {
		t.Errorf("%d overdue alerts, want only the weight's", n)
	}

	clk.Set(t0.Add(2 * time.Minute))
	r.monitor.Observe([]vward.Reading{weighed(t0.Add(2 * time.Minute))})
	r.engine.Tick()
	if a := expectedAlert(t, r); a == nil || a.Active {
		t.Fatalf("weighed: %+v, want the alert cleared", a)
	}
	clk.Set(t0.Add(24*time.Hour + time.Minute)) // Tuesday 10:01
	r.engine.Tick()
	if a := expectedAlert(t, r); a == nil || !a.Active {
		t.Fatalf("Tuesday 10:01 with Monday's weight only: %+v, want it raised again", a)
	}
}

// A plan that no longer expects the measurement withdraws its alert, and
// so does a plan ended.
func TestExpectedMeasurementDropped(t *testing.T) {
	for _, c := range []struct {
		name string
		plan *careplan.Plan
	}{{"expectation removed", planOf(t, hrAbove100)}, {"plan ended", nil}} {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{t: t0.Add(time.Minute)}
			r := newRig(t, dbPath(t), clk, Config{Location: time.UTC})
			r.monitor.SetCarePlan("p1", dailyWeight(t), 1, map[vward.ReadingKind]time.Time{vward.Weight: t0.Add(-time.Hour)}, "set by test")
			r.engine.Tick()
			a := expectedAlert(t, r)
			if a == nil {
				t.Fatal("not raised")
			}
			r.monitor.SetCarePlan("p1", c.plan, 2, nil, "changed by test")
			if a := expectedAlert(t, r); a != nil {
				t.Fatalf("still open: %+v", a)
			}
			r.engine.Tick()
			if a := expectedAlert(t, r); a != nil {
				t.Fatalf("raised again: %+v", a)
			}
			reasons := r.reasons(t, a.ID)
			if last := reasons[len(reasons)-1]; !strings.Contains(last, "changed by test") {
				t.Errorf("withdrawn with %q, want the plan change's cause", last)
			}
		})
	}
}

// The last measurement is kept across a restart: a plan given again at
// start, before any reading, knows yesterday's weight.
func TestExpectedMeasurementAfterRestart(t *testing.T) {
	clk := &clock{t: t0.Add(-2 * time.Hour)} // Monday 08:00
	path := dbPath(t)
	since := map[vward.ReadingKind]time.Time{vward.Weight: t0.Add(-25 * time.Hour)} // Sunday 09:00
	r := newRig(t, path, clk, Config{Location: time.UTC})
	r.monitor.SetCarePlan("p1", dailyWeight(t), 1, since, "set by test")
	r.monitor.Observe([]vward.Reading{weighed(clk.Now())})

	clk.Set(t0.Add(2 * time.Hour)) // Monday 12:00
	r = newRig(t, path, clk, Config{Location: time.UTC})
	r.monitor.SetCarePlan("p1", dailyWeight(t), 1, since, "node started")
	r.engine.Tick()
	if a := expectedAlert(t, r); a != nil {
		t.Fatalf("weighed at 08:00 before the restart: %+v", a)
	}
	clk.Set(t0.Add(24*time.Hour + time.Minute))
	r.engine.Tick()
	if a := expectedAlert(t, r); a == nil {
		t.Fatal("Tuesday 10:01: not raised")
	}
}

// A weight entered in error no longer counts: the one before it, or none,
// is the last measurement, after a restart too.
func TestExpectedMeasurementEnteredInError(t *testing.T) {
	clk := &clock{t: t0.Add(-30 * time.Minute)}
	path := dbPath(t)
	r := newRig(t, path, clk, Config{Location: time.UTC})
	since := map[vward.ReadingKind]time.Time{vward.Weight: t0.Add(-time.Hour)}
	r.monitor.SetCarePlan("p1", dailyWeight(t), 1, since, "set by test")
	wrong := weighed(t0.Add(-30 * time.Minute))
	wrong.Device = vward.PersonDevicePrefix + "nurse"
	r.monitor.Observe([]vward.Reading{wrong})
	clk.Set(t0.Add(time.Minute))
	r.engine.Tick()
	if a := expectedAlert(t, r); a != nil {
		t.Fatalf("weighed: %+v", a)
	}
	if !r.monitor.Retract("p1", []vward.Reading{wrong}, nil, "entered in error") {
		t.Fatal("Retract changed nothing")
	}
	r.engine.Tick()
	if a := expectedAlert(t, r); a == nil {
		t.Fatal("the weight in error still counts")
	}
	r = newRig(t, path, clk, Config{Location: time.UTC})
	r.monitor.SetCarePlan("p1", dailyWeight(t), 1, since, "node started")
	r.engine.Tick()
	if a := expectedAlert(t, r); a == nil {
		t.Fatal("after a restart the weight in error counts again")
	}
}

// A paused patient's expected measurement alert is withdrawn and none is
// raised; on resuming, it is due a whole interval later.
func TestExpectedMeasurementPaused(t *testing.T) {
	clk := &clock{t: t0.Add(time.Minute)}
	r := newRig(t, dbPath(t), clk, Config{Location: time.UTC})
	r.monitor.SetCarePlan("p1", dailyWeight(t), 1, map[vward.ReadingKind]time.Time{vward.Weight: t0.Add(-time.Hour)}, "set by test")
	r.engine.Tick()
	if expectedAlert(t, r) == nil {
		t.Fatal("not raised")
	}
	r.monitor.Update(PatientInfo{ID: "p1", Ward: "w1", Name: "One", Paused: true}, "admitted to hospital")
	r.engine.Tick()
	if a := expectedAlert(t, r); a != nil {
		t.Fatalf("paused: %+v", a)
	}
	clk.Set(t0.Add(26 * time.Hour)) // Tuesday 12:00
	r.monitor.Update(PatientInfo{ID: "p1", Ward: "w1", Name: "One"}, "home again")
	r.engine.Tick()
	if a := expectedAlert(t, r); a != nil {
		t.Fatalf("just resumed: %+v", a)
	}
	clk.Set(t0.Add(48*time.Hour + time.Minute)) // Wednesday 10:01
	r.engine.Tick()
	if expectedAlert(t, r) == nil {
		t.Fatal("Wednesday 10:01 after resuming on Tuesday: not raised")
	}
}

// An overdue alert a clinician resolves while the measurement is still
// overdue is not raised again at the next tick, nor after a restart: the
// measurement falls due again an interval after the resolution, NEWS2's
// set as a care plan's weight.
func TestOverdueResolvedWhileOverdue(t *testing.T) {
	clk := &clock{t: t0}
	path := dbPath(t)
	r := newRig(t, path, clk, Config{Location: time.UTC})
	r.observe(mild, t0) // NEWS2 2: a set due within 4 hours
	r.monitor.SetCarePlan("p1", dailyWeight(t), 1, map[vward.ReadingKind]time.Time{vward.Weight: t0.Add(-time.Hour)}, "set by test")
	resolvedAt := t0.Add(4*time.Hour + time.Minute)
	clk.Set(resolvedAt)
	r.engine.Tick()
	open := r.list(t, Filter{State: "open", Condition: Overdue})
	if len(open) != 2 {
		t.Fatalf("%d overdue alerts, want the set's and the weight's: %+v", len(open), open)
	}
	for _, a := range open {
		if _, err := r.engine.Resolve(context.Background(), a.ID, "nurse", "phoned: scales broken, obs tomorrow"); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(resolvedAt.Add(time.Second))
	r.engine.Tick()
	if open := r.list(t, Filter{State: "open", Condition: Overdue}); len(open) != 0 {
		t.Fatalf("raised again at the next tick: %+v", open)
	}
	clk.Set(resolvedAt.Add(3 * time.Hour))
	r = newRig(t, path, clk, Config{Location: time.UTC})
	r.monitor.SetCarePlan("p1", dailyWeight(t), 1, map[vward.ReadingKind]time.Time{vward.Weight: t0.Add(-time.Hour)}, "node started")
	r.engine.Tick()
	if open := r.list(t, Filter{State: "open", Condition: Overdue}); len(open) != 0 {
		t.Fatalf("raised again after a restart: %+v", open)
	}
	clk.Set(resolvedAt.Add(4*time.Hour + time.Second)) // the set's interval after the resolution
	r.engine.Tick()
	if open := r.list(t, Filter{State: "open", Condition: Overdue}); len(open) != 1 || open[0].Rule != "" {
		t.Fatalf("an interval after the resolution: %+v, want the set's overdue alert again", open)
	}
	clk.Set(t0.Add(24*time.Hour + time.Minute)) // Tuesday 10:01: the next day's weight
	r.engine.Tick()
	if expectedAlert(t, r) == nil {
		t.Fatal("the next day's weight missing: not raised")
	}
}
