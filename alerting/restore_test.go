package alerting

import (
	"context"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// runEngine runs the rig's engine writer until the test ends.
func (r *rig) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.engine.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// waitOpen waits for the rig's open clinical alerts to satisfy ok.
func (r *rig) waitOpen(t *testing.T, what string, ok func([]Alert) bool) []Alert {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		as := r.clinical(t)
		if ok(as) {
			return as
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: open clinical alerts %+v", what, as)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rowScore(t *testing.T, m *Monitor) int {
	t.Helper()
	v, ok := view(m.Patient("p1"))
	if !ok || v.News2 == nil {
		t.Fatalf("p1's row has no score: %+v", v)
	}
	return v.News2.Score
}

// SpO2 88 % on air scores 0 on Scale 2 and 3 (a red score) on Scale 1.
var onAir88 = vitals{16, 88, 0, 120, 70, 0, 37.0}

func TestScaleChangeRescoresAndAlertsAtOnce(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	r.run(t)
	r.monitor.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One", SpO2Scale: 2})
	r.observe(onAir88, t0)
	if got := rowScore(t, r.monitor); got != 0 {
		t.Fatalf("on Scale 2 the row scores %d, want 0", got)
	}
	r.waitOpen(t, "on Scale 2", func(as []Alert) bool { return len(as) == 0 })

	clk.Set(t0.Add(time.Minute))
	r.monitor.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One", SpO2Scale: 1})
	if got := rowScore(t, r.monitor); got != 3 {
		t.Fatalf("moved to Scale 1 the row scores %d, want 3 at once", got)
	}
	open := r.waitOpen(t, "moved to Scale 1 with no new reading", func(as []Alert) bool { return len(as) == 1 })
	if open[0].Risk != news2.LowMedium || open[0].State != Raised {
		t.Fatalf("alert after the scale change = %+v, want raised low-medium", open[0])
	}

	// Back to Scale 2: the score drops at once, the alert clears only as
	// the hysteresis allows (three better sets an hour apart).
	clk.Set(t0.Add(2 * time.Minute))
	r.monitor.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One", SpO2Scale: 2})
	if got := rowScore(t, r.monitor); got != 0 {
		t.Fatalf("back on Scale 2 the row scores %d, want 0", got)
	}
	time.Sleep(100 * time.Millisecond)
	if as := r.clinical(t); len(as) != 1 {
		t.Fatalf("back on Scale 2 one set later the alerts are %+v; the hysteresis must keep it open", as)
	}
	// An admission that changes nothing else does not assess again.
	before := r.engine.Stats.Assessed.Load()
	r.monitor.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One again", SpO2Scale: 2})
	if got := r.engine.Stats.Assessed.Load(); got != before {
		t.Errorf("a rename assessed the patient (%d -> %d)", before, got)
	}
}

func TestRestoreRebuildsRowsAndRaisesFromHistory(t *testing.T) {
	clk := &clock{t: t0.Add(10 * time.Minute)}
	r := newRig(t, dbPath(t), clk, Config{})
	r.run(t)
	r.monitor.Admit(PatientInfo{ID: "p2", Ward: "w1", Name: "Two"})
	// What the history holds: p1 stable then high, p2 stable, p3 not
	// admitted (discharged since).
	var rs []vward.Reading
	rs = append(rs, high.readings("p1", t0.Add(5*time.Minute), "b")...)
	rs = append(rs, normal.readings("p2", t0, "c")...)
	rs = append(rs, high.readings("p3", t0, "d")...)
	for i := range rs {
		rs[i].Ward = "old-ward"
	}
	r.monitor.Restore(rs)

	if got := rowScore(t, r.monitor); got != 8 {
		t.Errorf("p1's restored row scores %d, want 8", got)
	}
	v, _ := view(r.monitor.Patient("p1"))
	if v.Ward != "w1" || len(v.Vitals) != 7 || !v.Vitals["spo2"].At.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("p1's restored row = %+v, want ward w1 and seven vitals measured at +5m", v)
	}
	if v, _ := view(r.monitor.Patient("p2")); v.News2 == nil || v.News2.Score != 0 {
		t.Errorf("p2's restored row = %+v, want NEWS2 0", v)
	}
	if _, ok := r.monitor.Patient("p3"); ok {
		t.Error("a patient not admitted got a row from the history")
	}
	open := r.waitOpen(t, "restored", func(as []Alert) bool { return len(as) == 1 })
	if open[0].Patient != "p1" || open[0].Risk != news2.High {
		t.Errorf("restored alert = %+v, want p1 high", open[0])
	}
}
