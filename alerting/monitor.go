// Package alerting watches each patient: it keeps the patient's current
// observation set from readings that arrive separately, scores it with NEWS2
// on receipt, and tells the board what changed. The Engine turns scored sets,
// timers and clinicians' actions into alerts with a lifecycle and an audit
// trail (docs/alerts.md).
package alerting

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// Score is a NEWS2 result as the board and the REST API show it. A partial
// score names what is missing and must never be shown as a full NEWS2.
type Score struct {
	Score      int            `json:"score"`
	Risk       string         `json:"risk"`
	RedScore   bool           `json:"red_score"`
	Complete   bool           `json:"complete"`
	Missing    []string       `json:"missing"`
	Subscores  map[string]int `json:"subscores"`
	Monitoring string         `json:"monitoring"`
	Response   string         `json:"response"`
}

// NewScore renders a news2.Result.
func NewScore(r news2.Result) Score {
	s := Score{
		Score: r.Score, Risk: r.Risk.String(), RedScore: r.RedScore, Complete: r.Complete,
		Missing: []string{}, Subscores: make(map[string]int, news2.NumParameters),
		Monitoring: r.Monitoring(), Response: r.Response(),
	}
	for p := range news2.NumParameters {
		if r.Has(p) {
			s.Subscores[p.String()] = r.Subscores[p]
		} else {
			s.Missing = append(s.Missing, p.String())
		}
	}
	return s
}

// Event is what the monitor and the engine tell the board besides row
// changes (RowChange): an alert changed ("alert", docs/alerts.md), or a
// patient was discharged ("discharged").
type Event struct {
	Type string // "alert" or "discharged"
	// Alert is the alert as stored, Change the audit action that made it
	// so (raised, upgraded, …), and Page whether it needs a clinician now
	// (technical alerts never page).
	Alert  *Alert
	Change string
	Page   bool
	// Patient and Ward are who was discharged, and from which ward.
	Patient vward.PatientID
	Ward    vward.WardID
}

// Publisher receives events. Publish must not block: it is called on the
// delivery path.
type Publisher interface {
	Publish(Event)
}

// Listener is a RowPublisher that can tell whether anyone listens for a
// ward's patient rows (the board hub: a connected client who sees the
// ward). The monitor then tells of a changed row only when someone does:
// a change nobody receives costs the hub's lock for nothing, and the row
// is in the next snapshot anyway.
type Listener interface {
	ListeningTo(vward.WardID) bool
}

// RowPublisher is what the monitor tells of the board (the board hub):
// events through Publish (a patient discharged), and, when a patient's row
// changes, only whose row changed. The publisher fetches the row from the
// change's RowSource when it sends it, copied from the patient's state as
// it is then, so a row that a newer change replaces before it is sent is
// never built at all: that is how a lagging board client sheds load
// (docs/design/board-rows-fetched-when-sent.md). RowChanged must not block.
type RowPublisher interface {
	Publisher
	RowChanged(RowChange)
}

// RowChange says that a patient's board row changed.
type RowChange struct {
	Patient vward.PatientID
	Ward    vward.WardID // the patient's ward at the change
	// Trend says the NEWS2 trend changed as well: the next row sent of the
	// patient must carry it (an event carries the trend only when it
	// changed, docs/websocket.md), even if a later change does not.
	Trend bool
	Rows  RowSource
}

// RowSource gives a patient's board row as it is now (the monitor).
type RowSource interface {
	// CopyRow copies the patient's row into into, with the trend only if
	// trend, appended to into.Trend[:0] so that a caller who reuses into
	// reuses its room; it reports false, into left as it was, for a
	// patient it does not have.
	CopyRow(id vward.PatientID, trend bool, into *Row) bool
}

// PatientInfo is what the monitor needs to know of an admitted patient.
type PatientInfo struct {
	ID        vward.PatientID
	Ward      vward.WardID
	Name      string
	SpO2Scale int
	// Paused: the patient is in hospital for now. Their readings are still
	// kept and scored, but nothing is raised for them (Engine.setPaused).
	Paused bool
}

