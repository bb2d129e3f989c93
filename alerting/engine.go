package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// Engine runs the alert lifecycle for every patient: it assesses each scored
// observation set as the Monitor hands it over, fires timers from Run, takes
// clinicians' actions, and keeps alert state and audit in the Store.
//
// Assess is on the MQTT delivery path, so it only compares the set with the
// patient's open alerts in memory. Only a real transition is written, and
// the write goes through a bounded queue to the writer goroutine of Run: a
// full queue makes the caller wait (backpressure up to the broker), never
// drops a transition. Transitions are queued under the engine's lock, so
// they are written in the order they happened. The board hears of a
// transition only once it is stored.
type Engine struct {
	cfg     Config
	store   *Store
	publish Publisher
	log     *slog.Logger
	now     func() time.Time

	mu         sync.Mutex
	nextID     int64
	open       map[Key]*Alert
	byID       map[int64]*Alert
	patients   map[vward.PatientID]*watch                          // watched: admitted, or heard of since start
	saved      map[vward.PatientID]watchRow                        // overdue baselines read back, until watched
	measured   map[vward.PatientID]map[vward.ReadingKind]time.Time // care plans' measurements read back, until a plan is given
	devices    map[vward.DeviceID]*deviceWatch
	watermarks map[Key]time.Time                   // newest evidence of each key's resolved alerts
	concerns   map[vward.PatientID]json.RawMessage // the questionnaire behind each open concern (concern.go)

	q writeQueue

	Stats  EngineStats
	counts engineCounts // for Collector
}

// EngineStats counts what the engine did, for /metrics and tests.
type EngineStats struct {
	Assessed, Transitions, WriteFailures atomic.Int64
}

// watch is what the engine knows of a patient.
type watch struct {
	ward           vward.WardID
	seq            uint64
	scored         bool
	set            news2.Set
	res            news2.Result
	risk           news2.Risk
	interval       time.Duration // overdue interval the latest score calls for
	lastSetAt      time.Time     // latest complete-enough set, or when watching began
	lastAssessedAt time.Time     // newest measurement time assessed
	persisted      watchRow      // as last written
	unwatched      bool          // discharged (Unwatch): no longer the patient's watch, if they come back
	paused         bool          // in hospital for now (setPaused): nothing is raised for them

	planSeq  uint64              // the newest care plan assessment taken (assessCarePlan)
	rules    map[string]ruleSeen // by rule ID; nil for a patient who never had a plan
	expected []expected          // the care plan's expected measurements (expected.go)
	// resumedAt is when monitoring last resumed: what a care plan expects
	// is due no sooner than an interval after it, as NEWS2's set.
	resumedAt time.Time

	confirming confirming // a streaming device's set that would raise, held for confirmation
}

// confirming is a NEWS2 raise held because a streaming device's reading
// made it (Policy.StreamConfirm): a moment's artefact, a probe slipping,
// must not page anyone. It is not kept across a restart: the stream's
// next reading holds it again.
type confirming struct {
	since time.Time // the engine's clock when the hold began; zero: nothing held
	setAt time.Time // the measurement time of the set that began it
}

// deviceWatch is what the engine knows of a device.
type deviceWatch struct {
	patient      vward.PatientID
	ward         vward.WardID
	heardAt      time.Time // last heard from: a message received, or a status's own time; zero: never, as far as vward knows
	watchedFrom  time.Time // when vward began watching it, which is as far back as its silence counts
	offlineSince time.Time // its will or status said offline; zero when online
	battery      float64
	hasBattery   bool
}

// OpenEngine migrates the alert tables in db and loads the open alerts, so
// that a restarted engine carries on where the last one stopped. publish may
// be nil.
func OpenEngine(ctx context.Context, db *sql.DB, cfg Config, publish Publisher, log *slog.Logger) (*Engine, error) {
	cfg = cfg.withDefaults()
	store, err := OpenStore(ctx, db)
	if err != nil {
		return nil, err
	}
	l, err := store.load(ctx)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, store: store, publish: publish, now: cfg.Clock,
		log:    log.With("component", "alerting"),
		nextID: l.maxID, open: make(map[Key]*Alert), byID: make(map[int64]*Alert),
		patients: make(map[vward.PatientID]*watch), saved: make(map[vward.PatientID]watchRow),
		devices:    make(map[vward.DeviceID]*deviceWatch),
		watermarks: l.watermarks, measured: l.measured,
	}
	e.q.init(cfg.QueueSize)
	for i := range l.open {
		a := &l.open[i]
		e.open[a.Key()] = a
		e.byID[a.ID] = a
	}
	// A baseline read back waits until the patient is admitted again (or
	// heard of), so a discharged patient is never reported overdue.
	for _, w := range l.watches {
		e.saved[w.Patient] = w
	}
	return e, nil
}

// Store returns the engine's store.
func (e *Engine) Store() *Store { return e.store }

// Config returns the engine's effective configuration.
func (e *Engine) Config() Config { return e.cfg }

