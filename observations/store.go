package observations

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/sqlitedb"
)

var migrations = []string{
	// readings holds {"kind": value, …} as stored in the history (numbers;
	// 0/1 for supplemental_oxygen; the ACVPU level). stored_at is when the
	// node wrote them to the history, '' until then; error_applied says
	// the node has taken an entry marked in error out of the current set.
	`CREATE TABLE observation_entries (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		patient_id TEXT NOT NULL,
		ward_id TEXT NOT NULL,
		source TEXT NOT NULL,
		author TEXT NOT NULL,
		measured_at TEXT NOT NULL,
		entered_at TEXT NOT NULL,
		readings TEXT NOT NULL,
		stored_at TEXT NOT NULL DEFAULT '',
		error_at TEXT NOT NULL DEFAULT '',
		error_by TEXT NOT NULL DEFAULT '',
		error_reason TEXT NOT NULL DEFAULT '',
		error_applied INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX observation_entries_patient ON observation_entries(patient_id, measured_at);
	CREATE INDEX observation_entries_unstored ON observation_entries(id) WHERE stored_at = '';
	CREATE INDEX observation_entries_unapplied ON observation_entries(id) WHERE error_at != '' AND error_applied = 0;`,
}

// Registry is what the store asks of the registry (devices.Registry).
type Registry interface {
	Patient(ctx context.Context, id vward.PatientID) (devices.Patient, error)
}

// Store keeps the entries in the SQL store the registry shares. The CLI
// writes it from another process; a running node's Service picks those
// entries up (Service.Run).
type Store struct {
	db     *sql.DB
	reg    Registry
	limits ingest.Limits
	now    func() time.Time
}

// Open migrates the entries' table in db.
func Open(ctx context.Context, db *sql.DB, reg Registry) (*Store, error) {
	if err := sqlitedb.Migrate(ctx, db, "observations", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db, reg: reg, limits: ingest.DefaultLimits(), now: time.Now}, nil
}