// Row is a patient's board row as it was at one moment: a copy of what the
// monitor keeps of the patient, taken under its lock, for the board to
// show (web encodes it).
type Row struct {
	Patient   vward.PatientID
	Ward      vward.WardID
	Name      string
	SpO2Scale int  // the prescribed SpO2 scale; 1 where none is
	Paused    bool // in hospital for now: no alert is raised for them
	// Vitals holds the latest reading of each kind, by ReadingKind.Index;
	// Kind is "" where there is none yet.
	Vitals [vward.NumReadingKinds]vward.Reading
	// Scored: some parameter was fresh enough to score, and Result is the
	// patient's NEWS2 now, partial unless Result.Complete.
	Scored bool
	Result news2.Result
	// Trend is the patient's NEWS2 over the last day, oldest first, when it
	// was asked for.
	Trend    []TrendPoint
	LastSeen time.Time // the newest reading's time; zero before any
}

type patient struct {
	info     PatientInfo
	set      news2.Set
	vitals   [vward.NumReadingKinds]vward.Reading // latest of each kind, by Index; Kind "" where none yet
	score    news2.Result
	scored   bool
	trend    scoreTrend
	lastSeen time.Time
	seq      uint64 // counts rescores, so the engine can order them

	trendSent uint64 // trend.version when a row change last said the trend changed

	// watch is the engine's record of the patient, kept from Admit so that
	// each assessment hands it over rather than the engine finding it
	// again (Engine.watch); nil for a patient heard of but not admitted.
	watch *watch
	// deviceWatch is the engine's record of device, the device the
	// patient's last message came from, kept for the same reason
	// (ObserveDevice).
	device      vward.DeviceID
	deviceWatch *deviceWatch

	// plan is the patient's care plan and the readings its rules read;
	// nil for a patient without one, who so costs nothing more. planSeq
	// numbers its evaluations, as seq the rescores, across plans.
	plan    *planWatch
	planSeq uint64
}

// assessment is a rescored patient on its way to the engine.
type assessment struct {
	watch    *watch
	info     PatientInfo
	seq      uint64
	set      news2.Set
	res      news2.Result
	streamed bool // a streaming device's reading changed the set (Engine.assess)
}

// Monitor keeps every patient's observation set and score.
type Monitor struct {
	freshness news2.Freshness
	publish   RowPublisher
	now       func() time.Time
	log       *slog.Logger

	engine *Engine // nil: scoring only

	mu       sync.Mutex
	patients map[vward.PatientID]*patient
}

// NewMonitor builds a monitor. publish may be nil; so may engine, and the
// monitor then only scores. Every rescored set goes to engine, outside the
// monitor's lock.
func NewMonitor(freshness news2.Freshness, publish RowPublisher, engine *Engine, log *slog.Logger) *Monitor {
	return &Monitor{
		freshness: freshness, publish: publish, engine: engine, now: time.Now,
		log:      log.With("component", "alerting"),
		patients: make(map[vward.PatientID]*patient),
	}
}

// Admit tells the monitor of a patient, or updates what it knows of one:
// Update with no cause.
func (m *Monitor) Admit(info PatientInfo) { m.Update(info, "") }

