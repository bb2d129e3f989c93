package planstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
)

// Monitor is what a Follower tells of each patient's current plan
// (alerting.Monitor).
type Monitor interface {
	// SetCarePlan gives the patient's plan, nil when none, at its version,
	// and since when the plan has expected each of its measurements
	// (ExpectedSince); it reports false for a patient it does not watch.
	SetCarePlan(id vward.PatientID, plan *careplan.Plan, version int, since map[vward.ReadingKind]time.Time, cause string) bool
	// CarePlanVersion is the version it watches, 0 for none.
	CarePlanVersion(id vward.PatientID) int
	// FillCarePlan adds readings read back from the history to those the
	// plan's rules read, if the plan is still at version.
	FillCarePlan(id vward.PatientID, version int, rs []vward.Reading, cause string) bool
}

// History reads back a patient's readings of some kinds measured in
// [from, to), oldest first, for their plan's rules: the history's, with
// readings entered in error left out (the node wires the history and the
// observation entries).
type History interface {
	CarePlanReadings(ctx context.Context, p vward.PatientID, kinds []vward.ReadingKind, from, to time.Time) ([]vward.Reading, error)
}

// Follower keeps the monitor's care plans in step with the store: each
// change made in this process at once (the web server calls Patient after
// it), and those the CLI makes from another process when Run next reads
// the versions written since. Each plan it gives the monitor has its
// rules' readings read back from the history by Run, so that after a
// restart, or for a rule of a kind the monitor did not keep, a rule reads
// its whole window.
type Follower struct {
	store *Store
	mon   Monitor
	hist  History // nil: nothing is read back
	log   *slog.Logger

	mu   sync.Mutex // one sync at a time, so the monitor hears versions in order
	seen int64      // the newest version row read (rowid)

	pendingMu sync.Mutex
	pending   map[vward.PatientID]Version // plans whose readings are still to read back
	wake      chan struct{}
}

// NewFollower builds a Follower of store into mon, reading the plans'
// readings back from hist (nil: none).
func NewFollower(store *Store, mon Monitor, hist History, log *slog.Logger) *Follower {
	return &Follower{store: store, mon: mon, hist: hist, log: log.With("component", "planstore"),
		pending: make(map[vward.PatientID]Version), wake: make(chan struct{}, 1)}
}

// MinReadBack is the least a plan's rules' readings are read back for,
// whatever their window: a threshold rule reads the latest, however old.
const MinReadBack = 24 * time.Hour

// Resync is how often Run gives the monitor every current plan even when
// none changed: a patient admitted again after their plan was read gets
// it back within this long.
const Resync = time.Minute

