package alerting

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
	"github.com/vward/vward/news2"
)

// The care_plan condition: each rule of a patient's care plan, evaluated
// by careplan on the readings the monitor keeps for it, raises an alert of
// its own while its finding holds. A plan only adds: nothing here reads or
// changes the patient's NEWS2 set, score or alert (docs/careplans.md).

// MaxCarePlanWindow bounds the readings the monitor keeps for one
// patient's care plan rules, whatever the plan's look-back: a streaming
// wearable under a week-long baseline must not grow without end. Beyond it
// the oldest go first, so a rule then reads a shorter history than its
// window (docs/alerts.md#care-plan-rules). Between trims the window may
// hold a quarter more, so that a full one is not trimmed on every reading.
const MaxCarePlanWindow = 4096

// maxUntrimmed is the most readings a window holds before it is trimmed.
const maxUntrimmed = MaxCarePlanWindow + MaxCarePlanWindow/4

// planWatch is a patient's care plan as the monitor watches it: the plan,
// and the readings of the kinds its rules read, in measurement order,
// within what Plan.Lookback and Plan.LookbackSets say the rules read.
// A patient without a plan has none, so costs a nil check per reading.
type planWatch struct {
	plan     *careplan.Plan
	version  int // the plan's version in the store, to tell a new one
	kinds    []vward.ReadingKind
	expects  []vward.ReadingKind // the plan's expected kinds, by plan.Expected
	lookback time.Duration
	sets     int
	window   []vward.Reading
	prune    int // len(window) that prunes next: twice what was kept
	eval     careplan.Evaluator
	findings []careplan.Finding
}

func newPlanWatch(plan *careplan.Plan, version int) *planWatch {
	w := &planWatch{plan: plan, version: version, kinds: plan.RuleKinds(), lookback: plan.Lookback(), sets: plan.LookbackSets(), prune: 64}
	for _, e := range plan.Expected {
		w.expects = append(w.expects, e.Kind)
	}
	return w
}

// measured is the time of the patient's latest reading of each kind the
// plan expects, by plan.Expected (zero: none), nil when it expects none.
// The caller holds m.mu.
func (p *patient) measured() []time.Time {
	if len(p.plan.expects) == 0 {
		return nil
	}
	out := make([]time.Time, len(p.plan.expects))
	for i, k := range p.plan.expects {
		if j := k.Index(); j >= 0 && p.vitals[j].Kind != "" {
			out[i] = p.vitals[j].At
		}
	}
	return out
}

// add keeps r if a rule reads its kind, and reports whether it did or the
// plan expects the kind: either way the plan is evaluated again.
func (w *planWatch) add(r vward.Reading) bool {
	if !slices.Contains(w.kinds, r.Kind) {
		return slices.Contains(w.expects, r.Kind)
	}
	// In measurement order; a redelivered reading replaces itself.
	i := len(w.window)
	for i > 0 && w.window[i-1].At.After(r.At) {
		i--
	}
	for j := i - 1; j >= 0 && w.window[j].At.Equal(r.At); j-- {
		if w.window[j].Kind == r.Kind {
			w.window[j] = r
			return true
		}
	}
	w.window = slices.Insert(w.window, i, r)
	if len(w.window) >= w.prune {
		w.trim()
	}
	return true
}

// trim drops what no rule reads any more: per kind, readings older than
// the look-back before its newest, but the last sets of them and one
// before the cut (careplan reads it to see a breach reach the cut).
func (w *planWatch) trim() {
	type seen struct {
		newest time.Time
		n      int
		before bool
	}
	per := make(map[vward.ReadingKind]*seen, len(w.kinds))
	keep := make([]bool, len(w.window))
	for i := len(w.window) - 1; i >= 0; i-- {
		r := &w.window[i]
		s := per[r.Kind]
		if s == nil {
			s = &seen{newest: r.At}
			per[r.Kind] = s
		}
		s.n++
		switch {
		case s.n <= w.sets+1, w.lookback > 0 && !r.At.Before(s.newest.Add(-w.lookback)):
			keep[i] = true
		case !s.before:
			keep[i], s.before = true, true
		}
	}
	out := w.window[:0]
	for i, r := range w.window {
		if keep[i] {
			out = append(out, r)
		}
	}
	clear(w.window[len(out):])
	if n := len(out) - MaxCarePlanWindow; n > 0 {
		out = append(out[:0], out[n:]...)
	}
	w.window = out
	w.prune = min(max(64, 2*len(out)), maxUntrimmed)
}

// forget drops readings entered in error, and reports whether any was kept.
func (w *planWatch) forget(wrong []vward.Reading) bool {
	n := len(w.window)
	w.window = slices.DeleteFunc(w.window, func(r vward.Reading) bool {
		return slices.ContainsFunc(wrong, func(x vward.Reading) bool {
			return x.Kind == r.Kind && x.Device == r.Device && x.At.Equal(r.At) && x.Value == r.Value
		})
	})
	return len(w.window) != n
}