// Update tells the monitor what the registry now says of a patient, and
// cause why it changed (who changed what, for the alert audit). Each change
// takes effect at once rather than at the next reading or the next
// periodic rescore: a new SpO2 scale rescores the patient and assesses them
// through the alert lifecycle as a new reading would; pausing clears their
// overdue and device alerts, and resuming restarts the overdue clock and
// assesses their set as it is.
func (m *Monitor) Update(info PatientInfo, cause string) {
	var w *watch
	resumed := false
	if m.engine != nil {
		w = m.engine.watch(info)
		resumed = m.engine.setPaused(w, info, info.Paused, cause) && !info.Paused
	}
	now := m.now()
	var rowChanges []RowChange
	var assess *assessment
	m.mu.Lock()
	p := m.patientLocked(info.ID)
	rescale := p.set.Scale != news2.Scale(info.SpO2Scale) && !p.set.LatestAt().IsZero()
	changed := p.info != info
	p.info = info
	p.set.Scale = news2.Scale(info.SpO2Scale)
	p.watch = w
	if rescale || (resumed && !p.set.LatestAt().IsZero()) {
		m.rescoreLocked(p, now)
		if m.engine != nil {
			p.seq++
			assess = &assessment{watch: p.watch, info: p.info, seq: p.seq, set: p.set, res: p.score}
		}
	}
	if changed && m.listeningTo(p.info.Ward) {
		rowChanges = append(rowChanges, m.rowChangeLocked(p))
	}
	m.mu.Unlock()
	m.publishRows(rowChanges)
	if assess != nil {
		m.engine.assess(assess.watch, assess.info, assess.seq, assess.set, assess.res, cause, false)
	}
}

// Restore rebuilds admitted patients' latest vitals, observation sets and
// scores from readings read back from the history (history.Store.Latest)
// when vward starts, and assesses each patient through the alert
// lifecycle, so that a restart neither empties the board nor loses an
// alert whose reading was stored and acknowledged just before a crash.
// Readings of patients not admitted (discharged since) are left out, and
// the ward is the registry's, not the one stored with an old reading.
func (m *Monitor) Restore(rs []vward.Reading) {
	m.mu.Lock()
	kept := make([]vward.Reading, 0, len(rs))
	for _, r := range rs {
		if _, ok := m.patients[r.Patient]; ok {
			r.Ward = ""
			kept = append(kept, r)
		}
	}
	m.mu.Unlock()
	// Observe takes one patient's readings at a time.
	sort.SliceStable(kept, func(i, j int) bool {
		if kept[i].Patient != kept[j].Patient {
			return kept[i].Patient < kept[j].Patient
		}
		return kept[i].At.Before(kept[j].At)
	})
	for len(kept) > 0 {
		n := 1
		for n < len(kept) && kept[n].Patient == kept[0].Patient {
			n++
		}
		m.Observe(kept[:n])
		kept = kept[n:]
	}
}

// Discharge forgets a patient: the board drops the row and the alert engine
// stops watching for overdue readings and the patient's devices; their open
// overdue and device alerts clear, with cause (who discharged them, why) as
// the reason. NEWS2 alerts already open stay open until a clinician
// resolves them; they are the record of what happened.
func (m *Monitor) Discharge(id vward.PatientID, cause string) {
	m.mu.Lock()
	p, ok := m.patients[id]
	if ok {
		delete(m.patients, id)
	}
	m.mu.Unlock()
	if m.engine != nil && (ok || m.engine.HasOpenAlerts(id)) {
		// Not on the board but with open alerts: discharged while vward
		// was down.
		m.engine.Unwatch(id, cause)
	}
	if ok && m.publish != nil {
		m.publish.Publish(Event{Type: "discharged", Patient: id, Ward: p.info.Ward})
	}
}

// ObserveDevice passes what a device message says of the device (it was
// heard from, its battery 0–1 if given) to the alert engine. Ingest calls it
// for every accepted message, just after Observe found the patient, so
// finding them again here is cheap; with them is the engine's record of
// the device their last message came from, which the engine would
// otherwise look up among every device.
func (m *Monitor) ObserveDevice(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, battery *float64, at time.Time) {
	if m.engine == nil {
		return
	}
	var kept *deviceWatch
	m.mu.Lock()
	p := m.patients[patient]
	if p != nil && p.device == device {
		kept = p.deviceWatch
	}
	m.mu.Unlock()
	d := m.engine.observeDevice(kept, device, patient, ward, battery, at)
	if p != nil && d != kept {
		m.mu.Lock()
		p.device, p.deviceWatch = device, d
		m.mu.Unlock()
	}
}