// watch starts the overdue clock of an admitted patient, or updates its
// ward, and returns the patient's watch for the monitor to keep with its
// own record of the patient and hand back with each assessment (assess):
// at a whole region's rate, finding it again among thousands of patients
// for every message was a cache miss or two (docs/design/one-lookup-per-record.md).
func (e *Engine) watch(info PatientInfo) *watch {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.watchLocked(nil, info.ID, info.Ward, e.now())
}

// watchLocked returns the patient's watch, begun now if it has none: kept,
// when a caller has kept it and it is still the patient's, else found.
func (e *Engine) watchLocked(kept *watch, id vward.PatientID, ward vward.WardID, now time.Time) *watch {
	w := kept
	if w == nil || w.unwatched {
		w = e.patients[id]
	}
	if w == nil {
		if row, ok := e.saved[id]; ok {
			w = &watch{ward: row.Ward, risk: row.Risk, interval: row.Interval, lastSetAt: row.LastSetAt, persisted: row}
			delete(e.saved, id)
		} else {
			w = &watch{ward: ward, lastSetAt: now, interval: e.cfg.PolicyFor(ward).Overdue.TwelveHourly}
		}
		e.patients[id] = w
	}
	if ward != "" && ward != w.ward {
		w.ward = ward
	}
	e.persistWatchLocked(id, w)
	return w
}

// Unwatch stops the overdue check of a discharged patient, and their
// devices' checks: open overdue and device alerts are withdrawn with cause as the
// reason. Open NEWS2 alerts stay open for a clinician to resolve; they are
// the record of what happened.
func (e *Engine) Unwatch(id vward.PatientID, cause string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if w := e.patients[id]; w != nil {
		w.unwatched = true // a monitor that kept it must look again
	}
	delete(e.patients, id)
	delete(e.saved, id)
	for device, d := range e.devices {
		if d.patient == id {
			e.unbindLocked(device, d, cause, now)
		}
	}
	e.withdrawLocked(id, "discharged: "+cause, now)
}

// setPaused pauses or resumes a patient's monitoring. A paused patient is
// in hospital for now: nothing is raised for them, their overdue check and
// their devices' silence do not count, and their open overdue and device
// alerts are withdrawn with cause as the reason. Open NEWS2 alerts stay open. On
// resuming, the overdue check and the devices' silence count from then, as
// for a patient just admitted.
//
// It reports whether the patient's state changed.
func (e *Engine) setPaused(kept *watch, info PatientInfo, paused bool, cause string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	w := e.watchLocked(kept, info.ID, info.Ward, now)
	if w.paused == paused {
		return false
	}
	w.paused = paused
	if paused {
		e.withdrawLocked(info.ID, "monitoring paused: "+cause, now)
		return true
	}
	if w.lastSetAt.Before(now) {
		w.lastSetAt = now
	}
	w.resumedAt = now
	for i := range w.expected {
		w.expected[i].since = now
	}
	for _, d := range e.devices {
		if d.patient == info.ID && d.watchedFrom.Before(now) {
			d.watchedFrom = now
		}
	}
	e.persistWatchLocked(info.ID, w)
	return true
}

// pausedLocked reports whether the patient's monitoring is paused.
func (e *Engine) pausedLocked(id vward.PatientID) bool {
	w := e.patients[id]
	return w != nil && w.paused
}

// withdrawLocked resolves a patient's open overdue and device alerts:
// their condition no longer applies (the patient paused or discharged).
// Care plan alerts and concerns stay open, as NEWS2's do: they are
// clinical findings, and a concern is what a person reported.
func (e *Engine) withdrawLocked(id vward.PatientID, reason string, now time.Time) {
	for k, a := range e.open {
		if k.Patient != id || k.Condition == News2 || k.Condition == CarePlan || k.Condition == Concern {
			continue
		}
		e.stepLocked(a, now, e.evidenceOf(a), func(a Alert) (Alert, Effect) { return a.Withdraw(reason, now) })
	}
}

// Unbind tells the engine that a device no longer belongs to the patient
// it was heard for (unassigned, or handed to someone else): its silence and
// battery no longer alert for that patient, and its open device alerts
// are withdrawn with cause as the reason.
func (e *Engine) Unbind(device vward.DeviceID, cause string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d := e.devices[device]; d != nil && d.patient != "" {
		e.unbindLocked(device, d, cause, e.now())
	}
}

func (e *Engine) unbindLocked(device vward.DeviceID, d *deviceWatch, cause string, now time.Time) {
	reason := "device " + string(device) + " no longer assigned to the patient: " + cause
	for _, c := range []Condition{DeviceOffline, BatteryLow} {
		if a := e.open[Key{Patient: d.patient, Condition: c, Device: device}]; a != nil {
			e.stepLocked(a, now, deviceEvidence(device, d), func(a Alert) (Alert, Effect) { return a.Withdraw(reason, now) })
		}
	}
	d.patient, d.ward = "", ""
}

// HasOpenAlerts reports whether the patient has any open alert.
func (e *Engine) HasOpenAlerts(id vward.PatientID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.open {
		if k.Patient == id {
			return true
		}
	}
	return false
}

