package handover

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/sqlitedb"
)

// Times are Unix nanoseconds, as in the alert tables beside these. summary
// is the SBARD text as handed over; sbard the same summary structured.
var migrations = []string{
	`CREATE TABLE handovers (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		alert_id INTEGER NOT NULL,
		patient TEXT NOT NULL,
		ward TEXT NOT NULL,
		destination TEXT NOT NULL,
		note TEXT NOT NULL DEFAULT '',
		summary TEXT NOT NULL,
		sbard TEXT NOT NULL,
		handed_by TEXT NOT NULL,
		at INTEGER NOT NULL,
		outcome TEXT NOT NULL DEFAULT '',
		outcome_note TEXT NOT NULL DEFAULT '',
		outcome_by TEXT NOT NULL DEFAULT '',
		outcome_at INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX handovers_alert ON handovers(alert_id, id);
	CREATE INDEX handovers_ward_at ON handovers(ward, at);`,
}

// Handover is one handover of a patient from an alert to another service,
// with its SBARD and, once recorded, its outcome.
type Handover struct {
	ID          int64           `json:"id"`
	AlertID     int64           `json:"alert_id"`
	Patient     vward.PatientID `json:"patient"`
	Ward        vward.WardID    `json:"ward"`
	Destination Destination     `json:"destination"`
	Note        string          `json:"note,omitempty"`
	By          string          `json:"by"`
	At          time.Time       `json:"at"`
	// Outcome is empty until recorded; it is recorded once.
	Outcome     Outcome   `json:"outcome,omitempty"`
	OutcomeNote string    `json:"outcome_note,omitempty"`
	OutcomeBy   string    `json:"outcome_by,omitempty"`
	OutcomeAt   time.Time `json:"outcome_at,omitzero"`
	// SBARD is the summary as handed over; Text the same, ready to copy,
	// print or read over the telephone.
	SBARD Summary `json:"sbard"`
	Text  string  `json:"text"`
}

// Store keeps handovers in the SQL store the alerts share, so that a
// handover and its entries in the alert's audit are one transaction.
type Store struct{ db *sql.DB }

