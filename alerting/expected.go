package alerting

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
)

// A care plan's expected measurements drive the overdue condition beside
// NEWS2's monitoring frequency: each measurement the plan expects that is
// overdue (careplan.Expectation.Due) raises an overdue alert of its own,
// its Key.Rule naming the kind ("expected:weight"), and the measurement
// made clears it. The engine checks them on each Tick, so one falls due on
// time whatever the readings; the monitor tells it of each measurement
// made with the plan's assessment (planAssessment.measured).

// expectedRulePrefix begins the Key.Rule of an overdue alert of a care
// plan's expected measurement; an overdue alert of the NEWS2 set has none.
const expectedRulePrefix = "expected:"

// ExpectedRule is the Key.Rule of the overdue alert of a care plan's
// expected measurement of kind.
func ExpectedRule(kind vward.ReadingKind) string { return expectedRulePrefix + string(kind) }

// ExpectedKind is the kind an overdue alert's Rule names; false for the
// overdue alert of the NEWS2 set, whose Rule is empty.
func ExpectedKind(rule string) (vward.ReadingKind, bool) {
	kind, ok := strings.CutPrefix(rule, expectedRulePrefix)
	return vward.ReadingKind(kind), ok && kind != ""
}

// OverdueWhat names an overdue alert for people by its Rule: "observations
// overdue" for NEWS2's set, "weight overdue, as the care plan expects" for
// a care plan's measurement; notifications and handovers say it alike.
func OverdueWhat(rule string) string {
	if kind, ok := ExpectedKind(rule); ok {
		return string(kind) + " overdue, as the care plan expects"
	}
	return "observations overdue"
}

// expected is one measurement a patient's care plan expects, as the
// engine watches it.
type expected struct {
	careplan.Expectation
	key       Key       // of its overdue alert
	since     time.Time // when the plan began to expect it (planstore.ExpectedSince), or resumedAt
	last      time.Time // its latest measurement known; zero: none
	persisted time.Time // last as last written (alert_expected)
}

// due is when the measurement falls due, as of now: an interval after the
// last one, or after a clinician resolved its overdue alert (overdueFrom).
func (e *Engine) due(x *expected, now time.Time) careplan.Due {
	return x.Due(now, x.since, e.overdueFrom(x.key, x.last), e.cfg.Location)
}

// expectedFor returns the measurement of kind the patient's plan expects,
// nil when it expects none.
func (w *watch) expectedFor(kind vward.ReadingKind) *expected {
	for i := range w.expected {
		if w.expected[i].Kind == kind {
			return &w.expected[i]
		}
	}
	return nil
}

// expectedOf returns the expected measurement an overdue alert's rule
// names, nil when the plan no longer expects it.
func (w *watch) expectedOf(rule string) *expected {
	if kind, ok := ExpectedKind(rule); ok {
		return w.expectedFor(kind)
	}
	return nil
}

// setExpectedLocked makes the plan's (nil: none) expectations the
// patient's: since says when each began to be expected (a kind not in it
// counts from now), and the latest measurement of each is the newest the
// monitor holds (measured, by the plan's Expected), the engine knew or the
// store kept. Overdue alerts of measurements the plan no longer expects
// are withdrawn, with cause.
func (e *Engine) setExpectedLocked(w *watch, id vward.PatientID, plan *careplan.Plan, since map[vward.ReadingKind]time.Time, measured []time.Time, cause string, now time.Time) {
	saved := e.measured[id]
	delete(e.measured, id)
	var next []expected
	if plan != nil {
		next = make([]expected, 0, len(plan.Expected))
		for i, exp := range plan.Expected {
			x := expected{Expectation: exp, key: Key{Patient: id, Condition: Overdue, Rule: ExpectedRule(exp.Kind)}, since: now}
			if s, ok := since[exp.Kind]; ok {
				x.since = s
			}
			if x.since.Before(w.resumedAt) {
				x.since = w.resumedAt
			}
			if old := w.expectedFor(exp.Kind); old != nil {
				x.last, x.persisted = old.last, old.persisted
			}
			if t := saved[exp.Kind]; t.After(x.last) {
				x.last, x.persisted = t, t
			}
			if i < len(measured) && measured[i].After(x.last) {
				x.last = measured[i]
			}
			next = append(next, x)
		}
	}
	w.expected = next
	for k, a := range e.open {
		if k.Patient != id || k.Condition != Overdue || k.Rule == "" || w.expectedOf(k.Rule) != nil {
			continue
		}
		kind, _ := ExpectedKind(k.Rule)
		reason := fmt.Sprintf("the care plan no longer expects %s: %s", kind, cause)
		if plan == nil {
			reason = fmt.Sprintf("care plan ended, and with it the %s it expected: %s", kind, cause)
		}
		e.stepLocked(a, now, e.evidenceOf(a), func(a Alert) (Alert, Effect) { return a.Withdraw(reason, now) })
	}
	for i := range w.expected {
		e.persistMeasuredLocked(id, &w.expected[i])
	}
}

