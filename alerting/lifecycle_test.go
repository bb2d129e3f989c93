package alerting

import (
	"errors"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func testPolicy() Policy { return Policy{}.over(DefaultPolicy()) }

func met(r news2.Risk, at time.Time) Observation {
	return Observation{Met: true, Risk: r, Score: map[news2.Risk]int{news2.LowMedium: 3, news2.Medium: 5, news2.High: 8}[r], Complete: true, At: at, Reason: r.String()}
}

func better(at time.Time) Observation {
	return Observation{Complete: true, At: at, Reason: "NEWS2 0"}
}

func raise(t *testing.T, r news2.Risk) Alert {
	t.Helper()
	a, eff := Raise(1, Key{Patient: "p1", Condition: News2}, "w1", met(r, t0), testPolicy(), t0)
	if !eff.Persist || !eff.Page || len(eff.Audit) != 1 || eff.Audit[0].Action != ActRaised {
		t.Fatalf("raise effect = %+v", eff)
	}
	return a
}

func wantState(t *testing.T, a Alert, s State, r news2.Risk) {
	t.Helper()
	if a.State != s || a.Risk != r {
		t.Fatalf("alert is %s at %s, want %s at %s (%s)", a.State, a.Risk, s, r, a.Reason)
	}
}

func TestAlertRaiseArmsTimersByRisk(t *testing.T) {
	p := testPolicy()
	for _, tc := range []struct {
		risk               news2.Risk
		escalate, reminder time.Duration
	}{
		{news2.High, 10 * time.Minute, 5 * time.Minute},
		{news2.Medium, 30 * time.Minute, 10 * time.Minute},
		{news2.LowMedium, time.Hour, 20 * time.Minute},
	} {
		a := raise(t, tc.risk)
		wantState(t, a, Raised, tc.risk)
		if !a.Active || a.Tier != 0 || a.TierName != "ward clinician" || !a.UnackedSince.Equal(t0) {
			t.Errorf("%s: raised alert = %+v", tc.risk, a)
		}
		if !a.EscalateAt.Equal(t0.Add(tc.escalate)) || !a.RemindAt.Equal(t0.Add(tc.reminder)) {
			t.Errorf("%s: escalate at %s, remind at %s; want +%s, +%s", tc.risk, a.EscalateAt, a.RemindAt, tc.escalate, tc.reminder)
		}
	}
	tech, eff := Raise(2, Key{Patient: "p1", Condition: BatteryLow, Device: "ox-1"}, "w1", Observation{Met: true}, p, t0)
	if tech.Queue != Technical || eff.Page || !tech.EscalateAt.IsZero() || !tech.RemindAt.IsZero() {
		t.Errorf("technical alert = %+v, effect %+v: want no page and no timers", tech, eff)
	}
	if _, eff := tech.Tick(p, t0.Add(24*time.Hour)); eff.Persist || eff.Page {
		t.Errorf("technical alert ticked a day later: %+v, want nothing", eff)
	}
}

func TestAlertWorseningUpgradesTheSameAlert(t *testing.T) {
	p := testPolicy()
	a := raise(t, news2.Medium)

	// A burst of readings at the same or a lesser band changes nothing.
	for i := range 50 {
		r := []news2.Risk{news2.Medium, news2.LowMedium}[i%2]
		var eff Effect
		if a, eff = a.Assess(met(r, t0.Add(time.Duration(i)*time.Second)), p, t0.Add(time.Duration(i)*time.Second)); eff.Persist {
			t.Fatalf("set %d at %s: %+v, want no change", i, r, eff)
		}
	}

	// Worsening upgrades in place and pages again; the escalation deadline
	// only shortens.
	at := t0.Add(2 * time.Minute)
	a, eff := a.Assess(met(news2.High, at), p, at)
	wantState(t, a, Raised, news2.High)
	if a.ID != 1 || !eff.Persist || !eff.Page || eff.Audit[0].Action != ActUpgraded || eff.Audit[0].From != Raised {
		t.Fatalf("upgrade = %+v, %+v", a, eff)
	}
	if !a.EscalateAt.Equal(at.Add(10*time.Minute)) || !a.UnackedSince.Equal(t0) {
		t.Errorf("escalate at %s, unacked since %s; want +10m from the upgrade and unacked since the raise", a.EscalateAt, a.UnackedSince)
	}

	// An acknowledged alert that worsens needs acknowledging again.
	b := raise(t, news2.Medium)
	b, _, err := b.Acknowledge("alice", "seen", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	b, eff = b.Assess(met(news2.High, t0.Add(5*time.Minute)), p, t0.Add(5*time.Minute))
	wantState(t, b, Raised, news2.High)
	if b.AcknowledgedBy != "" || !b.UnackedSince.Equal(t0.Add(5*time.Minute)) || !eff.Page || eff.Audit[0].From != Acknowledged {
		t.Errorf("acknowledged then worse: %+v, %+v", b, eff)
	}
}

func TestAlertHysteresis(t *testing.T) {
	p := testPolicy() // 3 sets over at least an hour
	a := raise(t, news2.High)
	a, _, _ = a.Acknowledge("alice", "", t0.Add(time.Minute))

	step := func(o Observation) Effect {
		t.Helper()
		var eff Effect
		a, eff = a.Assess(o, p, o.At)
		return eff
	}
	// One good reading never clears; nor does a partial set.
	if eff := step(better(t0.Add(10 * time.Minute))); eff.Persist {
		t.Fatalf("one good set cleared the alert: %+v", eff)
	}
	partial := better(t0.Add(20 * time.Minute))
	partial.Complete = false
	step(partial)
	if a.better != 1 {
		t.Fatalf("a partial set counted: streak %d", a.better)
	}
	// The same round delivered again does not count twice.
	step(better(t0.Add(10 * time.Minute)))
	if a.better != 1 {
		t.Fatalf("a redelivered set counted: streak %d", a.better)
	}
	// A worse set restarts the streak.
	step(met(news2.Medium, t0.Add(30*time.Minute)))
	if a.better != 0 {
		t.Fatalf("streak after a worse set = %d", a.better)
	}
	step(better(t0.Add(40 * time.Minute)))
	step(better(t0.Add(50 * time.Minute)))
	if eff := step(better(t0.Add(60 * time.Minute))); eff.Persist {
		t.Fatalf("three sets over 20 minutes cleared the alert (period is an hour): %+v", eff)
	}
	eff := step(better(t0.Add(100 * time.Minute)))
	wantState(t, a, Resolved, news2.High)
	if a.ResolvedBy != System || eff.Page || eff.Audit[0].Action != ActResolved || !a.EvidenceAt.Equal(t0.Add(100*time.Minute)) {
		t.Errorf("resolution = %+v, %+v", a, eff)
	}

	// Returned to normal before anyone acknowledged: its own state, and it
	// comes back if the patient worsens again.
	b := raise(t, news2.Medium)
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i) * 30 * time.Minute)
		b, eff = b.Assess(better(at), p, at)
	}
	wantState(t, b, Cleared, news2.Medium)
	if b.Active || eff.Audit[0].Action != ActCleared || !b.EscalateAt.IsZero() || !b.RemindAt.IsZero() {
		t.Fatalf("cleared = %+v, %+v", b, eff)
	}
	at := t0.Add(2 * time.Hour)
	c, eff := b.Assess(met(news2.LowMedium, at), p, at)
	wantState(t, c, Raised, news2.LowMedium)
	if !c.Active || !eff.Page || eff.Audit[0].Action != ActReraised || c.ID != b.ID {
		t.Fatalf("re-raised = %+v, %+v", c, eff)
	}
	// Acknowledging a cleared alert resolves it.
	d, eff, err := b.Acknowledge("bob", "phoned, well", at)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, d, Resolved, news2.Medium)
	if d.ResolvedBy != "bob" || eff.Audit[0].Action != ActAcknowledged || eff.Audit[0].To != Resolved || eff.Audit[0].ResponseSeconds == nil {
		t.Fatalf("acknowledge cleared = %+v, %+v", d, eff.Audit)
	}

	// A ward may ask for sets only, no period.
	q := p
	q.ClearSets, q.ClearPeriod = 2, -1
	e := raise(t, news2.Medium)
	e, _ = e.Assess(better(t0.Add(time.Second)), q, t0.Add(time.Second))
	e, _ = e.Assess(better(t0.Add(2*time.Second)), q, t0.Add(2*time.Second))
	wantState(t, e, Cleared, news2.Medium)
}

