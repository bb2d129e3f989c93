package alerting

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vward/vward/internal/testenv"
)

// The metrics follow an alert through raise, escalation, acknowledgement
// and resolution; every condition's series is there from the start.
func TestEngineMetrics(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.engine.Run(ctx) }()
	defer func() { cancel(); <-done }()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.engine.Collector())
	n := len(conditions)
	if got := testenv.Samples(t, reg); len(got) != n*4+n*5+n {
		t.Errorf("series at start: %d, want every condition and state at 0:\n%v", len(got), slices.Sorted(maps.Keys(got)))
	}
	check := func(when string, want map[string]float64) {
		t.Helper()
		got := testenv.Samples(t, reg)
		for k, v := range got {
			if want[k] != v {
				t.Errorf("%s: %s = %v, want %v", when, k, v, want[k])
			}
		}
	}
	news2 := func(openRaised, openAcked, toRaised, toAcked, toResolved, escalations float64) map[string]float64 {
		return map[string]float64{
			"vward_alerts_open{condition=news2,state=raised}":                openRaised,
			"vward_alerts_open{condition=news2,state=acknowledged}":          openAcked,
			"vward_alert_transitions_total{condition=news2,to=raised}":       toRaised,
			"vward_alert_transitions_total{condition=news2,to=acknowledged}": toAcked,
			"vward_alert_transitions_total{condition=news2,to=resolved}":     toResolved,
			"vward_alert_escalations_total{condition=news2}":                 escalations,
		}
	}

	r.observe(high, t0)
	clk.Set(t0.Add(11 * time.Minute))
	r.engine.Tick() // not acknowledged within 10 minutes: escalated
	r.engine.mu.Lock()
	a := *r.engine.open[Key{Patient: "p1", Condition: News2}]
	r.engine.mu.Unlock()
	check("raised, escalated", news2(1, 0, 2, 0, 0, 1))
	if _, err := r.engine.Acknowledge(context.Background(), a.ID, "nurse", ""); err != nil {
		t.Fatal(err)
	}
	check("acknowledged", news2(0, 1, 2, 1, 0, 1))
	if _, err := r.engine.Resolve(context.Background(), a.ID, "nurse", "seen"); err != nil {
		t.Fatal(err)
	}
	check("resolved", news2(0, 0, 2, 1, 1, 1))
}