// Unbind tells the alert engine that a device no longer belongs to the
// patient it was heard for (Engine.Unbind), cause saying why.
func (m *Monitor) Unbind(device vward.DeviceID, cause string) {
	if m.engine == nil {
		return
	}
	m.engine.Unbind(device, cause)
	m.mu.Lock()
	for _, p := range m.patients {
		if p.device == device {
			p.device, p.deviceWatch = "", nil
		}
	}
	m.mu.Unlock()
}

// HasOpenAlerts reports whether the patient has any open alert.
func (m *Monitor) HasOpenAlerts(id vward.PatientID) bool {
	return m.engine != nil && m.engine.HasOpenAlerts(id)
}

// BoundDevices returns each device the alert engine watches for a patient
// (Engine.BoundDevices); none without an engine.
func (m *Monitor) BoundDevices() map[vward.DeviceID]vward.PatientID {
	if m.engine == nil {
		return nil
	}
	return m.engine.BoundDevices()
}

// DeviceStatus passes a device's status (online false: its will said
// offline) to the alert engine.
func (m *Monitor) DeviceStatus(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, online bool, at time.Time) {
	if m.engine != nil {
		m.engine.DeviceStatus(device, patient, ward, online, at)
	}
}

func (m *Monitor) patientLocked(id vward.PatientID) *patient {
	p := m.patients[id]
	if p == nil {
		p = &patient{info: PatientInfo{ID: id}}
		m.patients[id] = p
	}
	return p
}

// Observe implements ingest.Observer: it folds readings into their patients'
// observation sets and rescores the patients whose set changed.
func (m *Monitor) Observe(rs []vward.Reading) {
	now := m.now()
	rowChanges := make([]RowChange, 0, 2) // on the stack, as assess
	assess := make([]assessment, 0, 2)    // on the stack: a message is nearly always one patient
	plans := make([]planAssessment, 0, 1) // on the stack; used only for patients with a care plan
	m.mu.Lock()
	var last *patient
	dirty, planDirty, streamed := false, false, false
	flush := func() {
		if last != nil && planDirty && m.engine != nil {
			plans = append(plans, m.evaluateLocked(last, now, ""))
		}
		if last != nil && dirty {
			m.rescoreLocked(last, now)
			if m.listeningTo(last.info.Ward) {
				rowChanges = append(rowChanges, m.rowChangeLocked(last))
			}
			if m.engine != nil {
				last.seq++
				assess = append(assess, assessment{watch: last.watch, info: last.info, seq: last.seq, set: last.set, res: last.score, streamed: streamed})
			}
		}
	}
	for _, r := range rs {
		// A message's readings are one patient's: look them up once.
		p := last
		if p == nil || p.info.ID != r.Patient {
			p = m.patientLocked(r.Patient)
		}
		if p != last {
			flush()
			last, dirty, planDirty, streamed = p, false, false, false
		}
		if p.plan != nil && p.plan.add(r) {
			planDirty = true
		}
		if r.Ward != "" {
			p.info.Ward = r.Ward
		}
		if r.At.After(p.lastSeen) {
			p.lastSeen = r.At
		}
		if i := r.Kind.Index(); i >= 0 {
			cur := &p.vitals[i]
			ok := cur.Kind != ""
			if !ok || !r.At.Before(cur.At) {
				// The same device measuring the same kind again less than
				// StreamingGap later is streaming: a wearable, a patch.
				if ok && cur.Device == r.Device && r.At.After(cur.At) && r.At.Sub(cur.At) < StreamingGap && !r.Entered() {
					streamed = true
				}
				if !ok || cur.At != r.At || cur.Value != r.Value {
					*cur = r
					dirty = true
				}
			}
		}
		if param, ok := news2.ParameterOf(r.Kind); ok && p.set.Update(param, r.Value, r.At) {
			dirty = true
		}
	}
	flush()
	m.mu.Unlock()
	m.publishRows(rowChanges)
	if m.engine != nil {
		for _, a := range assess {
			m.engine.assess(a.watch, a.info, a.seq, a.set, a.res, "", a.streamed)
		}
		for _, a := range plans {
			m.engine.assessCarePlan(a)
		}
	}
}