// All gives the monitor every patient's current plan that it does not
// have yet, and ends those that ended.
func (f *Follower) All(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var top int64
	if err := f.store.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(rowid), 0) FROM care_plan_versions`).Scan(&top); err != nil {
		return fmt.Errorf("follow care plans: %w", err)
	}
	rows, err := f.store.db.QueryContext(ctx, `SELECT patient_id, MAX(version) FROM care_plan_versions GROUP BY patient_id`)
	if err != nil {
		return fmt.Errorf("follow care plans: %w", err)
	}
	type head struct {
		id      vward.PatientID
		version int
	}
	var heads []head
	for rows.Next() {
		var h head
		if err := rows.Scan(&h.id, &h.version); err != nil {
			rows.Close()
			return fmt.Errorf("follow care plans: %w", err)
		}
		heads = append(heads, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("follow care plans: %w", err)
	}
	for _, h := range heads {
		// An ended plan's version is never the monitor's (0), so it is
		// read again each time: a query a patient whose plan ended.
		if f.mon.CarePlanVersion(h.id) != h.version {
			if err := f.patientLocked(ctx, h.id); err != nil {
				return err
			}
		}
	}
	f.seen = max(f.seen, top)
	return nil
}

// Patient gives the monitor one patient's current plan, or ends it.
func (f *Follower) Patient(ctx context.Context, id vward.PatientID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.patientLocked(ctx, id)
}

func (f *Follower) patientLocked(ctx context.Context, id vward.PatientID) error {
	vs, err := f.store.query(ctx, selectVersion+` WHERE patient_id = ? ORDER BY version DESC LIMIT 1`, id)
	if err != nil {
		return fmt.Errorf("follow the care plan of %s: %w", id, err)
	}
	if len(vs) == 0 {
		return nil
	}
	v := vs[0]
	if v.Ended() && f.mon.CarePlanVersion(id) == 0 || !v.Ended() && f.mon.CarePlanVersion(id) == v.Number {
		return nil // the common case, every Resync: nothing to read further
	}
	cause := fmt.Sprintf("care plan version %d by %s: %s", v.Number, v.Author, v.Reason)
	if v.Ended() {
		cause = fmt.Sprintf("care plan ended (version %d) by %s: %s", v.Number, v.Author, v.Reason)
	}
	var since map[vward.ReadingKind]time.Time
	if !v.Ended() {
		// Every version, for since when each measurement is expected.
		vs, err := f.store.History(ctx, id)
		if err != nil {
			return fmt.Errorf("follow the care plan of %s: %w", id, err)
		}
		since = ExpectedSince(vs)
	}
	if f.mon.SetCarePlan(id, v.Plan, v.Number, since, cause) && !v.Ended() && f.hist != nil && len(v.Plan.Rules) > 0 {
		f.readBackLater(v)
	}
	return nil
}

// readBackLater has Run read back the readings the rules of v read.
func (f *Follower) readBackLater(v Version) {
	f.pendingMu.Lock()
	f.pending[v.Patient] = v
	f.pendingMu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// readBack reads back the readings of the plans waiting for them. One the
// history cannot give now waits for the next try (Resync).
func (f *Follower) readBack(ctx context.Context) {
	f.pendingMu.Lock()
	vs := make([]Version, 0, len(f.pending))
	for _, v := range f.pending {
		vs = append(vs, v)
	}
	clear(f.pending)
	f.pendingMu.Unlock()
	for _, v := range vs {
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		from := now.Add(-max(v.Plan.Lookback(), MinReadBack))
		rs, err := f.hist.CarePlanReadings(ctx, v.Patient, v.Plan.RuleKinds(), from, now.Add(time.Minute))
		if err != nil {
			f.log.Warn("read back a care plan's readings: its rules read what comes until the next try", "patient", v.Patient, "err", err)
			f.pendingMu.Lock()
			if _, newer := f.pending[v.Patient]; !newer {
				f.pending[v.Patient] = v
			}
			f.pendingMu.Unlock()
			continue
		}
		f.mon.FillCarePlan(v.Patient, v.Number, rs, fmt.Sprintf("care plan version %d's readings read back from the history", v.Number))
	}
}

// ExpectedSince says since when the current plan has expected each of its
// measurements, given a patient's versions newest first: the time of the
// oldest version in the unbroken run back from the newest that expected the
// kind, however often it was expected. A measurement added to a plan is
// so due a full interval after it was added, and a plan edited for another
// reason does not postpone one that was already due. It is empty when the
// plan ended.
func ExpectedSince(vs []Version) map[vward.ReadingKind]time.Time {
	out := map[vward.ReadingKind]time.Time{}
	if len(vs) == 0 || vs[0].Ended() {
		return out
	}
	for _, e := range vs[0].Plan.Expected {
		for _, v := range vs {
			if v.Ended() || !slices.ContainsFunc(v.Plan.Expected, func(x careplan.Expectation) bool { return x.Kind == e.Kind }) {
				break
			}
			out[e.Kind] = v.At
		}
	}
	return out
}

// changed gives the monitor the plans of the patients whose plans were
// written since the last read, by any process.
func (f *Follower) changed(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Versions are only ever added (the triggers), so rowid orders them.
	rows, err := f.store.db.QueryContext(ctx, `SELECT rowid, patient_id FROM care_plan_versions WHERE rowid > ? ORDER BY rowid LIMIT 1000`, f.seen)
	if err != nil {
		return fmt.Errorf("follow care plans: %w", err)
	}
	var ids []vward.PatientID
	top := f.seen
	for rows.Next() {
		var id vward.PatientID
		if err := rows.Scan(&top, &id); err != nil {
			rows.Close()
			return fmt.Errorf("follow care plans: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("follow care plans: %w", err)
	}
	for _, id := range ids {
		if err := f.patientLocked(ctx, id); err != nil {
			return err
		}
	}
	f.seen = top
	return nil
}

// Run reads the versions written since its last read every interval, and
// every plan every Resync, and reads back the readings of each plan given,
// until ctx ends.
func (f *Follower) Run(ctx context.Context, every time.Duration) error {
	// Reading back beside following: thousands of plans read back at
	// start must not hold up a plan changed meanwhile.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { f.readBackLoop(ctx) })
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := f.changed(ctx); err != nil && !errors.Is(err, context.Canceled) {
				f.log.Warn("following care plans failed; the next read retries", "err", err)
			}
		}
	}
}

// readBackLoop reads back the plans given, as they are given, and every
// Resync every plan the monitor lacks and what the history could not
// give before, until ctx ends.
func (f *Follower) readBackLoop(ctx context.Context) {
	resync := time.NewTicker(Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-resync.C:
			if err := f.All(ctx); err != nil && !errors.Is(err, context.Canceled) {
				f.log.Warn("following care plans failed; the next read retries", "err", err)
			}
			f.readBack(ctx)
		case <-f.wake:
			f.readBack(ctx)
		}
	}
}