func TestAlertEscalationAndReminders(t *testing.T) {
	p := testPolicy()
	a := raise(t, news2.High)
	tick := func(d time.Duration) Effect {
		t.Helper()
		var eff Effect
		a, eff = a.Tick(p, t0.Add(d))
		return eff
	}
	if eff := tick(4*time.Minute + 59*time.Second); eff.Persist {
		t.Fatalf("tick before any deadline: %+v", eff)
	}
	eff := tick(5 * time.Minute)
	if !eff.Persist || !eff.Page || eff.Audit[0].Action != ActReminded || !a.RemindAt.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("reminder at 5m: %+v, next %s", eff, a.RemindAt)
	}
	eff = tick(10 * time.Minute)
	if len(eff.Audit) != 1 || eff.Audit[0].Action != ActEscalated || a.Tier != 1 || a.TierName != "senior clinician" || !eff.Page {
		t.Fatalf("escalation at 10m: %+v, alert %+v", eff, a)
	}
	if !a.EscalateAt.Equal(t0.Add(20*time.Minute)) || !a.RemindAt.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("after escalation: escalate at %s, remind at %s", a.EscalateAt, a.RemindAt)
	}
	tick(15 * time.Minute) // reminder
	eff = tick(20 * time.Minute)
	if a.Tier != 2 || a.TierName != "single point of access" || !a.EscalateAt.IsZero() || eff.Audit[0].Action != ActEscalated {
		t.Fatalf("second escalation: %+v, alert %+v", eff, a)
	}
	// The last tier: reminders go on, escalation stops.
	eff = tick(26 * time.Minute)
	if len(eff.Audit) != 1 || eff.Audit[0].Action != ActReminded || a.Tier != 2 {
		t.Fatalf("after the last tier: %+v", eff)
	}
	// Acknowledging stops every timer.
	a, _, _ = a.Acknowledge("carol", "", t0.Add(27*time.Minute))
	if eff := tick(5 * time.Hour); eff.Persist || !a.EscalateAt.IsZero() || !a.RemindAt.IsZero() {
		t.Fatalf("acknowledged alert ticked: %+v", eff)
	}

	// Down for 25 minutes: one tick catches up both escalations on their
	// absolute schedule and sends one reminder, not five.
	b := raise(t, news2.High)
	b, eff = b.Tick(p, t0.Add(25*time.Minute))
	if b.Tier != 2 || len(eff.Audit) != 2 || eff.Audit[0].Action != ActEscalated || eff.Audit[1].Action != ActEscalated {
		t.Fatalf("catch-up: tier %d, %+v", b.Tier, eff.Audit)
	}
	if !b.RemindAt.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("reminder after catch-up at %s, want 30m", b.RemindAt)
	}

	// A cleared alert is still reminded about, but no longer escalates.
	c := raise(t, news2.Medium)
	c, _ = c.clear(t0.Add(time.Minute), "better", t0.Add(time.Minute))
	c.RemindAt = t0.Add(2 * time.Minute)
	c, eff = c.Tick(p, t0.Add(3*time.Hour))
	if c.Tier != 0 || len(eff.Audit) != 1 || eff.Audit[0].Action != ActReminded {
		t.Fatalf("cleared alert tick: tier %d, %+v", c.Tier, eff.Audit)
	}
}