// BoundDevices returns each device the engine watches and the patient it
// is watched for, so that the registry's owner can unbind those whose
// assignment ended (Unbind).
func (e *Engine) BoundDevices() map[vward.DeviceID]vward.PatientID {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[vward.DeviceID]vward.PatientID, len(e.devices))
	for id, d := range e.devices {
		if d.patient != "" {
			out[id] = d.patient
		}
	}
	return out
}

// persistWatchLocked writes the overdue baseline when it changed enough to
// matter: a new ward, interval or risk, or a baseline moved by a quarter of
// the interval. So a patient streaming readings costs a handful of writes per
// interval, and after a restart the overdue check errs at most that quarter
// early, never late.
func (e *Engine) persistWatchLocked(id vward.PatientID, w *watch) {
	p := w.persisted
	if p.Patient == id && p.Ward == w.ward && p.Interval == w.interval && p.Risk == w.risk &&
		w.lastSetAt.Sub(p.LastSetAt) < w.interval/4 {
		return
	}
	w.persisted = watchRow{Patient: id, Ward: w.ward, LastSetAt: w.lastSetAt, Interval: w.interval, Risk: w.risk}
	row := w.persisted
	e.enqueueLocked(write{watch: &row})
}

// Assess takes a patient's newly scored observation set. seq orders the
// sets of one patient (the Monitor numbers them); a set older than one
// already assessed is ignored. It is cheap unless an alert changes state.
func (e *Engine) Assess(info PatientInfo, seq uint64, set news2.Set, res news2.Result) {
	e.assess(nil, info, seq, set, res, "", false)
}