// publishRows tells the publisher whose rows changed.
func (m *Monitor) publishRows(changes []RowChange) {
	for _, c := range changes {
		m.publish.RowChanged(c)
	}
}

// rowChangeLocked is the RowChange of the patient's row: with the trend
// if it changed since the last change made. Every client has the trend as
// it was then, from that row or from a later snapshot (a client is
// registered before its snapshot is taken), and the hub carries the trend
// flag over when it coalesces changes.
func (m *Monitor) rowChangeLocked(p *patient) RowChange {
	trend := p.trend.version != p.trendSent
	p.trendSent = p.trend.version
	return RowChange{Patient: p.info.ID, Ward: p.info.Ward, Trend: trend, Rows: m}
}

// CopyRow implements RowSource. It is the board's hot path, thousands of
// rows a second: a copy, without allocating once into has room for the
// trend, and the row is encoded after the lock is let go.
func (m *Monitor) CopyRow(id vward.PatientID, trend bool, into *Row) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.patients[id]
	if !ok {
		return false
	}
	p.copyRow(into)
	into.Trend = into.Trend[:0]
	if trend {
		into.Trend = append(into.Trend, p.trend.points...)
	}
	return true
}

// listeningTo reports whether a patient event of the ward would reach
// anyone. It is asked under m.mu, and a board client is registered before
// it takes its snapshot, so a client that connects after a "no" finds the
// change it did not receive as an event in its snapshot.
func (m *Monitor) listeningTo(ward vward.WardID) bool {
	if m.publish == nil {
		return false
	}
	if l, ok := m.publish.(Listener); ok {
		return l.ListeningTo(ward)
	}
	return true
}

func (m *Monitor) rescoreLocked(p *patient, now time.Time) {
	p.score = news2.Score(p.set.Observations(now, m.freshness))
	p.scored = p.score.Present != 0
	if p.scored {
		p.trend.add(TrendPoint{At: now, Score: p.score.Score, Partial: !p.score.Complete})
	}
}

// copyRow copies the patient's row but its trend into r, leaving r.Trend
// as it is. The caller holds m.mu.
func (p *patient) copyRow(r *Row) {
	r.Patient, r.Ward, r.Name, r.Paused = p.info.ID, p.info.Ward, p.info.Name, p.info.Paused
	r.SpO2Scale = int(p.set.Scale)
	if r.SpO2Scale == 0 {
		r.SpO2Scale = int(news2.Scale1) // the zero scale scores as Scale1
	}
	r.Vitals = p.vitals
	r.Scored, r.Result = p.scored, p.score
	r.LastSeen = p.lastSeen
}

// wholeRow is the patient's row with the whole trend, as the board's
// snapshot and the REST API give it. The caller holds m.mu.
func (p *patient) wholeRow() Row {
	var r Row
	p.copyRow(&r)
	r.Trend = p.trend.snapshot()
	return r
}

// Snapshot returns the board rows of the wards sees accepts (every ward
// when sees is nil), each with its whole trend, in no particular order.
func (m *Monitor) Snapshot(sees func(vward.WardID) bool) []Row {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Row, 0, len(m.patients))
	for _, p := range m.patients {
		if sees == nil || sees(p.info.Ward) {
			out = append(out, p.wholeRow())
		}
	}
	return out
}

// Patient returns one patient's board row, with its whole trend.
func (m *Monitor) Patient(id vward.PatientID) (Row, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.patients[id]
	if !ok {
		return Row{}, false
	}
	return p.wholeRow(), true
}

// Run rescores every patient periodically so that values ageing out of
// their freshness window show as partial without waiting for a new reading.
func (m *Monitor) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.rescoreAll()
		}
	}
}

