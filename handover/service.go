package handover

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
)

// Alerts is what a handover reads of the alerts (alerting.Engine, or
// alerting.Store from the command line).
type Alerts interface {
	Alert(ctx context.Context, id int64) (alerting.Alert, []alerting.AuditEntry, error)
}

// StoredAlerts reads alerts from the alert store itself, for a process
// without the running engine (the command line).
func StoredAlerts(s *alerting.Store) Alerts { return storedAlerts{s} }

type storedAlerts struct{ s *alerting.Store }

func (a storedAlerts) Alert(ctx context.Context, id int64) (alerting.Alert, []alerting.AuditEntry, error) {
	return a.s.Get(ctx, id)
}

// Registry is what a handover reads of the registry (devices.Registry).
type Registry interface {
	Patient(ctx context.Context, id vward.PatientID) (devices.Patient, error)
	Ward(ctx context.Context, id vward.WardID) (devices.Ward, error)
}

// Observed is a patient's latest observation set as a SetSource holds it.
type Observed struct {
	Set news2.Set
	// Sources says who measured each held value ("device ox-1",
	// "telephone, entered by alice (obs-3)").
	Sources   [news2.NumParameters]string
	Freshness news2.Freshness
	Trend     []alerting.TrendPoint
}

// SetSource gives the patient's latest observation set for a handover
// from alert a (LiveSets in a running node, AlertEvidence from the
// command line).
type SetSource interface {
	Observed(ctx context.Context, a alerting.Alert, audit []alerting.AuditEntry) (Observed, error)
}

// NoteSource gives a patient's notes that occurred since a time, newest
// first (NotesOf).
type NoteSource interface {
	Recent(ctx context.Context, patient vward.PatientID, since time.Time) ([]NoteLine, error)
}

// NotesLookback is how far back the SBARD quotes the patient's notes.
const NotesLookback = 24 * time.Hour

// maxNote bounds the free text of a handover or an outcome, as of any
// note in an audit record.
const maxNote = 2000

// Deps are what a Service is built from. Notes and Policy may be nil: no
// notes are quoted, and the product's default policy is cited.
type Deps struct {
	Store    *Store
	Alerts   Alerts
	Registry Registry
	Sets     SetSource
	Notes    NoteSource
	// Policy gives a ward's escalation policy as it is now
	// (alerting.Config.PolicyFor).
	Policy func(vward.WardID) alerting.Policy
	// Clock is the service's clock, time.Now when nil; Loc the time zone
	// of the SBARD's text, time.Local when nil.
	Clock func() time.Time
	Loc   *time.Location
}

// Service hands patients over from alerts and records the outcomes.
type Service struct{ d Deps }