// planAssessment is a patient's care plan findings on their way to the
// engine, copied out of the monitor's lock.
type planAssessment struct {
	watch    *watch
	info     PatientInfo
	seq      uint64
	plan     *careplan.Plan
	findings []careplan.Finding
	// retracted are the kinds of readings entered in error: a rule of
	// one of them left without enough data no longer holds, for what made
	// it hold may have been the error.
	retracted []vward.ReadingKind
	// measured is when each measurement the plan expects was last made,
	// by plan.Expected (patient.measured).
	measured []time.Time
	cause    string
}

// evaluateLocked evaluates the patient's plan as of now (or of their
// newest ruled reading, from a device clock ahead of ours) for the engine.
// The caller holds m.mu.
func (m *Monitor) evaluateLocked(p *patient, now time.Time, cause string) planAssessment {
	w := p.plan
	at := now
	if n := len(w.window); n > 0 && w.window[n-1].At.After(at) {
		at = w.window[n-1].At
	}
	w.findings = w.eval.Evaluate(w.plan, w.window, at, w.findings[:0])
	p.planSeq++
	return planAssessment{watch: p.watch, info: p.info, seq: p.planSeq, plan: w.plan,
		findings: slices.Clone(w.findings), measured: p.measured(), cause: cause}
}

// SetCarePlan gives the monitor a patient's current care plan, version
// its number in the store, or nil when the patient has none any more;
// since says when the plan began to expect each of its measurements
// (planstore.ExpectedSince; a kind not in it counts from now), and cause
// who changed it and why, for the alert audit. The rules are evaluated at
// once on the readings kept for the plan before, and the alerts of rules
// and expected measurements the new plan no longer has are withdrawn. It
// reports false, changing nothing, for a patient the monitor does not
// have (not admitted) or a plan version it already has.
func (m *Monitor) SetCarePlan(id vward.PatientID, plan *careplan.Plan, version int, since map[vward.ReadingKind]time.Time, cause string) bool {
	now := m.now()
	m.mu.Lock()
	p, ok := m.patients[id]
	if !ok || plan == nil && p.plan == nil || plan != nil && p.plan != nil && p.plan.version == version {
		m.mu.Unlock()
		return false
	}
	old := p.plan
	p.plan = nil
	var a *planAssessment
	var measured []time.Time
	if plan != nil {
		p.plan = newPlanWatch(plan, version)
		if old != nil {
			for _, r := range old.window {
				p.plan.add(r)
			}
		}
		as := m.evaluateLocked(p, now, cause)
		a, measured = &as, as.measured
	}
	w, info := p.watch, p.info
	m.mu.Unlock()
	if m.engine == nil {
		return true
	}
	m.engine.carePlanChanged(w, info, plan, since, measured, cause)
	if a != nil {
		m.engine.assessCarePlan(*a)
	}
	return true
}

// FillCarePlan adds readings read back from the history to those kept for
// the rules of the patient's care plan, if it is still at version, and
// evaluates them again with cause: after a restart, or a plan that reads
// kinds or a window the monitor had not kept, a rule sees its whole
// window, not only what came since. A reading already kept replaces
// itself. It reports false, changing nothing, for a patient not admitted
// or a plan at another version.
func (m *Monitor) FillCarePlan(id vward.PatientID, version int, rs []vward.Reading, cause string) bool {
	now := m.now()
	m.mu.Lock()
	p, ok := m.patients[id]
	if !ok || p.plan == nil || p.plan.version != version {
		m.mu.Unlock()
		return false
	}
	for _, r := range rs {
		if r.Patient == id {
			r.Ward = "" // the registry's, not the one stored with an old reading
			p.plan.add(r)
		}
	}
	a := m.evaluateLocked(p, now, cause)
	m.mu.Unlock()
	if m.engine != nil {
		m.engine.assessCarePlan(a)
	}
	return true
}

// CarePlanVersion returns the version of the patient's care plan the
// monitor watches, 0 for none.
func (m *Monitor) CarePlanVersion(id vward.PatientID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.patients[id]; p != nil && p.plan != nil {
		return p.plan.version
	}
	return 0
}

// ruleSeen is the engine's record of one rule of a patient's plan: the
// rule and its latest finding, for the evidence of timers' and clinicians'
// changes and for what a clinician's resolution has seen.
type ruleSeen struct {
	rule    *careplan.Rule // in its plan, which is never changed once parsed
	finding careplan.Finding
}

// riskOf ranks a care plan rule's risk as NEWS2's bands, whose names it
// shares.
func riskOf(r careplan.Risk) news2.Risk {
	switch r {
	case careplan.RiskLow:
		return news2.Low
	case careplan.RiskLowMedium:
		return news2.LowMedium
	case careplan.RiskHigh:
		return news2.High
	}
	return news2.Medium // careplan.Parse refuses any other; never low by mistake
}