func (m *Monitor) rescoreAll() {
	now := m.now()
	var rowChanges []RowChange
	var plans []planAssessment
	m.mu.Lock()
	for _, p := range m.patients {
		before := p.score
		m.rescoreLocked(p, now)
		if p.score != before && m.listeningTo(p.info.Ward) {
			rowChanges = append(rowChanges, m.rowChangeLocked(p))
		}
		if p.plan != nil && m.engine != nil {
			// A rule reading within a time (a fall in the last day) ends
			// by the clock, not by a reading.
			plans = append(plans, m.evaluateLocked(p, now, ""))
		}
	}
	m.mu.Unlock()
	m.publishRows(rowChanges)
	for _, a := range plans {
		m.engine.assessCarePlan(a)
	}
}

// Freshness is how long each parameter's latest value stays current here:
// what decides whether a reading measured some time ago still scores.
func (m *Monitor) Freshness() news2.Freshness { return m.freshness }

// Retract takes readings entered in error out of a patient's current set
// and rescores them. The monitor holds only the newest value of each kind,
// so each kind whose held value is one of wrong (same device, time and
// value) is forgotten and the newest of earlier, the patient's other
// readings, takes its place; a kind with none shows as missing. A wrong
// reading already superseded changes nothing. The patient is assessed
// through the alert lifecycle with cause, as for a new reading, and
// Retract reports whether the set, or the readings kept for the patient's
// care plan, changed.
func (m *Monitor) Retract(id vward.PatientID, wrong, earlier []vward.Reading, cause string) bool {
	now := m.now()
	m.mu.Lock()
	p, ok := m.patients[id]
	if !ok {
		m.mu.Unlock()
		return false
	}
	var forgot [vward.NumReadingKinds]bool
	var plan *planAssessment
	planChanged := p.plan != nil && p.plan.forget(wrong)
	// The plan is evaluated once the vitals are put right, for the latest
	// measurement of what it expects may be the one in error.
	evaluatePlan := func() {
		if p.plan == nil || !planChanged && !slices.ContainsFunc(wrong, func(r vward.Reading) bool { return slices.Contains(p.plan.expects, r.Kind) }) {
			return
		}
		a := m.evaluateLocked(p, now, cause)
		for _, r := range wrong {
			a.retracted = append(a.retracted, r.Kind)
		}
		plan = &a
	}
	changed := false
	for _, r := range wrong {
		i := r.Kind.Index()
		if i < 0 {
			continue
		}
		cur := p.vitals[i]
		if cur.Kind == "" || cur.Device != r.Device || !cur.At.Equal(r.At) || cur.Value != r.Value {
			continue
		}
		p.vitals[i] = vward.Reading{}
		if param, ok := news2.ParameterOf(r.Kind); ok {
			p.set.Forget(param)
		}
		forgot[i], changed = true, true
	}
	if !changed {
		evaluatePlan()
		m.mu.Unlock()
		if plan != nil && m.engine != nil {
			m.engine.assessCarePlan(*plan)
		}
		return plan != nil
	}
	for _, r := range earlier {
		i := r.Kind.Index()
		if i < 0 || !forgot[i] || r.Patient != id {
			continue
		}
		if cur := &p.vitals[i]; cur.Kind == "" || !r.At.Before(cur.At) {
			*cur = r
		}
		if param, ok := news2.ParameterOf(r.Kind); ok {
			p.set.Update(param, r.Value, r.At)
		}
	}
	p.lastSeen = time.Time{}
	for _, v := range p.vitals {
		if v.Kind != "" && v.At.After(p.lastSeen) {
			p.lastSeen = v.At
		}
	}
	m.rescoreLocked(p, now)
	evaluatePlan()
	var rowChanges []RowChange
	if m.listeningTo(p.info.Ward) {
		rowChanges = append(rowChanges, m.rowChangeLocked(p))
	}
	var assess *assessment
	if m.engine != nil {
		p.seq++
		assess = &assessment{watch: p.watch, info: p.info, seq: p.seq, set: p.set, res: p.score}
	}
	m.mu.Unlock()
	m.publishRows(rowChanges)
	if assess != nil {
		m.engine.assess(assess.watch, assess.info, assess.seq, assess.set, assess.res, cause, false)
	}
	if plan != nil && m.engine != nil {
		m.engine.assessCarePlan(*plan)
	}
	return true
}
