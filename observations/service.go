package observations

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/history"
	"github.com/vward/vward/news2"
)

// Monitor is what the service tells of entries (alerting.Monitor).
type Monitor interface {
	Observe(rs []vward.Reading)
	Retract(id vward.PatientID, wrong, earlier []vward.Reading, cause string) bool
	Freshness() news2.Freshness
}

// Lookback is how far back the readings that replace one entered in error
// are looked for, as far as a starting node restores (node.RestoreLookback).
const Lookback = 24 * time.Hour

// Service brings entries into a running node: their readings into the
// patient's observation set at once and into the history, and an entry
// marked in error out of the set again. Entries made by the CLI in another
// process are picked up by Run.
type Service struct {
	store   *Store
	history history.Store
	monitor Monitor
	log     *slog.Logger
	now     func() time.Time

	mu sync.Mutex // one sync at a time: a request's and Run's
}

// NewService builds the service of store into hist and mon.
func NewService(store *Store, hist history.Store, mon Monitor, log *slog.Logger) *Service {
	return &Service{store: store, history: hist, monitor: mon, log: log.With("component", "observations"), now: time.Now}
}

// Store is the entries' store.
func (s *Service) Store() *Store { return s.store }

// Enter records an entry (Store.Enter), scores it at once and stores its
// readings in the history. It returns the entry once recorded even if the
// history did not take the readings yet: Run retries until it does.
func (s *Service) Enter(ctx context.Context, patient vward.PatientID, in Input) (Entry, error) {
	e, err := s.store.Enter(ctx, patient, in)
	if err != nil {
		return Entry{}, err
	}
	s.sync(ctx)
	return s.reread(ctx, e), nil
}

// MarkEnteredInError marks an entry entered in error (Store) and rescores
// its patient without it.
func (s *Service) MarkEnteredInError(ctx context.Context, id int64, reason string) (Entry, error) {
	e, err := s.store.MarkEnteredInError(ctx, id, reason)
	if err != nil {
		return Entry{}, err
	}
	s.sync(ctx)
	return s.reread(ctx, e), nil
}

func (s *Service) reread(ctx context.Context, e Entry) Entry {
	if got, err := s.store.Entry(ctx, e.ID); err == nil {
		return got
	}
	return e
}

// Run picks up, every interval, entries another process (the CLI) made or
// marked in error, and retries storing readings the history refused.
func (s *Service) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.sync(ctx)
		}
	}
}

// sync observes and stores each entry not yet in the history, and takes
// each entry newly marked in error out of its patient's set. Observing an
// entry twice changes nothing (the monitor keeps the newest value of each
// kind), so an entry whose storing failed is simply offered again.
func (s *Service) sync(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	es, err := s.store.unstored(ctx)
	if err != nil {
		s.warn(ctx, "read the observation entries not yet in the history", err)
	}
	for _, e := range es {
		if e.Error == nil {
			s.monitor.Observe(e.Readings)
		}
		// In error or not, the history keeps what was entered: the
		// entries' store says which count.
		if err := s.history.WriteReadings(ctx, e.Readings); err != nil {
			s.warn(ctx, "store an observation entry in the history; retrying", err, "entry", e.Name())
			break // in order: the next try starts here
		}
		if err := s.store.markStored(ctx, e.ID); err != nil {
			s.warn(ctx, "mark an observation entry stored", err, "entry", e.Name())
		}
	}
	wrong, err := s.store.unapplied(ctx)
	if err != nil {
		s.warn(ctx, "read the observation entries marked in error", err)
	}
	for _, e := range wrong {
		if err := s.retract(ctx, e); err != nil {
			s.warn(ctx, "take an entry marked in error out of the current set; retrying", err, "entry", e.Name())
			continue
		}
		if err := s.store.markApplied(ctx, e.ID); err != nil {
			s.warn(ctx, "mark an entry in error applied", err, "entry", e.Name())
		}
	}
}