// NewService builds the handover service.
func NewService(d Deps) *Service {
	if d.Policy == nil {
		d.Policy = func(vward.WardID) alerting.Policy { return alerting.DefaultPolicy() }
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	if d.Loc == nil {
		d.Loc = time.Local
	}
	return &Service{d: d}
}

// Store is the handovers' store.
func (s *Service) Store() *Store { return s.d.Store }

func checkNote(what, note string) (string, error) {
	note = strings.TrimSpace(note)
	if utf8.RuneCountInString(note) > maxNote {
		return "", vward.Errorf(vward.ErrInvalid, "%s may be at most %d characters", what, maxNote)
	}
	return note, nil
}

// Handover hands the patient of alert id over to destination, as
// devices.ActorOf(ctx), with an optional note: it builds the SBARD from the
// evidence and records it, in the alert's audit too. An unknown destination
// is vward.ErrInvalid naming the valid ones; a technical alert (a device's)
// is vward.ErrConflict.
func (s *Service) Handover(ctx context.Context, alertID int64, destination, note string) (Handover, error) {
	d, err := ParseDestination(destination)
	if err != nil {
		return Handover{}, err
	}
	if note, err = checkNote("a note", note); err != nil {
		return Handover{}, err
	}
	a, audit, err := s.d.Alerts.Alert(ctx, alertID)
	if err != nil {
		return Handover{}, err
	}
	if a.Condition.Queue() != alerting.Clinical {
		return Handover{}, vward.Errorf(vward.ErrConflict, "alert %d is a device's (%s), not a clinical alert: hand the patient over from their NEWS2 or overdue alert", a.ID, a.Condition)
	}
	p, err := s.d.Registry.Patient(ctx, a.Patient)
	if err != nil {
		return Handover{}, fmt.Errorf("hand over from alert %d: %w", a.ID, err)
	}
	w, err := s.d.Registry.Ward(ctx, a.Ward)
	if err != nil {
		return Handover{}, fmt.Errorf("hand over from alert %d: %w", a.ID, err)
	}
	obs, err := s.d.Sets.Observed(ctx, a, audit)
	if err != nil {
		return Handover{}, fmt.Errorf("hand over from alert %d: read the patient's observations: %w", a.ID, err)
	}
	now := s.d.Clock().UTC()
	var notes []NoteLine
	if s.d.Notes != nil {
		if notes, err = s.d.Notes.Recent(ctx, a.Patient, now.Add(-NotesLookback)); err != nil {
			return Handover{}, fmt.Errorf("hand over from alert %d: read the patient's notes: %w", a.ID, err)
		}
	}
	by := devices.ActorOf(ctx)
	sum := Build(Evidence{
		Patient: p, Ward: w, Alert: a, Policy: s.d.Policy(a.Ward),
		Set: obs.Set, Sources: obs.Sources, Freshness: obs.Freshness, Trend: obs.Trend, Notes: notes,
		Destination: d, Note: note, By: by, At: now, Loc: s.d.Loc,
	})
	h := Handover{AlertID: a.ID, Patient: a.Patient, Ward: a.Ward, Destination: d, Note: note, By: by, At: now, SBARD: sum, Text: sum.Text}
	// The audit keeps what the SBARD assessed, as every clinical action
	// keeps its evidence.
	evidence, err := json.Marshal(struct {
		Destination  Destination     `json:"destination"`
		News2        *alerting.Score `json:"news2,omitempty"`
		Observations []Measurement   `json:"values"`
	}{d, sum.Situation.News2, sum.Assessment.Observations})
	if err != nil {
		return Handover{}, fmt.Errorf("encode the evidence of the handover of alert %d: %w", a.ID, err)
	}
	if err := s.d.Store.record(ctx, &h, a, evidence); err != nil {
		return Handover{}, err
	}
	return h, nil
}

// Handovers returns the handovers of an alert, oldest first.
func (s *Service) Handovers(ctx context.Context, alertID int64) ([]Handover, error) {
	return s.d.Store.ForAlert(ctx, alertID)
}

// Get returns one handover.
func (s *Service) Get(ctx context.Context, id int64) (Handover, error) {
	return s.d.Store.Get(ctx, id)
}

// RecordOutcome records what came of handover id, as devices.ActorOf(ctx),
// once: a second is vward.ErrConflict.
func (s *Service) RecordOutcome(ctx context.Context, id int64, outcome, note string) (Handover, error) {
	o, err := ParseOutcome(outcome)
	if err != nil {
		return Handover{}, err
	}
	if note, err = checkNote("a note", note); err != nil {
		return Handover{}, err
	}
	h, err := s.d.Store.Get(ctx, id)
	if err != nil {
		return Handover{}, err
	}
	a, _, err := s.d.Alerts.Alert(ctx, h.AlertID)
	if err != nil {
		return Handover{}, fmt.Errorf("record the outcome of handover %d: %w", id, err)
	}
	return s.d.Store.recordOutcome(ctx, id, o, note, devices.ActorOf(ctx), s.d.Clock(), a)
}

// StepUp counts a ward's handovers and their outcomes (Store.StepUp).
func (s *Service) StepUp(ctx context.Context, ward vward.WardID, from, to time.Time) (devices.StepUp, error) {
	return s.d.Store.StepUp(ctx, ward, from, to)
}