// Enter records an entry for an admitted or paused patient, entered by
// devices.ActorOf(ctx), with its audit record in the same transaction. It
// refuses what ingest would refuse of a device (vward.ErrInvalid, naming
// the field), an unknown patient (ErrNotFound) and a discharged one
// (ErrConflict).
func (s *Store) Enter(ctx context.Context, patient vward.PatientID, in Input) (Entry, error) {
	now := s.now()
	ok, err := parse(in, now, s.limits)
	if err != nil {
		return Entry{}, err
	}
	p, err := s.reg.Patient(ctx, patient)
	if err != nil {
		return Entry{}, err
	}
	if p.Status == devices.StatusDischarged {
		return Entry{}, vward.Errorf(vward.ErrConflict, "patient %s is discharged: observations are entered for admitted patients", patient)
	}
	e := Entry{Patient: p.ID, Ward: p.Ward, Source: ok.source, Author: devices.ActorOf(ctx),
		MeasuredAt: ok.at, EnteredAt: now.UTC(), Readings: ok.readings}
	values := make(map[string]float64, len(e.Readings))
	for _, r := range e.Readings {
		values[string(r.Kind)] = r.Value
	}
	js, err := json.Marshal(values)
	if err != nil {
		return Entry{}, fmt.Errorf("encode the observations of %s: %w", patient, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Entry{}, fmt.Errorf("enter observations of %s: %w", patient, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO observation_entries (patient_id, ward_id, source, author, measured_at, entered_at, readings)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.Patient, e.Ward, e.Source, e.Author, sqlitedb.FormatTime(e.MeasuredAt), sqlitedb.FormatTime(e.EnteredAt), string(js))
	if err != nil {
		return Entry{}, fmt.Errorf("enter observations of %s: %w", patient, err)
	}
	if e.ID, err = res.LastInsertId(); err != nil {
		return Entry{}, fmt.Errorf("enter observations of %s: %w", patient, err)
	}
	e.attribute()
	detail := fmt.Sprintf("%s by %s, measured %s: %s", e.Name(), e.Source, sqlitedb.FormatTime(e.MeasuredAt), e.summary())
	if err := devices.RecordPatientAudit(ctx, tx, "observation.enter", e.Patient, detail, ""); err != nil {
		return Entry{}, err
	}
	if err := tx.Commit(); err != nil {
		return Entry{}, fmt.Errorf("enter observations of %s: %w", patient, err)
	}
	return e, nil
}

// MarkEnteredInError marks an entry entered in error, by
// devices.ActorOf(ctx) with reason, audited in the same transaction. The
// entry and its readings are kept, as the record of what was entered; they
// stop counting in the patient's observation set (Service).
func (s *Store) MarkEnteredInError(ctx context.Context, id int64, reason string) (Entry, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return Entry{}, vward.Errorf(vward.ErrInvalid, "reason is required: say why %s was entered in error; it is kept in the audit", Name(id))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Entry{}, fmt.Errorf("mark %s entered in error: %w", Name(id), err)
	}
	defer tx.Rollback()
	e, err := scanEntry(tx.QueryRowContext(ctx, selectEntry+` WHERE id = ?`, id))
	if err != nil {
		return Entry{}, err
	}
	if e.Error != nil {
		return Entry{}, vward.Errorf(vward.ErrConflict, "%s was already marked entered in error by %s", e.Name(), e.Error.By)
	}
	e.Error = &ErrorMark{At: s.now().UTC(), By: devices.ActorOf(ctx), Reason: reason}
	if _, err := tx.ExecContext(ctx, `UPDATE observation_entries SET error_at = ?, error_by = ?, error_reason = ? WHERE id = ?`,
		sqlitedb.FormatTime(e.Error.At), e.Error.By, reason, id); err != nil {
		return Entry{}, fmt.Errorf("mark %s entered in error: %w", e.Name(), err)
	}
	detail := fmt.Sprintf("%s by %s, measured %s: %s", e.Name(), e.Source, sqlitedb.FormatTime(e.MeasuredAt), e.summary())
	if err := devices.RecordPatientAudit(ctx, tx, "observation.entered_in_error", e.Patient, detail, reason); err != nil {
		return Entry{}, err
	}
	if err := tx.Commit(); err != nil {
		return Entry{}, fmt.Errorf("mark %s entered in error: %w", e.Name(), err)
	}
	return e, nil
}

const selectEntry = `SELECT id, patient_id, ward_id, source, author, measured_at, entered_at, readings, stored_at,
	error_at, error_by, error_reason FROM observation_entries`

// Entry returns one entry.
func (s *Store) Entry(ctx context.Context, id int64) (Entry, error) {
	return scanEntry(s.db.QueryRowContext(ctx, selectEntry+` WHERE id = ?`, id))
}

// List returns a patient's entries, newest measurement first, at most limit.
func (s *Store) List(ctx context.Context, patient vward.PatientID, limit int) ([]Entry, error) {
	return s.query(ctx, selectEntry+` WHERE patient_id = ? ORDER BY measured_at DESC, id DESC LIMIT ?`, patient, limit)
}

// Since returns the entries not in error measured at or after from, of
// one patient or, with patient "", of every patient, oldest first.
func (s *Store) Since(ctx context.Context, patient vward.PatientID, from time.Time) ([]Entry, error) {
	return s.query(ctx, selectEntry+` WHERE (? = '' OR patient_id = ?) AND measured_at >= ? AND error_at = '' ORDER BY measured_at, id`,
		patient, patient, sqlitedb.FormatTime(from))
}

// Measured returns a patient's entries measured in [from, to), those
// marked in error too, oldest first: what the charts draw.
func (s *Store) Measured(ctx context.Context, patient vward.PatientID, from, to time.Time) ([]Entry, error) {
	return s.query(ctx, selectEntry+` WHERE patient_id = ? AND measured_at >= ? AND measured_at < ? ORDER BY measured_at, id`,
		patient, sqlitedb.FormatTime(from), sqlitedb.FormatTime(to))
}

// unstored returns the entries whose readings are not in the history yet.
func (s *Store) unstored(ctx context.Context) ([]Entry, error) {
	return s.query(ctx, selectEntry+` WHERE stored_at = '' ORDER BY id`)
}

// unapplied returns the entries marked in error that the node has not yet
// taken out of the current sets.
func (s *Store) unapplied(ctx context.Context) ([]Entry, error) {
	return s.query(ctx, selectEntry+` WHERE error_at != '' AND error_applied = 0 ORDER BY id`)
}

func (s *Store) markStored(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE observation_entries SET stored_at = ? WHERE id = ?`, sqlitedb.FormatTime(s.now()), id); err != nil {
		return fmt.Errorf("mark %s stored: %w", Name(id), err)
	}
	return nil
}

func (s *Store) markApplied(ctx context.Context, id int64) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE observation_entries SET error_applied = 1 WHERE id = ?`, id); err != nil {
		return fmt.Errorf("mark %s taken out of the current set: %w", Name(id), err)
	}
	return nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Entry, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read observation entries: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read observation entries: %w", err)
	}
	return out, nil
}

func scanEntry(row interface{ Scan(...any) error }) (Entry, error) {
	var e Entry
	var measured, entered, readings, stored, errAt, errBy, errReason string
	err := row.Scan(&e.ID, &e.Patient, &e.Ward, &e.Source, &e.Author, &measured, &entered, &readings, &stored, &errAt, &errBy, &errReason)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, vward.Errorf(vward.ErrNotFound, "no such observation entry")
	}
	if err != nil {
		return Entry{}, fmt.Errorf("read observation entry: %w", err)
	}
	e.MeasuredAt, e.EnteredAt, e.Stored = sqlitedb.ParseTime(measured), sqlitedb.ParseTime(entered), stored != ""
	if errAt != "" {
		e.Error = &ErrorMark{At: sqlitedb.ParseTime(errAt), By: errBy, Reason: errReason}
	}
	var values map[string]float64
	if err := json.Unmarshal([]byte(readings), &values); err != nil {
		return Entry{}, fmt.Errorf("read observation entry %s: %w", Name(e.ID), err)
	}
	for _, k := range vward.ReadingKinds {
		if v, ok := values[string(k)]; ok {
			e.Readings = append(e.Readings, vward.Reading{Kind: k, Value: v})
		}
	}
	e.attribute()
	return e, nil
}