// Open migrates the handovers' table (owner "handover") in db.
func Open(ctx context.Context, db *sql.DB) (*Store, error) {
	if err := sqlitedb.Migrate(ctx, db, "handover", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// record stores a new handover of alert a, and in the same transaction its
// entry in the alert's audit (action "handover") and the patient's. It
// fills in h.ID.
func (s *Store) record(ctx context.Context, h *Handover, a alerting.Alert, evidence json.RawMessage) error {
	sbard, err := json.Marshal(h.SBARD)
	if err != nil {
		return fmt.Errorf("encode the handover of alert %d: %w", a.ID, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record the handover of alert %d: %w", a.ID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO handovers (alert_id, patient, ward, destination, note, summary, sbard, handed_by, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, h.AlertID, h.Patient, h.Ward, h.Destination, h.Note, h.Text, sbard, h.By, nanos(h.At))
	if err != nil {
		return fmt.Errorf("record the handover of alert %d: %w", a.ID, err)
	}
	if h.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("record the handover of alert %d: %w", a.ID, err)
	}
	reason := fmt.Sprintf("handed over to %s (%s), handover %d", h.Destination.Title(), h.Destination, h.ID)
	e := alerting.AuditEntry{AlertID: a.ID, Ward: a.Ward, At: h.At, Actor: h.By, Action: alerting.ActHandover,
		From: a.State, To: a.State, Risk: a.Risk, Tier: a.Tier, Reason: reason, Note: h.Note, Observations: evidence}
	if err := alerting.AppendAudit(ctx, tx, &e); err != nil {
		return err
	}
	detail := fmt.Sprintf("handover %d from alert %d to %s", h.ID, a.ID, h.Destination)
	if err := devices.RecordPatientAudit(devices.WithActor(ctx, h.By), tx, "patient.handover", h.Patient, detail, h.Note); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record the handover of alert %d: %w", a.ID, err)
	}
	return nil
}

// recordOutcome records what came of handover id, once: a second outcome
// is refused (vward.ErrConflict), naming the first. The alert's audit
// (action "handover_outcome") and the patient's record it in the same
// transaction.
//
// a is the handover's alert, read before: the store's one connection is
// the transaction's until it ends.
func (s *Store) recordOutcome(ctx context.Context, id int64, o Outcome, note, by string, at time.Time, a alerting.Alert) (Handover, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Handover{}, fmt.Errorf("record the outcome of handover %d: %w", id, err)
	}
	defer tx.Rollback()
	h, err := scan(tx.QueryRowContext(ctx, selectHandover+` WHERE id = ?`, id))
	if err != nil {
		return Handover{}, err
	}
	if h.Outcome != "" {
		return Handover{}, vward.Errorf(vward.ErrConflict, "handover %d already has its outcome: %s, recorded by %s at %s; an outcome is recorded once",
			id, h.Outcome, h.OutcomeBy, h.OutcomeAt.Format(time.RFC3339))
	}
	h.Outcome, h.OutcomeNote, h.OutcomeBy, h.OutcomeAt = o, note, by, at.UTC()
	if _, err := tx.ExecContext(ctx, `UPDATE handovers SET outcome = ?, outcome_note = ?, outcome_by = ?, outcome_at = ? WHERE id = ? AND outcome = ''`,
		h.Outcome, h.OutcomeNote, h.OutcomeBy, nanos(h.OutcomeAt), id); err != nil {
		return Handover{}, fmt.Errorf("record the outcome of handover %d: %w", id, err)
	}
	reason := fmt.Sprintf("outcome of handover %d to %s: %s", id, h.Destination, o.Words())
	e := alerting.AuditEntry{AlertID: a.ID, Ward: a.Ward, At: h.OutcomeAt, Actor: by, Action: alerting.ActHandoverOutcome,
		From: a.State, To: a.State, Risk: a.Risk, Tier: a.Tier, Reason: reason, Note: note}
	if err := alerting.AppendAudit(ctx, tx, &e); err != nil {
		return Handover{}, err
	}
	detail := fmt.Sprintf("handover %d to %s: %s", id, h.Destination, o)
	if err := devices.RecordPatientAudit(devices.WithActor(ctx, by), tx, "patient.handover_outcome", h.Patient, detail, note); err != nil {
		return Handover{}, err
	}
	if err := tx.Commit(); err != nil {
		return Handover{}, fmt.Errorf("record the outcome of handover %d: %w", id, err)
	}
	return h, nil
}

const selectHandover = `SELECT id, alert_id, patient, ward, destination, note, summary, sbard, handed_by, at,
	outcome, outcome_note, outcome_by, outcome_at FROM handovers`

// Get returns one handover.
func (s *Store) Get(ctx context.Context, id int64) (Handover, error) {
	return scan(s.db.QueryRowContext(ctx, selectHandover+` WHERE id = ?`, id))
}

// ForAlert returns the handovers of an alert, oldest first.
func (s *Store) ForAlert(ctx context.Context, alert int64) ([]Handover, error) {
	rows, err := s.db.QueryContext(ctx, selectHandover+` WHERE alert_id = ? ORDER BY id`, alert)
	if err != nil {
		return nil, fmt.Errorf("read the handovers of alert %d: %w", alert, err)
	}
	defer rows.Close()
	out := []Handover{}
	for rows.Next() {
		h, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the handovers of alert %d: %w", alert, err)
	}
	return out, nil
}

func scan(row interface{ Scan(...any) error }) (Handover, error) {
	var h Handover
	var sbard string
	var at, outAt int64
	err := row.Scan(&h.ID, &h.AlertID, &h.Patient, &h.Ward, &h.Destination, &h.Note, &h.Text, &sbard, &h.By, &at,
		&h.Outcome, &h.OutcomeNote, &h.OutcomeBy, &outAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Handover{}, vward.Errorf(vward.ErrNotFound, "no such handover")
	}
	if err != nil {
		return Handover{}, fmt.Errorf("read handover: %w", err)
	}
	h.At, h.OutcomeAt = fromNanos(at), fromNanos(outAt)
	if err := json.Unmarshal([]byte(sbard), &h.SBARD); err != nil {
		return Handover{}, fmt.Errorf("read handover %d: %w", h.ID, err)
	}
	return h, nil
}

// StepUp counts a ward's handovers made from from to to, inclusive, by destination, and
// their outcomes as recorded now.
func (s *Store) StepUp(ctx context.Context, ward vward.WardID, from, to time.Time) (devices.StepUp, error) {
	su := devices.StepUp{ByDestination: map[string]int{}, Outcomes: map[string]int{}}
	rows, err := s.db.QueryContext(ctx, `SELECT destination, outcome, COUNT(*) FROM handovers
		WHERE ward = ? AND at >= ? AND at <= ? GROUP BY destination, outcome`, ward, nanos(from), nanos(to))
	if err != nil {
		return su, fmt.Errorf("count the handovers of ward %s: %w", ward, err)
	}
	defer rows.Close()
	for rows.Next() {
		var dest, outcome string
		var n int
		if err := rows.Scan(&dest, &outcome, &n); err != nil {
			return su, fmt.Errorf("count the handovers of ward %s: %w", ward, err)
		}
		su.Handovers += n
		su.ByDestination[dest] += n
		if strings.TrimSpace(outcome) == "" {
			su.Awaiting += n
		} else {
			su.Outcomes[outcome] += n
		}
	}
	if err := rows.Err(); err != nil {
		return su, fmt.Errorf("count the handovers of ward %s: %w", ward, err)
	}
	return su, nil
}