// retract takes e's readings out of its patient's set, offering the
// patient's other readings of the last Lookback in their place: the
// devices' from the history, the people's from the entries not in error
// (the store, not the history, says which entries count). With the history
// unreadable it fails, to be retried, rather than fall back to less than
// the patient's readings.
func (s *Service) retract(ctx context.Context, e Entry) error {
	now := s.now()
	from := now.Add(-Lookback)
	rs, err := s.history.Readings(ctx, e.Patient, from, now.Add(time.Hour))
	if err != nil {
		return fmt.Errorf("read the readings of %s that replace %s: %w", e.Patient, e.Name(), err)
	}
	others, err := s.store.Since(ctx, e.Patient, from)
	if err != nil {
		return err
	}
	earlier := make([]vward.Reading, 0, len(rs))
	for _, r := range rs {
		if !Entered(r) {
			r.Patient = e.Patient
			earlier = append(earlier, r)
		}
	}
	for _, o := range others {
		earlier = append(earlier, o.Readings...)
	}
	cause := fmt.Sprintf("observation.entered_in_error (%s) by %s at %s: %s", e.Name(), e.Error.By, e.Error.At.UTC().Format(time.RFC3339), e.Error.Reason)
	s.monitor.Retract(e.Patient, e.Readings, earlier, cause)
	return nil
}

// Restore replaces, in readings read back from the history at start
// (history.Store.Latest), the entered ones by the entries not in error
// measured since from: the history's newest entered reading of a kind may
// be one in error, and the entries' store knows.
func (s *Service) Restore(ctx context.Context, readings []vward.Reading, from time.Time) []vward.Reading {
	return s.RestoreOf(ctx, "", readings, from)
}

// RestoreOf is Restore for one patient's readings (every patient's when
// patient is empty).
func (s *Service) RestoreOf(ctx context.Context, patient vward.PatientID, readings []vward.Reading, from time.Time) []vward.Reading {
	out := make([]vward.Reading, 0, len(readings))
	for _, r := range readings {
		if !Entered(r) {
			out = append(out, r)
		}
	}
	es, err := s.store.Since(ctx, patient, from)
	if err != nil {
		s.warn(ctx, "restore the entered observations: the board shows the devices' readings only", err)
		return out
	}
	for _, e := range es {
		out = append(out, e.Readings...)
	}
	return out
}

func (s *Service) warn(ctx context.Context, what string, err error, args ...any) {
	if ctx.Err() != nil {
		return
	}
	s.log.Warn(what, append(args, "err", err)...)
}

// View is an entry as the REST API and the CLI show it.
type View struct {
	ID         string          `json:"id"` // "obs-12"
	Patient    vward.PatientID `json:"patient"`
	Ward       vward.WardID    `json:"ward"`
	Source     Source          `json:"source"`
	Author     string          `json:"entered_by"`
	MeasuredAt time.Time       `json:"measured_at"`
	EnteredAt  time.Time       `json:"entered_at"`
	// Readings are by kind, as device protocol v1 writes values.
	Readings map[string]any `json:"readings"`
	// Stored: the readings are in the history.
	Stored bool `json:"stored"`
	// Current: every scored parameter of the entry was measured within
	// its freshness window of now, and the entry is not in error. Note
	// says why not.
	Current        bool       `json:"current"`
	Note           string     `json:"note,omitempty"`
	EnteredInError *ErrorMark `json:"entered_in_error"`
}

// Present shows an entry, judging its currency at now with f, the
// monitor's freshness.
func Present(e Entry, now time.Time, f news2.Freshness) View {
	v := View{ID: e.Name(), Patient: e.Patient, Ward: e.Ward, Source: e.Source, Author: e.Author,
		MeasuredAt: e.MeasuredAt, EnteredAt: e.EnteredAt, Readings: make(map[string]any, len(e.Readings)),
		Stored: e.Stored, Current: true, EnteredInError: e.Error}
	var stale []string
	var window time.Duration
	for _, r := range e.Readings {
		switch r.Kind {
		case vward.SupplementalOxygen, vward.FallEvent:
			v.Readings[string(r.Kind)] = r.Bool()
		case vward.Consciousness:
			v.Readings[string(r.Kind)] = r.Level().String()
		default:
			v.Readings[string(r.Kind)] = r.Value
		}
		if p, ok := news2.ParameterOf(r.Kind); ok {
			if e.MeasuredAt.Before(now.Add(-f[p])) || e.MeasuredAt.After(now.Add(f[p])) {
				stale = append(stale, string(r.Kind))
				window = max(window, f[p])
			}
		}
	}
	switch {
	case e.Error != nil:
		v.Current = false
		v.Note = "entered in error by " + e.Error.By + ": not part of the patient's NEWS2"
	case len(stale) > 0:
		v.Current = false
		v.Note = fmt.Sprintf("measured %s ago, outside the %s freshness window of %s: stored, but not part of the current NEWS2",
			now.Sub(e.MeasuredAt).Round(time.Minute), window, strings.Join(stale, ", "))
	}
	return v
}