func TestAlertShelve(t *testing.T) {
	p := testPolicy()
	a := raise(t, news2.Medium)
	if _, _, err := a.Shelve("alice", 30*time.Minute, "  ", p, t0); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("shelve without a reason: %v", err)
	}
	if _, _, err := a.Shelve("alice", 5*time.Hour, "visit", p, t0); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("shelve beyond the maximum: %v", err)
	}
	a, eff, err := a.Shelve("alice", 30*time.Minute, "district nurse visiting", p, t0.Add(time.Minute))
	if err != nil || a.State != Shelved || a.ShelvedFrom != Raised || eff.Audit[0].Actor != "alice" || eff.Audit[0].Reason != "district nurse visiting" {
		t.Fatalf("shelve: %v, %+v, %+v", err, a, eff)
	}
	// Shelved: no reminder, no escalation.
	if _, eff := a.Tick(p, t0.Add(30*time.Minute)); eff.Persist {
		t.Fatalf("shelved alert ticked: %+v", eff)
	}
	// The shelve ends by itself and the alert is unacknowledged again.
	b, eff := a.Tick(p, t0.Add(31*time.Minute))
	wantState(t, b, Raised, news2.Medium)
	if !eff.Page || eff.Audit[0].Action != ActUnshelved || !b.EscalateAt.Equal(t0.Add(61*time.Minute)) {
		t.Fatalf("unshelve: %+v, %+v", b, eff)
	}
	// A worsening breaks through a shelve.
	c, eff := a.Assess(met(news2.High, t0.Add(2*time.Minute)), p, t0.Add(2*time.Minute))
	wantState(t, c, Raised, news2.High)
	if !eff.Page || !c.ShelvedUntil.IsZero() {
		t.Fatalf("worse while shelved: %+v, %+v", c, eff)
	}
	// Acknowledging a shelved alert ends the shelve.
	d, _, err := a.Acknowledge("bob", "", t0.Add(3*time.Minute))
	if err != nil || d.State != Acknowledged || !d.ShelvedUntil.IsZero() {
		t.Fatalf("acknowledge shelved: %v, %+v", err, d)
	}
	// Better while shelved from acknowledged: resolves.
	e, _, _ := d.Shelve("bob", time.Hour, "reviewed", p, t0.Add(4*time.Minute))
	q := p
	q.ClearSets, q.ClearPeriod = 1, -1
	e, _ = e.Assess(better(t0.Add(5*time.Minute)), q, t0.Add(5*time.Minute))
	wantState(t, e, Resolved, news2.Medium)
}