// assess is Assess with the patient's watch if the caller kept it (from
// watch; nil if not), and why the patient was rescored if not for a new
// reading (cause, for the audit; "" for a reading).
//
// A paused patient's alerts may clear but nothing is raised or upgraded
// for them: they are in hospital for now. streamed says a streaming
// device's reading made the set (Monitor.Observe): a NEWS2 alert it would
// raise waits for confirmation (holdLocked).
func (e *Engine) assess(kept *watch, info PatientInfo, seq uint64, set news2.Set, res news2.Result, cause string, streamed bool) {
	e.Stats.Assessed.Add(1)
	setAt := set.LatestAt()
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	w := e.watchLocked(kept, info.ID, info.Ward, now)
	if seq != 0 {
		if seq <= w.seq {
			return
		}
		w.seq = seq
	}
	p := e.cfg.PolicyFor(w.ward)
	w.set, w.res, w.scored = set, res, true
	if setAt.After(w.lastAssessedAt) {
		w.lastAssessedAt = setAt
	}
	w.risk = res.Risk
	w.interval = p.Overdue.For(res)
	complete := p.completeEnough(res)
	if complete {
		// A device clock ahead of ours must not postpone the overdue check.
		at := setAt
		if at.After(now) {
			at = now
		}
		if at.After(w.lastSetAt) {
			w.lastSetAt = at
		}
	}
	e.persistWatchLocked(info.ID, w)
	evidence := func() json.RawMessage { return setEvidence(w) }

	o := Observation{Met: res.Risk >= news2.LowMedium, Risk: res.Risk, Score: res.Score, Complete: complete, At: setAt,
		why: func() string {
			if cause != "" {
				return describe(w.res) + "; rescored because " + cause
			}
			return describe(w.res)
		}}
	k := Key{Patient: info.ID, Condition: News2}
	if a := e.open[k]; a != nil {
		if !w.paused || !o.Met {
			e.stepLocked(a, now, evidence, func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
		}
	} else if o.Met && !w.paused && setAt.After(e.watermarks[k]) {
		// A rescore while a raise is held (cause) is no new reading: it
		// neither confirms the hold nor raises past it.
		if !e.holdLocked(w, p, streamed || (cause != "" && !w.confirming.since.IsZero()), setAt, now, &o) {
			e.raiseLocked(k, w.ward, o, p, now, evidence)
		}
	}
	if !o.Met || w.paused {
		w.confirming = confirming{}
	}
	if a := e.open[Key{Patient: info.ID, Condition: Overdue}]; a != nil && complete && !now.After(w.lastSetAt.Add(w.interval)) {
		o := Observation{Complete: true, At: setAt, Risk: res.Risk, Score: res.Score,
			why: func() string { return "a complete-enough set was measured at " + setAt.UTC().Format(time.RFC3339) }}
		e.stepLocked(a, now, evidence, func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
	}
}

// holdLocked reports whether a NEWS2 raise o waits for confirmation: it
// does when hold (a streaming device's reading made it) and the ward's
// Policy.StreamConfirm is on, until a set still meeting it is measured
// StreamConfirm after the first, or StreamConfirm has passed on the
// engine's clock (Tick) with nothing newer to say otherwise. A set of a
// spot-check device or a person raises at once, whatever is held. A raise
// confirmed says so in its reason.
func (e *Engine) holdLocked(w *watch, p Policy, hold bool, setAt, now time.Time, o *Observation) bool {
	delay := p.StreamConfirm
	if !hold || delay <= 0 {
		w.confirming = confirming{}
		return false
	}
	c := &w.confirming
	if c.since.IsZero() {
		*c = confirming{since: now, setAt: setAt}
		return true
	}
	if setAt.Sub(c.setAt) < delay && now.Sub(c.since) < delay {
		return true
	}
	held := max(setAt.Sub(c.setAt), now.Sub(c.since)).Round(time.Second)
	*c = confirming{}
	why := o.why
	o.why = func() string {
		return why() + fmt.Sprintf("; held %s on a streaming device's readings to confirm it", held)
	}
	return false
}

// describe says what a score means, for audit reasons.
func describe(r news2.Result) string {
	var s string
	if r.Complete {
		s = fmt.Sprintf("NEWS2 %d, %s risk", r.Score, r.Risk)
	} else {
		missing := make([]string, 0, news2.NumParameters)
		for _, p := range r.Missing() {
			missing = append(missing, p.String())
		}
		s = fmt.Sprintf("partial NEWS2 of at least %d, %s risk (missing %s)", r.Score, r.Risk, strings.Join(missing, ", "))
	}
	if r.RedScore {
		var red []string
		for p := range news2.NumParameters {
			if r.Has(p) && r.Subscores[p] == 3 {
				red = append(red, p.String())
			}
		}
		s += "; red score in " + strings.Join(red, ", ")
	}
	return s
}

// setEvidence renders the scored observation set behind a transition.
func setEvidence(w *watch) json.RawMessage {
	if !w.scored {
		return nil
	}
	type value struct {
		Value float64   `json:"value"`
		At    time.Time `json:"at"`
	}
	ev := struct {
		At     time.Time        `json:"at"`
		Scale  int              `json:"spo2_scale"`
		News2  Score            `json:"news2"`
		Values map[string]value `json:"values"`
	}{At: w.set.LatestAt(), Scale: int(max(w.set.Scale, news2.Scale1)), News2: NewScore(w.res), Values: map[string]value{}}
	for p := range news2.NumParameters {
		if v, at, ok := w.set.Latest(p); ok {
			ev.Values[p.String()] = value{v, at}
		}
	}
	b, _ := json.Marshal(ev)
	return b
}

func (e *Engine) raiseLocked(k Key, ward vward.WardID, o Observation, p Policy, now time.Time, evidence func() json.RawMessage) {
	e.nextID++
	a, eff := Raise(e.nextID, k, ward, o, p, now)
	e.open[k] = &a
	e.byID[a.ID] = &a
	e.commitLocked(&a, eff, now, evidence, nil)
}

func (e *Engine) stepLocked(a *Alert, now time.Time, evidence func() json.RawMessage, f func(Alert) (Alert, Effect)) {
	na, eff := f(*a)
	*a = na // in-memory hysteresis moves even when nothing is written
	if eff.Persist {
		e.commitLocked(a, eff, now, evidence, nil)
	}
}

// commitLocked records a transition: bumps the version, forgets a resolved
// alert, and queues the write and the board event.
func (e *Engine) commitLocked(a *Alert, eff Effect, now time.Time, evidence func() json.RawMessage, done chan error) {
	e.Stats.Transitions.Add(1)
	e.counts.counted(a, eff)
	a.Version++
	a.UpdatedAt = now
	k := a.Key()
	if !a.State.Open() {
		delete(e.open, k)
		delete(e.byID, a.ID)
		if a.EvidenceAt.After(e.watermarks[k]) {
			e.watermarks[k] = a.EvidenceAt
		}
	}
	var ev json.RawMessage
	for i := range eff.Audit {
		if eff.Audit[i].Observations == nil && evidence != nil {
			if ev == nil {
				ev = evidence()
			}
			eff.Audit[i].Observations = ev
		}
	}
	snap := *a
	change := ""
	if n := len(eff.Audit); n > 0 {
		change = eff.Audit[n-1].Action
	}
	e.log.Info("alert "+change, "alert", a.ID, "patient", a.Patient, "condition", a.Condition, "risk", a.Risk, "state", a.State)
	e.enqueueLocked(write{alert: &snap, audit: eff.Audit, event: &Event{Type: "alert", Alert: &snap, Change: change, Page: eff.Page}, done: done})
}

// Tick fires every timer that is due: shelves ending, escalations,
// reminders, overdue sets and silent devices. Run calls it every Config.Tick;
// tests call it with their own clock.
func (e *Engine) Tick() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	ids := make([]int64, 0, len(e.byID))
	for id := range e.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		a := e.byID[id]
		if a == nil {
			continue
		}
		p := e.cfg.PolicyFor(a.Ward)
		e.stepLocked(a, now, e.evidenceOf(a), func(a Alert) (Alert, Effect) { return a.Tick(p, now) })
	}
	for id, w := range e.patients {
		if !w.confirming.since.IsZero() {
			e.confirmLocked(id, w, now)
		}
		if len(w.expected) > 0 && !w.paused {
			e.expectedLocked(id, w, now)
		}
		if w.paused || !now.After(w.lastSetAt.Add(w.interval)) {
			continue // the common case, without a look at the watermarks
		}
		k := Key{Patient: id, Condition: Overdue}
		due := e.overdueFrom(k, w.lastSetAt).Add(w.interval)
		if !now.After(due) {
			continue
		}
		p := e.cfg.PolicyFor(w.ward)
		monitoring := "12-hourly"
		if w.scored {
			monitoring = w.res.Monitoring()
		}
		o := Observation{Met: true, Risk: w.risk, Score: w.res.Score, why: func() string {
			return fmt.Sprintf("no complete-enough set since %s: %s monitoring calls for one every %s",
				w.lastSetAt.UTC().Format(time.RFC3339), monitoring, w.interval)
		}}
		evidence := func() json.RawMessage { return overdueEvidence(w, due) }
		if a := e.open[k]; a == nil {
			e.raiseLocked(k, w.ward, o, p, now, evidence)
		} else {
			e.stepLocked(a, now, evidence, func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
		}
	}
	for id, d := range e.devices {
		if d.patient == "" {
			continue
		}
		if e.pausedLocked(d.patient) {
			continue // a paused patient's devices are expected to be quiet
		}
		p := e.cfg.PolicyFor(d.ward)
		var reason string
		switch {
		case !d.offlineSince.IsZero() && now.Sub(d.offlineSince) >= p.OfflineGrace:
			reason = fmt.Sprintf("offline since %s (its status said so)", d.offlineSince.UTC().Format(time.RFC3339))
		case now.Sub(d.quietSince()) >= p.DeviceSilence:
			if d.heardAt.Before(d.watchedFrom) {
				reason = fmt.Sprintf("not heard from since vward began listening at %s", d.watchedFrom.UTC().Format(time.RFC3339))
			} else {
				reason = fmt.Sprintf("not heard from since %s", d.heardAt.UTC().Format(time.RFC3339))
			}
		default:
			continue
		}
		k := Key{Patient: d.patient, Condition: DeviceOffline, Device: id}
		if e.open[k] == nil {
			e.raiseLocked(k, d.ward, Observation{Met: true, Reason: reason}, p, now, deviceEvidence(id, d))
		}
	}
}

// confirmLocked raises the NEWS2 alert held for the patient once the
// ward's StreamConfirm has passed on the engine's clock and the latest
// set still meets it: a stream that stops mid-dip is not forgotten.
func (e *Engine) confirmLocked(id vward.PatientID, w *watch, now time.Time) {
	p := e.cfg.PolicyFor(w.ward)
	k := Key{Patient: id, Condition: News2}
	if w.paused || w.res.Risk < news2.LowMedium || e.open[k] != nil || p.StreamConfirm <= 0 {
		w.confirming = confirming{}
		return
	}
	if now.Sub(w.confirming.since) < p.StreamConfirm {
		return
	}
	setAt := w.set.LatestAt()
	if !setAt.After(e.watermarks[k]) {
		w.confirming = confirming{}
		return
	}
	o := Observation{Met: true, Risk: w.res.Risk, Score: w.res.Score, Complete: p.completeEnough(w.res), At: setAt,
		why: func() string { return describe(w.res) }}
	if !e.holdLocked(w, p, true, setAt, now, &o) {
		e.raiseLocked(k, w.ward, o, p, now, func() json.RawMessage { return setEvidence(w) })
	}
}

// evidenceOf returns the current evidence for an alert's condition, for
// transitions made by timers and clinicians.
func (e *Engine) evidenceOf(a *Alert) func() json.RawMessage {
	switch a.Condition {
	case News2, Overdue:
		if w := e.patients[a.Patient]; w != nil {
			if a.Condition == Overdue && a.Rule != "" {
				if x := w.expectedOf(a.Rule); x != nil {
					return func() json.RawMessage { return expectedEvidence(*x, e.due(x, e.now())) }
				}
				return nil
			}
			return func() json.RawMessage { return setEvidence(w) }
		}
	case DeviceOffline, BatteryLow:
		if d := e.devices[a.Device]; d != nil {
			return deviceEvidence(a.Device, d)
		}
	case CarePlan:
		if w := e.patients[a.Patient]; w != nil {
			if s, ok := w.rules[a.Rule]; ok {
				return func() json.RawMessage { return carePlanEvidence(s) }
			}
		}
	case Concern:
		if ev := e.concerns[a.Patient]; ev != nil {
			return func() json.RawMessage { return ev }
		}
	}
	return nil
}

func overdueEvidence(w *watch, due time.Time) json.RawMessage {
	b, _ := json.Marshal(struct {
		LastSetAt time.Time       `json:"last_complete_set_at"`
		Due       time.Time       `json:"due_at"`
		Interval  string          `json:"interval"`
		Latest    json.RawMessage `json:"latest_set,omitempty"`
	}{w.lastSetAt, due, w.interval.String(), setEvidence(w)})
	return b
}

func deviceEvidence(id vward.DeviceID, d *deviceWatch) func() json.RawMessage {
	return func() json.RawMessage {
		v := struct {
			Device       vward.DeviceID `json:"device"`
			HeardAt      time.Time      `json:"heard_at,omitzero"`
			OfflineSince time.Time      `json:"offline_since,omitzero"`
			Battery      *float64       `json:"battery,omitempty"`
		}{Device: id, HeardAt: d.heardAt, OfflineSince: d.offlineSince}
		if d.hasBattery {
			b := d.battery
			v.Battery = &b
		}
		b, _ := json.Marshal(v)
		return b
	}
}

// deviceLocked returns the device's watch, watching it from now if it is
// new (as a patient is watched from when vward starts): kept, if the
// caller kept it (a device's watch is never dropped), else found.
func (e *Engine) deviceLocked(kept *deviceWatch, id vward.DeviceID, patient vward.PatientID, ward vward.WardID, now time.Time) *deviceWatch {
	d := kept
	if d == nil {
		d = e.devices[id]
	}
	if d == nil {
		d = &deviceWatch{watchedFrom: now}
		e.devices[id] = d
	}
	if patient != "" {
		d.patient = patient
	}
	if ward != "" {
		d.ward = ward
	}
	return d
}

// quietSince is when the device was last heard from, or when watching it
// began if later: a device is not silent for longer than vward has listened.
func (d *deviceWatch) quietSince() time.Time {
	if d.heardAt.After(d.watchedFrom) {
		return d.heardAt
	}
	return d.watchedFrom
}

// heardLocked records the device as heard from at at (≤ now). Heard-from
// never moves back, and an offline alert resolves only when the device is
// neither silent nor offline any more, so old news cannot clear it.
func (e *Engine) heardLocked(kept *deviceWatch, id vward.DeviceID, patient vward.PatientID, ward vward.WardID, at, now time.Time) *deviceWatch {
	d := e.deviceLocked(kept, id, patient, ward, now)
	if at.After(d.heardAt) {
		d.heardAt = at
	}
	if !at.Before(d.offlineSince) {
		d.offlineSince = time.Time{}
	}
	p := e.cfg.PolicyFor(d.ward)
	if a := e.open[Key{Patient: d.patient, Condition: DeviceOffline, Device: id}]; a != nil && a.Active &&
		d.offlineSince.IsZero() && now.Sub(d.quietSince()) < p.DeviceSilence {
		o := Observation{Complete: true, Reason: "heard from again"}
		e.stepLocked(a, now, deviceEvidence(id, d), func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
	}
	return d
}

// ObserveDevice takes what a device message says of the device itself, with
// or without readings: it was heard from, and its battery level (0–1) if
// the message had one. It is for ingest, on the delivery path, and is cheap.
func (e *Engine) ObserveDevice(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, battery *float64, at time.Time) {
	e.observeDevice(nil, device, patient, ward, battery, at)
}

// observeDevice is ObserveDevice with the device's watch if the caller
// kept it (nil if not), and returns the watch to keep: the monitor keeps
// it with the patient, because finding it among every device for every
// message was a cache miss or two (docs/design/one-lookup-per-record.md).
func (e *Engine) observeDevice(kept *deviceWatch, device vward.DeviceID, patient vward.PatientID, ward vward.WardID, battery *float64, at time.Time) *deviceWatch {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	d := e.heardLocked(kept, device, patient, ward, now, now)
	if battery == nil || d.patient == "" {
		return d
	}
	d.battery, d.hasBattery = *battery, true
	p := e.cfg.PolicyFor(d.ward)
	k := Key{Patient: d.patient, Condition: BatteryLow, Device: device}
	a := e.open[k]
	switch {
	case *battery < p.BatteryLow && a == nil && !e.pausedLocked(d.patient):
		e.raiseLocked(k, d.ward, Observation{Met: true, Reason: fmt.Sprintf("battery at %.0f%%, below %.0f%%", *battery*100, p.BatteryLow*100)},
			p, now, deviceEvidence(device, d))
	case *battery >= p.BatteryClear && a != nil && a.Active:
		o := Observation{Complete: true, Reason: fmt.Sprintf("battery at %.0f%%", *battery*100)}
		e.stepLocked(a, now, deviceEvidence(device, d), func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
	}
	return d
}

// DeviceStatus takes a device's status message: online false is its will
// (or an explicit offline). An offline device alerts after the ward's
// OfflineGrace unless it comes back first, so a broadband blip is no alarm.
//
// at is when the status was said: its ts, else when it was received, or
// zero when that is unknown (a retained status replayed when vward
// subscribed, with no ts). A status counts as the device heard from at its
// own time, never later, so an "online" replayed at every reconnect cannot
// hide a device that has gone quiet; one with no time says only that the
// device's last word was online.
func (e *Engine) DeviceStatus(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, online bool, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if at.After(now) {
		at = now
	}
	switch {
	case online && at.IsZero():
		e.deviceLocked(nil, device, patient, ward, now).offlineSince = time.Time{}
	case online:
		e.heardLocked(nil, device, patient, ward, at, now)
	default:
		d := e.deviceLocked(nil, device, patient, ward, now)
		if !at.IsZero() && at.Before(d.heardAt) {
			return // heard from since it said so
		}
		if d.offlineSince.IsZero() {
			d.offlineSince = now
			if !at.IsZero() {
				d.offlineSince = at
			}
		}
	}
}

// Alerts lists alerts.
func (e *Engine) Alerts(ctx context.Context, f Filter) ([]Alert, error) {
	if err := e.stored(ctx); err != nil {
		return nil, err
	}
	return e.store.List(ctx, f)
}

// Alert returns one alert with its audit trail.
func (e *Engine) Alert(ctx context.Context, id int64) (Alert, []AuditEntry, error) {
	if err := e.stored(ctx); err != nil {
		return Alert{}, nil, err
	}
	return e.store.Get(ctx, id)
}

// PatientAudit returns the audit entries of a patient's alerts made at or
// after since, newest first, at most limit (Store.PatientAudit),
// including every change made before the call.
func (e *Engine) PatientAudit(ctx context.Context, patient vward.PatientID, since time.Time, limit int) ([]AuditEntry, error) {
	if err := e.stored(ctx); err != nil {
		return nil, err
	}
	return e.store.PatientAudit(ctx, patient, since, limit)
}

// stored waits until every transition queued so far is stored, so that
// what is read from the store includes every change made before the read:
// a pause answered over REST has withdrawn its alerts in the list too.
func (e *Engine) stored(ctx context.Context) error {
	done := make(chan error, 1)
	e.mu.Lock()
	e.enqueueLocked(write{done: done})
	e.mu.Unlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ResponseTimes reports time to acknowledge by ward and risk.
func (e *Engine) ResponseTimes(ctx context.Context, wards []vward.WardID, since time.Time) ([]ResponseTime, error) {
	return e.store.ResponseTimes(ctx, wards, since)
}

// Acknowledge records a clinician's acknowledgement, with an optional note.
// It returns once the change is stored.
func (e *Engine) Acknowledge(ctx context.Context, id int64, actor, note string) (Alert, error) {
	return e.act(ctx, id, func(a Alert, _ Policy, now time.Time) (Alert, Effect, error) {
		return a.Acknowledge(actor, note, now)
	})
}

// Resolve records a clinician's resolution.
func (e *Engine) Resolve(ctx context.Context, id int64, actor, note string) (Alert, error) {
	return e.act(ctx, id, func(a Alert, _ Policy, now time.Time) (Alert, Effect, error) {
		if a.Active && a.Condition == News2 {
			// The data seen so far are the clinician's to judge: only a newer
			// set still meeting the condition raises again.
			if w := e.patients[a.Patient]; w != nil && w.lastAssessedAt.After(a.EvidenceAt) {
				a.EvidenceAt = w.lastAssessedAt
			}
		}
		if a.Active && a.Condition == CarePlan {
			// Likewise: only a newer reading that still breaks the rule.
			if w := e.patients[a.Patient]; w != nil {
				if at := w.rules[a.Rule].finding.Latest.At; at.After(a.EvidenceAt) {
					a.EvidenceAt = at
				}
			}
		}
		if a.Active && a.Condition == Overdue {
			// The gap so far is the clinician's to judge: the measurement
			// falls due again an interval after the resolution (overdueFrom).
			a.EvidenceAt = now
		}
		return a.Resolve(actor, note, now)
	})
}

// overdueFrom is when an overdue check counts from: the last measurement,
// or the resolution of the last overdue alert of key k by a clinician
// while it still held, whichever is later. A clinician who closes the
// episode (the patient phoned, the scales broken) is asked again an
// interval later, not at the next tick.
func (e *Engine) overdueFrom(k Key, last time.Time) time.Time {
	if wm := e.watermarks[k]; wm.After(last) {
		return wm
	}
	return last
}

// Shelve silences an alert for d with a reason.
func (e *Engine) Shelve(ctx context.Context, id int64, actor string, d time.Duration, reason string) (Alert, error) {
	return e.act(ctx, id, func(a Alert, p Policy, now time.Time) (Alert, Effect, error) {
		return a.Shelve(actor, d, reason, p, now)
	})
}

func (e *Engine) act(ctx context.Context, id int64, f func(Alert, Policy, time.Time) (Alert, Effect, error)) (Alert, error) {
	e.mu.Lock()
	a := e.byID[id]
	if a == nil {
		e.mu.Unlock()
		got, _, err := e.store.Get(ctx, id)
		if err != nil {
			return Alert{}, err
		}
		return got, conflictf("the alert is %s", got.State)
	}
	now := e.now()
	na, eff, err := f(*a, e.cfg.PolicyFor(a.Ward), now)
	if err != nil {
		snap := *a
		e.mu.Unlock()
		return snap, err
	}
	*a = na
	done := make(chan error, 1)
	e.commitLocked(a, eff, now, e.evidenceOf(a), done)
	snap := *a
	e.mu.Unlock()
	select {
	case err := <-done:
		return snap, err
	case <-ctx.Done():
		return snap, ctx.Err()
	}
}

// Run fires timers every Config.Tick and writes queued transitions until ctx
// ends; then it writes what is still queued and returns. Without Run (in
// tests, and before and after it) transitions are written synchronously.
func (e *Engine) Run(ctx context.Context) error {
	e.q.start()
	stop := context.AfterFunc(ctx, e.q.drain)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(e.writeLoop)
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
			e.Tick()
		}
	}
}

// write is one queued transition, or a watch update.
type write struct {
	alert *Alert
	audit []AuditEntry
	watch *watchRow
	// measured is a care plan's expected measurement made (expected.go).
	measured *measuredRow
	event    *Event
	done     chan error // told when stored, for a clinician waiting on it
}

func (e *Engine) enqueueLocked(w write) {
	if !e.q.put(w) {
		e.apply([]write{w}, false)
	}
}

// maxWriteBatch bounds the transitions stored in one transaction.
const maxWriteBatch = 512

func (e *Engine) writeLoop() {
	var batch []write
	for {
		batch = e.q.takeUpTo(batch[:0], maxWriteBatch)
		if len(batch) == 0 {
			return
		}
		e.apply(batch, true)
		clear(batch)
	}
}

// apply stores writes, in one transaction, and then publishes their events
// in order. The writer retries a failed write for as long as the engine
// runs, holding the queue (and so, once it is full, ingest and the broker):
// a transition is late rather than lost. Outside Run it tries a few times
// and reports the error.
func (e *Engine) apply(ws []write, running bool) {
	backoff := 50 * time.Millisecond
	var err error
	for attempt := 1; ; attempt++ {
		if err = e.store.writeAll(context.Background(), ws); err == nil {
			break
		}
		e.Stats.WriteFailures.Add(1)
		e.log.Error("store alert transition", "attempt", attempt, "err", err)
		if attempt >= 3 && !(running && e.q.running()) {
			break
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
	}
	for _, w := range ws {
		if err == nil && w.event != nil && e.publish != nil {
			e.publish.Publish(*w.event)
		}
		if w.done != nil {
			w.done <- err
		}
	}
}

// writeQueue is a bounded FIFO that blocks the producer when full. Before
// start and after drain it refuses (put returns false) so the caller writes
// synchronously, in order: drain hands over only once the queue is empty.
type writeQueue struct {
	mu    sync.Mutex
	cond  sync.Cond
	items []write
	limit int
	state int
}

const (
	queueIdle = iota
	queueRunning
	queueDraining
)

func (q *writeQueue) init(limit int) {
	q.cond.L = &q.mu
	q.limit = limit
}

func (q *writeQueue) start() {
	q.mu.Lock()
	q.state = queueRunning
	q.mu.Unlock()
}

func (q *writeQueue) drain() {
	q.mu.Lock()
	if q.state == queueRunning {
		q.state = queueDraining
	}
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *writeQueue) running() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.state == queueRunning
}

func (q *writeQueue) put(w write) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		switch {
		case q.state == queueRunning && len(q.items) < q.limit:
			q.items = append(q.items, w)
			q.cond.Broadcast()
			return true
		case q.state == queueIdle:
			return false
		}
		q.cond.Wait()
	}
}

