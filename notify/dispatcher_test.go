package notify_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/notify"
)

// An unacknowledged high alert reaches tier 0 at once and tier 1 after its
// timer; the acknowledgement cancels tier 1's retries at once, and nothing
// is sent after it.
func TestDispatchEscalatesAndStopsAtAcknowledgement(t *testing.T) {
	r := newRig(t)
	ward := newReceiver(t, nil)
	senior := newReceiver(t, func(int) int { return http.StatusBadGateway }) // never answers well
	r.webhook(t, "ward-pager", ward.URL)
	r.webhook(t, "senior-pager", senior.URL)
	r.route(t, notify.Route{Tier: 0, TargetKind: "user", Target: "alice", Channel: "ward-pager"})
	r.route(t, notify.Route{Tier: 1, TargetKind: "user", Target: "bob", Channel: "senior-pager"})
	// Retries of tier 1 wait long enough that only the acknowledgement can end them.
	r.dispatch(t, notify.Config{Backoff: time.Hour})

	r.high()
	a := r.openAlert(t)
	got := ward.waitFor(t, 1)
	if got[0].n.Recipient != "alice" || got[0].n.Tier != 0 {
		t.Fatalf("first notification = %+v", got[0].n)
	}
	if n := len(senior.requests()); n != 0 {
		t.Fatalf("tier 1 told %d times before its timer", n)
	}

	r.clock.Add(10 * time.Minute) // high: AckTimeout 10 min
	r.engine.Tick()
	s := senior.waitFor(t, 1)
	if s[0].n.Recipient != "bob" || s[0].n.Tier != 1 || s[0].n.Event != "escalated" || s[0].n.TierName != "senior clinician" {
		t.Fatalf("escalation notification = %+v", s[0].n)
	}
	r.waitDeliveries(t, a.ID, "bob's first attempt failed", func(ds []notify.Delivery) bool { return count(ds, "bob", notify.ResultFailed) == 1 })

	if _, err := r.engine.Acknowledge(context.Background(), a.ID, "alice", "phoned"); err != nil {
		t.Fatal(err)
	}
	ds := r.waitDeliveries(t, a.ID, "bob's retries cancelled", func(ds []notify.Delivery) bool { return count(ds, "bob", notify.ResultCancelled) == 1 })
	last := ds[len(ds)-1]
	if !strings.Contains(last.Error, "acknowledged by alice") {
		t.Errorf("cancelled row says %q; want who acknowledged", last.Error)
	}
	// When the reminder would have been due: an acknowledged alert has none.
	r.clock.Add(5 * time.Minute)
	r.engine.Tick()
	r.high()
	time.Sleep(100 * time.Millisecond) // a send would have been made by now; its absence is what is tested
	of := func(rs []received) (n int) {
		for _, g := range rs {
			if g.n.AlertID == a.ID {
				n++
			}
		}
		return n
	}
	for _, g := range append(ward.requests(), senior.requests()...) {
		t.Logf("%s %s tier %d v%d %s", g.n.ID, g.n.Event, g.n.Tier, g.n.AlertVersion, g.n.Recipient)
	}
	if n, m := of(ward.requests()), of(senior.requests()); n != 1 || m != 1 {
		t.Errorf("after the acknowledgement: ward pager %d requests, senior pager %d; want 1 and 1", n, m)
	}
}

