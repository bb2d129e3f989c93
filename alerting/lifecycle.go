package alerting

import (
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// The alert lifecycle is a pure state machine: each input — an assessment
// of the condition, a timer tick, a clinician's action — maps an Alert and
// the time to a new Alert and an Effect. It does no I/O and reads no clock,
// so every transition is tested with the clock the test chooses; the Engine
// supplies the time, stores what the Effect says and publishes it.

// Observation is one assessment of a condition for a patient.
type Observation struct {
	// Met reports whether the condition holds.
	Met bool
	// Risk is the band it holds at (news2: the set's risk; overdue: the
	// patient's latest risk).
	Risk  news2.Risk
	Score int
	// Complete reports whether the set is complete enough to count
	// towards clearing the alert.
	Complete bool
	// At is the measurement time of the set assessed; zero when the
	// assessment is not of a set.
	At time.Time
	// Reason says in words why the condition holds or not.
	Reason string
	// why, when Reason is empty, says it on demand: the engine assesses
	// every set on the delivery path and words only the few that change
	// an alert.
	why func() string
}

func (o Observation) reason() string {
	if o.Reason == "" && o.why != nil {
		return o.why()
	}
	return o.Reason
}

// Effect is what a transition asks of the engine.
type Effect struct {
	// Persist reports that the alert changed state: store it with Audit and
	// tell the board. Without it only in-memory hysteresis moved.
	Persist bool
	Audit   []AuditEntry
	// Page reports that a clinician must be told now (raised, upgraded,
	// escalated, reminded). Technical alerts never page.
	Page bool
}

// Raise opens a new alert for a condition that holds.
func Raise(id int64, k Key, ward vward.WardID, o Observation, p Policy, now time.Time) (Alert, Effect) {
	reason := o.reason()
	a := Alert{
		ID: id, Patient: k.Patient, Ward: ward, Condition: k.Condition, Queue: k.Condition.Queue(), Device: k.Device, Channel: k.Channel, Rule: k.Rule,
		Risk: o.Risk, Score: o.Score, State: Raised, Active: true, TierName: p.tierName(0),
		RaisedAt: now, UnackedSince: now, EvidenceAt: o.At, Reason: reason,
	}
	a.armTimers(p, now)
	return a, Effect{Persist: true, Audit: []AuditEntry{a.entry(now, System, ActRaised, "", reason)}, Page: a.Queue == Clinical}
}

// armTimers sets the escalation and reminder deadlines of a newly
// unacknowledged clinical alert. Technical alerts have none.
func (a *Alert) armTimers(p Policy, now time.Time) {
	a.EscalateAt, a.RemindAt = time.Time{}, time.Time{}
	if a.Queue != Clinical {
		return
	}
	if a.Tier+1 < len(p.Tiers) {
		a.EscalateAt = now.Add(p.AckTimeout.For(a.Risk))
	}
	a.RemindAt = now.Add(p.Reminder.For(a.Risk))
}

func (a *Alert) entry(now time.Time, actor, action string, from State, reason string) AuditEntry {
	return AuditEntry{
		AlertID: a.ID, Ward: a.Ward, At: now, Actor: actor, Action: action, From: from, To: a.State,
		Risk: a.Risk, Tier: a.Tier, Reason: reason,
	}
}

// hysteresis returns how many consecutive better sets, over how long, clear
// the condition. Only NEWS2 waits: an overdue set is ended by the set that
// arrives, a device by being heard from, and a care plan rule by a finding
// that no longer holds (careplan's sustained rules do their own waiting).
func hysteresis(c Condition, p Policy) (sets int, period time.Duration) {
	if c == News2 {
		return p.ClearSets, p.ClearPeriod
	}
	return 1, -1
}

// Assess applies a fresh assessment of the alert's condition.
func (a Alert) Assess(o Observation, p Policy, now time.Time) (Alert, Effect) {
	if !a.State.Open() {
		return a, Effect{}
	}
	if o.Met {
		a.better, a.betterSince = 0, time.Time{}
		switch {
		case !a.Active:
			return a.reraise(o, p, now)
		case o.Risk > a.Risk:
			return a.upgrade(o, p, now)
		}
		// Same band or better but still alerting: the open alert already
		// says so. This is the dedup of a burst of readings.
		return a, Effect{}
	}
	if !a.Active || !o.Complete {
		// A partial set is no evidence the patient is better: its score is
		// only the least the full one could be.
		return a, Effect{}
	}
	if !o.At.IsZero() && !o.At.After(a.lastCounted) {
		return a, Effect{} // the same round again, or an older one
	}
	if a.better == 0 {
		a.betterSince = o.At
	}
	a.better++
	a.lastCounted = o.At
	sets, period := hysteresis(a.Condition, p)
	if a.better < sets || period > 0 && o.At.Sub(a.betterSince) < period {
		return a, Effect{}
	}
	reason := o.reason()
	if a.Condition == News2 {
		reason = fmt.Sprintf("%s; better for %d consecutive complete sets over %s", reason, a.better, o.At.Sub(a.betterSince).Round(time.Second))
	}
	return a.clear(o.At, reason, now)
}

func (a Alert) reraise(o Observation, p Policy, now time.Time) (Alert, Effect) {
	from := a.State
	a.State, a.Active = Raised, true
	a.Risk, a.Score, a.EvidenceAt, a.Reason = o.Risk, o.Score, o.At, o.reason()
	a.ClearedAt = time.Time{}
	if from != Raised {
		a.UnackedSince = now
		a.AcknowledgedAt, a.AcknowledgedBy, a.AckNote = time.Time{}, "", ""
	}
	a.armTimers(p, now)
	return a, Effect{Persist: true, Audit: []AuditEntry{a.entry(now, System, ActReraised, from, "condition holds again: "+a.Reason)}, Page: a.Queue == Clinical}
}

// upgrade raises the risk of an open alert. An acknowledged or shelved alert
// becomes unacknowledged again: its acknowledgement was of a lesser risk.
// The escalation tier is kept, and the escalation deadline only shortens.
func (a Alert) upgrade(o Observation, p Policy, now time.Time) (Alert, Effect) {
	from, was := a.State, a.Risk
	a.Risk, a.Score, a.EvidenceAt = o.Risk, o.Score, o.At
	a.Reason = fmt.Sprintf("worsened from %s to %s: %s", was, o.Risk, o.reason())
	var pending time.Time // the escalation deadline already running
	if from == Raised {
		pending = a.EscalateAt
	} else {
		a.State = Raised
		a.UnackedSince = now
		a.AcknowledgedAt, a.AcknowledgedBy, a.AckNote = time.Time{}, "", ""
		a.ShelvedUntil, a.ShelvedBy, a.ShelveReason, a.ShelvedFrom = time.Time{}, "", "", ""
	}
	a.armTimers(p, now)
	if !pending.IsZero() && pending.Before(a.EscalateAt) {
		a.EscalateAt = pending
	}
	return a, Effect{Persist: true, Audit: []AuditEntry{a.entry(now, System, ActUpgraded, from, a.Reason)}, Page: a.Queue == Clinical}
}

// clear ends the condition. An acknowledged alert (or any technical one)
// resolves; an unacknowledged one is "returned to normal but not
// acknowledged" until a clinician acknowledges it.
func (a Alert) clear(evidenceAt time.Time, reason string, now time.Time) (Alert, Effect) {
	from := a.State
	acked := from == Acknowledged || from == Shelved && a.ShelvedFrom == Acknowledged || a.Queue == Technical
	a.Active = false
	a.ClearedAt = now
	if !evidenceAt.IsZero() {
		a.EvidenceAt = evidenceAt
	}
	a.better, a.betterSince = 0, time.Time{}
	a.EscalateAt, a.RemindAt = time.Time{}, time.Time{}
	a.ShelvedUntil, a.ShelvedFrom = time.Time{}, ""
	if acked {
		a.State = Resolved
		a.ResolvedAt, a.ResolvedBy = now, System
		a.Reason = "resolved: " + reason
		return a, Effect{Persist: true, Audit: []AuditEntry{a.entry(now, System, ActResolved, from, a.Reason)}}
	}
	a.State = Cleared
	a.Reason = "returned to normal but not acknowledged: " + reason
	return a, Effect{Persist: true, Audit: []AuditEntry{a.entry(now, System, ActCleared, from, a.Reason)}}
}

// Withdraw resolves an alert whose condition no longer applies to the
// patient, because the registry says so (they were paused or discharged,
// or the device unassigned): nobody need acknowledge it. reason says who
// changed what.
func (a Alert) Withdraw(reason string, now time.Time) (Alert, Effect) {
	from := a.State
	if !from.Open() {
		return a, Effect{}
	}
	a.State, a.Active = Resolved, false
	a.ResolvedAt, a.ResolvedBy = now, System
	a.EscalateAt, a.RemindAt = time.Time{}, time.Time{}
	a.ShelvedUntil, a.ShelvedFrom = time.Time{}, ""
	a.Reason = "withdrawn: " + reason
	return a, Effect{Persist: true, Audit: []AuditEntry{a.entry(now, System, ActResolved, from, a.Reason)}}
}

// Tick fires the alert's due timers: the end of a shelve, escalation to the
// next tier, and reminders while unacknowledged. Deadlines are absolute, so
// a tick after a restart fires what fell due while vward was down.
func (a Alert) Tick(p Policy, now time.Time) (Alert, Effect) {
	var eff Effect
	if a.State == Shelved && !now.Before(a.ShelvedUntil) {
		from, by := a.State, a.ShelvedBy
		a.State = a.ShelvedFrom
		a.ShelvedUntil, a.ShelvedBy, a.ShelveReason, a.ShelvedFrom = time.Time{}, "", "", ""
		a.Reason = fmt.Sprintf("shelve by %s ended", by)
		if a.State == Raised {
			a.armTimers(p, now)
			eff.Page = a.Queue == Clinical
		}
		eff.Persist = true
		eff.Audit = append(eff.Audit, a.entry(now, System, ActUnshelved, from, a.Reason))
	}
	if a.Queue != Clinical || a.State != Raised && a.State != Cleared {
		return a, eff
	}
	escalated := false
	for a.State == Raised && !a.EscalateAt.IsZero() && !now.Before(a.EscalateAt) {
		due := a.EscalateAt
		wait := p.AckTimeout.For(a.Risk)
		a.Tier++
		a.TierName = p.tierName(a.Tier)
		a.EscalateAt = time.Time{}
		if a.Tier+1 < len(p.Tiers) {
			// The next tier's deadline follows from this one's, not from
			// now, so that a restart catches up on what fell due.
			a.EscalateAt = due.Add(wait)
		}
		a.Reason = fmt.Sprintf("not acknowledged within %s at %s risk: escalated to %s", wait, a.Risk, a.TierName)
		eff.Audit = append(eff.Audit, a.entry(now, System, ActEscalated, a.State, a.Reason))
		escalated = true
	}
	if escalated {
		a.RemindAt = now.Add(p.Reminder.For(a.Risk))
		eff.Persist, eff.Page = true, true
		return a, eff
	}
	if !a.RemindAt.IsZero() && !now.Before(a.RemindAt) {
		// Missed reminders coalesce into one: a clinician needs telling
		// once, not once per interval vward was down.
		a.RemindAt = now.Add(p.Reminder.For(a.Risk))
		what := "still not acknowledged"
		if a.State == Cleared {
			what = "returned to normal but still not acknowledged"
		}
		eff.Audit = append(eff.Audit, a.entry(now, System, ActReminded, a.State, what))
		eff.Persist, eff.Page = true, true
	}
	return a, eff
}

// Acknowledge records that a clinician has taken the alert on. Acknowledging
// an alert that has returned to normal resolves it.
func (a Alert) Acknowledge(actor, note string, now time.Time) (Alert, Effect, error) {
	from := a.State
	switch from {
	case Raised, Shelved, Cleared:
	case Acknowledged:
		return a, Effect{}, conflictf("already acknowledged by %s", a.AcknowledgedBy)
	default:
		return a, Effect{}, conflictf("the alert is %s", from)
	}
	if from == Shelved && a.ShelvedFrom == Acknowledged {
		return a, Effect{}, conflictf("already acknowledged by %s (and shelved)", a.AcknowledgedBy)
	}
	entry := func(action string, reason string) AuditEntry {
		e := a.entry(now, actor, action, from, reason)
		e.Note = note
		return e
	}
	var resp *float64
	if !a.UnackedSince.IsZero() {
		s := now.Sub(a.UnackedSince).Seconds()
		resp = &s
	}
	a.AcknowledgedAt, a.AcknowledgedBy, a.AckNote = now, actor, note
	a.UnackedSince = time.Time{}
	a.EscalateAt, a.RemindAt = time.Time{}, time.Time{}
	a.ShelvedUntil, a.ShelvedBy, a.ShelveReason, a.ShelvedFrom = time.Time{}, "", "", ""
	if from == Cleared {
		a.State = Resolved
		a.ResolvedAt, a.ResolvedBy = now, actor
		a.Reason = "acknowledged after returning to normal"
		ack := entry(ActAcknowledged, a.Reason)
		ack.To = Resolved
		ack.ResponseSeconds = resp
		return a, Effect{Persist: true, Audit: []AuditEntry{ack}}, nil
	}
	a.State = Acknowledged
	a.Reason = "acknowledged by " + actor
	ack := entry(ActAcknowledged, a.Reason)
	ack.ResponseSeconds = resp
	return a, Effect{Persist: true, Audit: []AuditEntry{ack}}, nil
}

// Resolve closes the alert on a clinician's word. If the condition still
// holds, the resolution is recorded as such, and a newer set that still
// meets it raises a new alert: a clinician may close an episode, but cannot
// silence the data.
func (a Alert) Resolve(actor, note string, now time.Time) (Alert, Effect, error) {
	from := a.State
	if !from.Open() {
		return a, Effect{}, conflictf("the alert is already resolved")
	}
	reason := "resolved by " + actor
	if a.Active {
		reason += " while the condition still held"
	}
	a.State, a.Active = Resolved, false
	a.ResolvedAt, a.ResolvedBy = now, actor
	a.EscalateAt, a.RemindAt = time.Time{}, time.Time{}
	a.ShelvedUntil, a.ShelvedBy, a.ShelveReason, a.ShelvedFrom = time.Time{}, "", "", ""
	a.Reason = reason
	e := a.entry(now, actor, ActResolved, from, reason)
	e.Note = note
	return a, Effect{Persist: true, Audit: []AuditEntry{e}}, nil
}

// Shelve silences an alert for d: no reminders, no escalation. A worsening
// breaks through a shelve, and the shelve ends by itself.
func (a Alert) Shelve(actor string, d time.Duration, reason string, p Policy, now time.Time) (Alert, Effect, error) {
	reason = strings.TrimSpace(reason)
	switch {
	case reason == "":
		return a, Effect{}, invalidf("shelving needs a reason")
	case d < time.Minute || d > p.MaxShelve:
		return a, Effect{}, invalidf("an alert may be shelved for 1 to %d minutes", int(p.MaxShelve/time.Minute))
	}
	from := a.State
	if from != Raised && from != Acknowledged {
		return a, Effect{}, conflictf("only a raised or acknowledged alert can be shelved; this one is %s", from)
	}
	a.State, a.ShelvedFrom = Shelved, from
	a.ShelvedUntil, a.ShelvedBy, a.ShelveReason = now.Add(d), actor, reason
	a.EscalateAt, a.RemindAt = time.Time{}, time.Time{}
	a.Reason = fmt.Sprintf("shelved by %s for %s", actor, d)
	e := a.entry(now, actor, ActShelved, from, reason)
	return a, Effect{Persist: true, Audit: []AuditEntry{e}}, nil
}