// measuredLocked records the latest measurements of the plan's expected
// kinds (measured, by plan.Expected) that the monitor holds. They only
// move forward, but for the kinds of readings entered in error
// (retracted), whose latest is what the monitor holds now, or none.
func (e *Engine) measuredLocked(w *watch, id vward.PatientID, plan *careplan.Plan, measured []time.Time, retracted []vward.ReadingKind) {
	for i, at := range measured {
		if i >= len(plan.Expected) {
			break
		}
		kind := plan.Expected[i].Kind
		x := w.expectedFor(kind)
		switch {
		case x == nil:
		case slices.Contains(retracted, kind) && !at.Equal(x.last):
			x.last, x.persisted = at, at
			e.enqueueLocked(write{measured: &measuredRow{Patient: id, Kind: kind, At: at, Retracted: true}})
		case at.After(x.last):
			x.last = at
			e.persistMeasuredLocked(id, x)
		}
	}
}

// persistMeasuredLocked writes a measurement's latest time when it moved
// enough to matter: to another day of the ward's for a deadline, by a
// quarter of the interval otherwise. So a wearable streaming a kind costs
// a few writes per interval, and after a restart the check errs at most
// that quarter early, never late.
func (e *Engine) persistMeasuredLocked(id vward.PatientID, x *expected) {
	if x.last.IsZero() || !x.last.After(x.persisted) {
		return
	}
	if !x.persisted.IsZero() {
		if x.By != 0 {
			ly, lm, ld := x.last.In(e.cfg.Location).Date()
			py, pm, pd := x.persisted.In(e.cfg.Location).Date()
			if ly == py && lm == pm && ld == pd {
				return
			}
		} else if x.last.Sub(x.persisted) < x.Every/4 {
			return
		}
	}
	x.persisted = x.last
	e.enqueueLocked(write{measured: &measuredRow{Patient: id, Kind: x.Kind, At: x.last}})
}

// expectedLocked raises an overdue alert for each measurement the
// patient's plan expects that is overdue, and clears those made since.
// The caller checks the patient is not paused.
func (e *Engine) expectedLocked(id vward.PatientID, w *watch, now time.Time) {
	p := e.cfg.PolicyFor(w.ward)
	for i := range w.expected {
		x := &w.expected[i]
		d := e.due(x, now)
		a := e.open[x.key]
		if !d.Overdue && a == nil {
			continue // the common case
		}
		evidence := func() json.RawMessage { return expectedEvidence(*x, d) }
		if !d.Overdue {
			o := Observation{Complete: true, At: x.last, Risk: w.risk, Score: w.res.Score, why: func() string {
				return fmt.Sprintf("%s measured at %s; the care plan expects it %s", x.Kind, x.last.UTC().Format(time.RFC3339), x.Expectation)
			}}
			e.stepLocked(a, now, evidence, func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
			continue
		}
		o := Observation{Met: true, Risk: w.risk, Score: w.res.Score, why: func() string { return expectedReason(*x, d) }}
		if a == nil {
			e.raiseLocked(x.key, w.ward, o, p, now, evidence)
		} else {
			e.stepLocked(a, now, evidence, func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
		}
	}
}

// expectedReason says why an expected measurement is overdue.
func expectedReason(x expected, d careplan.Due) string {
	if x.last.IsZero() || x.last.Before(x.since) {
		return fmt.Sprintf("no %s since the care plan began to expect it at %s: it expects one %s, due %s",
			x.Kind, x.since.UTC().Format(time.RFC3339), x.Expectation, d.At.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("no %s since %s: the care plan expects one %s, due %s",
		x.Kind, x.last.UTC().Format(time.RFC3339), x.Expectation, d.At.UTC().Format(time.RFC3339))
}

// expectedEvidence is the evidence of an expected measurement's overdue
// alert: its status.
func expectedEvidence(x expected, d careplan.Due) json.RawMessage {
	b, _ := json.Marshal(statusOf(x, d))
	return b
}

// ExpectedStatus is a measurement a patient's care plan expects, as the
// engine watches it: what the patient view shows beside the plan, and the
// evidence of its overdue alert.
type ExpectedStatus struct {
	Kind     vward.ReadingKind `json:"kind"`
	Expected string            `json:"expected"` // "every 1d by 10:00"
	Since    time.Time         `json:"expected_since"`
	Last     time.Time         `json:"last_measured_at,omitzero"`
	Due      time.Time         `json:"due_at"`
	Overdue  bool              `json:"overdue"`
}

// Expected returns the measurements the patient's care plan expects, in
// the plan's order, with when each was last made and falls due; none for
// a patient without a plan or not watched.
func (e *Engine) Expected(id vward.PatientID) []ExpectedStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.patients[id]
	if w == nil {
		return nil
	}
	now := e.now()
	out := make([]ExpectedStatus, 0, len(w.expected))
	for i := range w.expected {
		out = append(out, statusOf(w.expected[i], e.due(&w.expected[i], now)))
	}
	return out
}

func statusOf(x expected, d careplan.Due) ExpectedStatus {
	return ExpectedStatus{Kind: x.Kind, Expected: x.Expectation.String(), Since: x.since, Last: x.last, Due: d.At, Overdue: d.Overdue}
}