// A notification the dispatcher never got to (it was not running, or its
// queue overflowed) is sent when it starts: it recomputes from the open
// alerts and the delivery log, and does not send twice what was sent.
func TestDispatchRecomputesOpenAlertsAtStart(t *testing.T) {
	path := t.TempDir() + "/vward.db"
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	rc := newReceiver(t, nil)

	r := openRig(t, path, clk)
	r.webhook(t, "pager", rc.URL)
	r.route(t, notify.Route{Tier: 0, TargetKind: "user", Target: "alice", Channel: "pager"})
	r.route(t, notify.Route{Tier: 1, TargetKind: "user", Target: "bob", Channel: "pager"})
	r.high() // raised, with no dispatcher running: the event waits in an inbox that is lost
	clk.Add(10 * time.Minute)
	r.engine.Tick() // escalated to tier 1
	a := r.openAlert(t)

	r2 := openRig(t, path, clk)
	r2.dispatch(t, notify.Config{})
	got := rc.waitFor(t, 1)
	if got[0].n.Recipient != "bob" || got[0].n.Event != "escalated" || got[0].n.AlertVersion != a.Version {
		t.Fatalf("recomputed notification = %+v; want the escalation to bob", got[0].n)
	}
	r2.waitDeliveries(t, a.ID, "bob told", func(ds []notify.Delivery) bool { return count(ds, "bob", notify.ResultSent) == 1 })

	r3 := openRig(t, path, clk)
	r3.dispatch(t, notify.Config{})
	time.Sleep(100 * time.Millisecond) // a resend would have been made by now
	if n := len(rc.requests()); n != 1 {
		t.Errorf("a second start sent %d notifications in all; want 1", n)
	}
}

// A rota tells whoever is on call at the time; with nobody on call, the
// delivery log says so.
func TestDispatchRotaAndHandover(t *testing.T) {
	r := newRig(t)
	rc := newReceiver(t, nil)
	r.webhook(t, "pager", rc.URL)
	r.route(t, notify.Route{Tier: 0, TargetKind: "rota", Target: "nights", Channel: "pager"})
	now := r.clock.Now()
	ctx := context.Background()
	for _, sh := range []notify.Shift{
		{Rota: "nights", User: "alice", Start: now.Add(-8 * time.Hour), End: now.Add(time.Minute)},
		{Rota: "nights", User: "bob", Start: now.Add(-time.Minute), End: now.Add(8 * time.Hour)}, // handover: both
		{Rota: "nights", User: "carol", Start: now.Add(8 * time.Hour), End: now.Add(16 * time.Hour)},
	} {
		if _, err := r.store.AddShift(ctx, sh); err != nil {
			t.Fatal(err)
		}
	}
	r.dispatch(t, notify.Config{})
	r.high()
	a := r.openAlert(t)
	ds := r.waitDeliveries(t, a.ID, "alice and bob told", func(ds []notify.Delivery) bool {
		return count(ds, "alice", notify.ResultSent) == 1 && count(ds, "bob", notify.ResultSent) == 1
	})
	if count(ds, "carol", notify.ResultSent) != 0 {
		t.Errorf("carol, not yet on call, was told: %+v", ds)
	}
}

func TestNightOnlyTechnicalRoutesWait(t *testing.T) {
	c := notify.Config{NightStart: 22 * time.Hour, NightEnd: 7 * time.Hour, Location: time.UTC}
	for _, tc := range []struct {
		at    string
		night bool
	}{
		{"2026-12-04T21:59:59Z", false}, {"2026-12-04T22:00:00Z", true}, {"2026-12-05T03:00:00Z", true},
		{"2026-12-05T06:59:59Z", true}, {"2026-12-05T07:00:00Z", false}, {"2026-12-05T12:00:00Z", false},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		if got := c.Night(at); got != tc.night {
			t.Errorf("Night(%s) = %v, want %v", tc.at, got, tc.night)
		}
	}
}