// carePlanChanged withdraws the open care_plan alerts of the patient's
// rules that plan (nil: none) no longer has: the rule they are about is
// gone, so nothing can clear them. The plan's expected measurements are
// watched from now on (setExpectedLocked).
func (e *Engine) carePlanChanged(kept *watch, info PatientInfo, plan *careplan.Plan, since map[vward.ReadingKind]time.Time, measured []time.Time, cause string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	w := e.watchLocked(kept, info.ID, info.Ward, now)
	for k, a := range e.open {
		if k.Patient != info.ID || k.Condition != CarePlan {
			continue
		}
		if plan != nil && slices.ContainsFunc(plan.Rules, func(r careplan.Rule) bool { return r.ID == k.Rule }) {
			continue
		}
		reason := fmt.Sprintf("care plan rule %s removed from the plan: %s", k.Rule, cause)
		if plan == nil {
			reason = fmt.Sprintf("care plan ended, and with it rule %s: %s", k.Rule, cause)
		}
		e.stepLocked(a, now, e.evidenceOf(a), func(a Alert) (Alert, Effect) { return a.Withdraw(reason, now) })
	}
	for id := range w.rules {
		if plan == nil || !slices.ContainsFunc(plan.Rules, func(r careplan.Rule) bool { return r.ID == id }) {
			delete(w.rules, id)
		}
	}
	e.setExpectedLocked(w, info.ID, plan, since, measured, cause, now)
}

// assessCarePlan takes a patient's care plan findings, one per rule: a
// rule that holds raises its alert or keeps it, at the rule's risk; one
// that does not hold clears it; one without enough data leaves it as it
// is, as a partial set leaves a NEWS2 alert. A paused patient's alerts may
// clear but nothing is raised for them.
func (e *Engine) assessCarePlan(pa planAssessment) {
	e.Stats.Assessed.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	w := e.watchLocked(pa.watch, pa.info.ID, pa.info.Ward, now)
	if pa.seq <= w.planSeq {
		return
	}
	w.planSeq = pa.seq
	e.measuredLocked(w, pa.info.ID, pa.plan, pa.measured, pa.retracted)
	if w.rules == nil {
		w.rules = make(map[string]ruleSeen, len(pa.plan.Rules))
	}
	p := e.cfg.PolicyFor(w.ward)
	cause := pa.cause // not pa, which would then be on the heap
	for i := range pa.findings {
		f, rule := &pa.findings[i], &pa.plan.Rules[i]
		w.rules[rule.ID] = ruleSeen{rule: rule, finding: *f}
		k := Key{Patient: pa.info.ID, Condition: CarePlan, Rule: rule.ID}
		a := e.open[k]
		met := f.State == careplan.Holds
		if a == nil && !met {
			continue // the common case: nothing to change, nothing to word
		}
		retracted := slices.Contains(pa.retracted, rule.Kind)
		o := Observation{Met: met, Risk: riskOf(rule.Risk), Complete: f.State != careplan.NotEnoughData || retracted, At: f.Latest.At,
			why: func() string {
				s := carePlanReason(rule, f)
				if cause != "" {
					s += "; evaluated again because " + cause
				}
				return s
			}}
		if !met && retracted {
			// The reading judged now may be one already counted, before the
			// one in error: it must still clear.
			o.At = time.Time{}
		}
		evidence := func() json.RawMessage { return carePlanEvidence(ruleSeen{rule: rule, finding: *f}) }
		if a != nil {
			if !w.paused || !met {
				e.stepLocked(a, now, evidence, func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
			}
		} else if !w.paused && f.Latest.At.After(e.watermarks[k]) {
			e.raiseLocked(k, w.ward, o, p, now, evidence)
		}
	}
}

// carePlanReason names the rule and says what it found, for the audit.
func carePlanReason(r *careplan.Rule, f *careplan.Finding) string {
	return fmt.Sprintf("care plan rule %s: %s", r.ID, r.Describe(*f))
}

// carePlanEvidence is a care_plan alert's evidence: the rule, its
// finding in words, and the finding itself.
func carePlanEvidence(s ruleSeen) json.RawMessage {
	b, _ := json.Marshal(struct {
		Rule        ruleView         `json:"rule"`
		Description string           `json:"description"`
		Finding     careplan.Finding `json:"finding"`
	}{ruleView{s.rule.ID, s.rule.Name, s.rule.Type, s.rule.Kind, s.rule.Risk}, s.rule.Describe(s.finding), s.finding})
	return b
}

// ruleView names a rule in an alert's evidence.
type ruleView struct {
	ID   string            `json:"id"`
	Name string            `json:"name"`
	Type careplan.RuleType `json:"type"`
	Kind vward.ReadingKind `json:"kind"`
	Risk careplan.Risk     `json:"risk"`
}