func TestAlertClinicianActions(t *testing.T) {
	p := testPolicy()
	a := raise(t, news2.High)
	b, eff, err := a.Acknowledge("alice", "calling patient", t0.Add(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	e := eff.Audit[0]
	if b.State != Acknowledged || b.AcknowledgedBy != "alice" || b.AckNote != "calling patient" || e.Actor != "alice" || e.Note != "calling patient" ||
		e.ResponseSeconds == nil || *e.ResponseSeconds != 90 || !b.EscalateAt.IsZero() {
		t.Fatalf("acknowledge = %+v, %+v", b, e)
	}
	if _, _, err := b.Acknowledge("bob", "", t0.Add(2*time.Minute)); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("second acknowledgement: %v", err)
	}
	c, eff, err := b.Resolve("alice", "admitted to hospital", t0.Add(time.Hour))
	if err != nil || c.State != Resolved || c.ResolvedBy != "alice" || eff.Audit[0].Note != "admitted to hospital" {
		t.Fatalf("resolve = %v, %+v", err, c)
	}
	for name, f := range map[string]func() error{
		"acknowledge": func() error { _, _, err := c.Acknowledge("x", "", t0); return err },
		"resolve":     func() error { _, _, err := c.Resolve("x", "", t0); return err },
		"shelve":      func() error { _, _, err := c.Shelve("x", time.Hour, "r", p, t0); return err },
	} {
		if err := f(); !errors.Is(err, vward.ErrConflict) {
			t.Errorf("%s a resolved alert: %v, want a conflict", name, err)
		}
	}
	if _, eff := c.Assess(met(news2.High, t0.Add(2*time.Hour)), p, t0.Add(2*time.Hour)); eff.Persist {
		t.Errorf("a resolved alert changed: %+v", eff)
	}
}