// A channel that keeps failing a ward raises the ward's technical alert,
// which never pages; it resolves when the channel delivers again.
func TestDeadChannelRaisesTechnicalAlert(t *testing.T) {
	r := newRig(t)
	var healed atomic.Bool
	rc := newReceiver(t, func(int) int {
		if healed.Load() {
			return 0
		}
		return http.StatusServiceUnavailable
	})
	r.webhook(t, "pager", rc.URL)
	r.route(t, notify.Route{Tier: 0, TargetKind: "user", Target: "alice", Channel: "pager"})
	r.route(t, notify.Route{Tier: 1, TargetKind: "user", Target: "bob", Channel: "pager"})
	r.dispatchWith(t, notify.Config{MaxAttempts: 2, FailingAfter: 2}, r.engine)

	failing := func() []alerting.Alert {
		as, err := r.engine.Alerts(context.Background(), alerting.Filter{State: "open", Condition: alerting.ChannelFailing})
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	r.high()
	a := r.openAlert(t)
	r.waitDeliveries(t, a.ID, "alice given up", func(ds []notify.Delivery) bool { return count(ds, "alice", notify.ResultGaveUp) == 1 })
	if f := failing(); len(f) != 0 {
		t.Fatalf("one notification given up already raised %+v", f)
	}
	r.clock.Add(10 * time.Minute)
	r.engine.Tick()
	r.waitDeliveries(t, a.ID, "bob given up", func(ds []notify.Delivery) bool { return count(ds, "bob", notify.ResultGaveUp) == 1 })
	var f []alerting.Alert
	for deadline := time.Now().Add(10 * time.Second); len(f) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f = failing()
	}
	if len(f) != 1 || f[0].Ward != "w1" || f[0].Channel != "pager" || f[0].Queue != alerting.Technical || !strings.Contains(f[0].Reason, "gave up on 2 notifications") {
		t.Fatalf("channel_failing alerts = %+v", f)
	}

	healed.Store(true)
	r.clock.Add(5 * time.Minute) // the reminder, to bob
	r.engine.Tick()
	r.waitDeliveries(t, a.ID, "bob reminded", func(ds []notify.Delivery) bool { return count(ds, "bob", notify.ResultSent) == 1 })
	for deadline := time.Now().Add(10 * time.Second); len(f) != 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f = failing()
	}
	if len(f) != 0 {
		t.Errorf("the channel delivers again, yet its alert is open: %+v", f)
	}
}

// A technical alert at night tells only the routes marked at_night; the
// others are told in the morning if the alert is still raised.
func TestTechnicalRoutesWaitForTheMorning(t *testing.T) {
	r := newRig(t)
	day := r.clock.Now().UTC().Truncate(24 * time.Hour)
	r.clock.Add(day.Add(27 * time.Hour).Sub(r.clock.Now())) // 03:00 UTC tomorrow
	rc := newReceiver(t, nil)
	r.webhook(t, "pager", rc.URL)
	r.route(t, notify.Route{Queue: alerting.Technical, TargetKind: "user", Target: "alice", Channel: "pager"})
	r.route(t, notify.Route{Queue: alerting.Technical, TargetKind: "user", Target: "bob", Channel: "pager", AtNight: true})
	r.dispatch(t, notify.Config{Location: time.UTC, Tick: 10 * time.Millisecond})

	low := 0.1
	r.monitor.ObserveDevice("dev-p1", "p1", "w1", &low, r.clock.Now())
	as, err := r.engine.Alerts(context.Background(), alerting.Filter{State: "open", Condition: alerting.BatteryLow})
	if err != nil || len(as) != 1 {
		t.Fatalf("battery_low alerts: %v %v", as, err)
	}
	a := as[0]
	r.waitDeliveries(t, a.ID, "bob told at night", func(ds []notify.Delivery) bool { return count(ds, "bob", notify.ResultSent) == 1 })
	time.Sleep(100 * time.Millisecond) // the ticks that would tell alice at night
	if ds, _ := r.store.Deliveries(context.Background(), a.ID); count(ds, "alice", notify.ResultSent) != 0 {
		t.Fatalf("alice told at night: %+v", ds)
	}
	r.clock.Add(4*time.Hour + 30*time.Minute) // 07:30
	r.waitDeliveries(t, a.ID, "alice told in the morning", func(ds []notify.Delivery) bool { return count(ds, "alice", notify.ResultSent) == 1 })
}