// takeUpTo waits for writes and appends up to n of them, oldest first, to
// buf. It returns buf unchanged (empty) once the queue is drained and
// stopped.
func (q *writeQueue) takeUpTo(buf []write, n int) []write {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && q.state == queueRunning {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		q.state = queueIdle
		q.cond.Broadcast()
		return buf
	}
	k := min(n, len(q.items))
	buf = append(buf, q.items[:k]...)
	clear(q.items[:k])
	q.items = q.items[k:]
	q.cond.Broadcast()
	return buf
}

// AlarmBurden reads a ward's alert figures over [from, to]
// (Store.AlarmBurden), including every change made before the call.
func (e *Engine) AlarmBurden(ctx context.Context, ward vward.WardID, from, to time.Time) (Burden, error) {
	if err := e.stored(ctx); err != nil {
		return Burden{}, err
	}
	return e.store.AlarmBurden(ctx, ward, from, to)
}

// ChannelFailing raises a ward's technical alert for a notification channel
// that keeps failing it, or resolves it when the channel delivers again
// (notify.ChannelReporter). It never pages: the board says so instead.
func (e *Engine) ChannelFailing(ward vward.WardID, channel string, failing bool, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	p := e.cfg.PolicyFor(ward)
	k := Key{Condition: ChannelFailing, Ward: ward, Channel: channel}
	evidence := func() json.RawMessage {
		b, _ := json.Marshal(struct {
			Channel string `json:"channel"`
			Reason  string `json:"reason"`
		}{channel, reason})
		return b
	}
	switch a := e.open[k]; {
	case failing && a == nil:
		e.raiseLocked(k, ward, Observation{Met: true, Reason: "notifications over " + channel + " are failing: " + reason}, p, now, evidence)
	case !failing && a != nil && a.Active:
		o := Observation{Complete: true, Reason: "notifications over " + channel + " " + reason}
		e.stepLocked(a, now, evidence, func(a Alert) (Alert, Effect) { return a.Assess(o, p, now) })
	}
}
