package notes

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/sqlitedb"
)

// The triggers keep the record as written whatever code runs against the
// file: a note is corrected by an addendum, never by an UPDATE.
var migrations = []string{
	`CREATE TABLE patient_notes (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		patient_id TEXT NOT NULL,
		ward_id TEXT NOT NULL,
		kind TEXT NOT NULL,
		text TEXT NOT NULL,
		occurred_at TEXT NOT NULL,
		created_at TEXT NOT NULL,
		author TEXT NOT NULL,
		amends INTEGER REFERENCES patient_notes(id)
	);
	CREATE INDEX patient_notes_patient ON patient_notes(patient_id, occurred_at);
	CREATE INDEX patient_notes_amends ON patient_notes(amends) WHERE amends IS NOT NULL;
	CREATE TRIGGER patient_notes_never_changed BEFORE UPDATE ON patient_notes
		BEGIN SELECT RAISE(ABORT, 'a note is never changed: add an addendum'); END;
	CREATE TRIGGER patient_notes_never_removed BEFORE DELETE ON patient_notes
		BEGIN SELECT RAISE(ABORT, 'a note is never removed: add an addendum'); END;`,
}

// Registry is what the store asks of the registry (devices.Registry).
type Registry interface {
	Patient(ctx context.Context, id vward.PatientID) (devices.Patient, error)
}

// Store keeps the notes in the SQL store the registry shares. The CLI
// writes it from another process; a running node reads what it wrote on
// its next read, as notes change no score.
type Store struct {
	db  *sql.DB
	reg Registry
	now func() time.Time
}

// Open migrates the notes' table in db.
func Open(ctx context.Context, db *sql.DB, reg Registry) (*Store, error) {
	if err := sqlitedb.Migrate(ctx, db, "notes", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db, reg: reg, now: time.Now}, nil
}

// clockSkew is how far ahead of now a time may be, as for a device's
// reading: a clock a little fast is not a note from the future.
var clockSkew = ingest.DefaultLimits().ClockSkew

// Add writes a note for an admitted or paused patient, by
// devices.ActorOf(ctx), with its audit record (note.add) in the same
// transaction. It refuses an unknown kind, an empty or over-long text, a
// time in the future or before the patient's admission (vward.ErrInvalid,
// naming the field), an unknown patient (ErrNotFound) and a discharged
// one (ErrConflict).
func (s *Store) Add(ctx context.Context, patient vward.PatientID, in Input) (Note, error) {
	now := s.now().UTC()
	kind, err := ParseKind(in.Kind)
	if err != nil {
		return Note{}, err
	}
	text, err := checkText(in.Text)
	if err != nil {
		return Note{}, err
	}
	at := now
	if in.OccurredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, in.OccurredAt)
		if err != nil {
			return Note{}, vward.Errorf(vward.ErrInvalid, "occurred_at %q is not an RFC 3339 time such as 2026-03-01T14:05:00Z", in.OccurredAt)
		}
		if t.After(now.Add(clockSkew)) {
			return Note{}, vward.Errorf(vward.ErrInvalid, "occurred_at %s is %s in the future (allowed skew %s)", in.OccurredAt, t.Sub(now).Round(time.Second), clockSkew)
		}
		at = t.UTC()
	}
	p, err := s.reg.Patient(ctx, patient)
	if err != nil {
		return Note{}, err
	}
	if p.Status == devices.StatusDischarged {
		return Note{}, vward.Errorf(vward.ErrConflict, "patient %s is discharged: notes are written during a stay; an addendum may still amend one", patient)
	}
	if at.Before(p.Admitted.Add(-clockSkew)) {
		return Note{}, vward.Errorf(vward.ErrInvalid, "occurred_at %s is before %s was admitted (%s): a note belongs to the stay",
			at.Format(time.RFC3339), patient, p.Admitted.UTC().Format(time.RFC3339))
	}
	n := Note{Patient: p.ID, Ward: p.Ward, Kind: kind, Text: text, OccurredAt: at, CreatedAt: now, Author: devices.ActorOf(ctx)}
	detail := func(n Note) string {
		return fmt.Sprintf("%s %s, occurred %s: %s", n.Name(), n.Kind, sqlitedb.FormatTime(n.OccurredAt), clip(n.Text))
	}
	return s.insert(ctx, n, "note.add", detail)
}

// Addendum writes an addendum to note amends, by devices.ActorOf(ctx),
// happening now, with its audit record (note.addendum) in the same
// transaction. An addendum amends a note, not another addendum: the
// error names the note to amend instead.
func (s *Store) Addendum(ctx context.Context, amends int64, text string) (Note, error) {
	text, err := checkText(text)
	if err != nil {
		return Note{}, err
	}
	orig, err := s.Note(ctx, amends)
	if err != nil {
		return Note{}, err
	}
	if orig.Amends != 0 {
		return Note{}, vward.Errorf(vward.ErrInvalid, "%s is an addendum to %s: add the addendum to %s", orig.Name(), Name(orig.Amends), Name(orig.Amends))
	}
	now := s.now().UTC()
	n := Note{Patient: orig.Patient, Ward: orig.Ward, Kind: Addendum, Text: text, OccurredAt: now, CreatedAt: now,
		Author: devices.ActorOf(ctx), Amends: orig.ID}
	if p, err := s.reg.Patient(ctx, orig.Patient); err == nil {
		n.Ward = p.Ward
	}
	detail := func(n Note) string {
		return fmt.Sprintf("%s amends %s (%s of %s by %s): %s", n.Name(), orig.Name(), orig.Kind, sqlitedb.FormatTime(orig.OccurredAt), orig.Author, clip(n.Text))
	}
	return s.insert(ctx, n, "note.addendum", detail)
}

func (s *Store) insert(ctx context.Context, n Note, action string, detail func(Note) string) (Note, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Note{}, fmt.Errorf("write a note of %s: %w", n.Patient, err)
	}
	defer tx.Rollback()
	var amends any
	if n.Amends != 0 {
		amends = n.Amends
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO patient_notes (patient_id, ward_id, kind, text, occurred_at, created_at, author, amends)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, n.Patient, n.Ward, n.Kind, n.Text, sqlitedb.FormatTime(n.OccurredAt), sqlitedb.FormatTime(n.CreatedAt), n.Author, amends)
	if err != nil {
		return Note{}, fmt.Errorf("write a note of %s: %w", n.Patient, err)
	}
	if n.ID, err = res.LastInsertId(); err != nil {
		return Note{}, fmt.Errorf("write a note of %s: %w", n.Patient, err)
	}
	if err := devices.RecordPatientAudit(ctx, tx, action, n.Patient, detail(n), ""); err != nil {
		return Note{}, err
	}
	if err := tx.Commit(); err != nil {
		return Note{}, fmt.Errorf("write a note of %s: %w", n.Patient, err)
	}
	return n, nil
}

const selectNote = `SELECT id, patient_id, ward_id, kind, text, occurred_at, created_at, author, COALESCE(amends, 0) FROM patient_notes`

// Note returns one note or addendum.
func (s *Store) Note(ctx context.Context, id int64) (Note, error) {
	ns, err := s.query(ctx, selectNote+` WHERE id = ?`, id)
	if err != nil {
		return Note{}, err
	}
	if len(ns) == 0 {
		return Note{}, vward.Errorf(vward.ErrNotFound, "no note %s", Name(id))
	}
	return ns[0], nil
}

// List returns a patient's notes that occurred at or after since, newest
// first, at most limit of them, each followed by its addenda, oldest
// first (Thread shows them so).
func (s *Store) List(ctx context.Context, patient vward.PatientID, since time.Time, limit int) ([]Note, error) {
	// The addenda sort under their note: by the note's time, then the
	// note before its addenda, then the addenda in the order written.
	return s.query(ctx, `WITH shown AS (
			SELECT id FROM patient_notes WHERE patient_id = ? AND amends IS NULL AND occurred_at >= ?
			ORDER BY occurred_at DESC, id DESC LIMIT ?)
		SELECT n.id, n.patient_id, n.ward_id, n.kind, n.text, n.occurred_at, n.created_at, n.author, COALESCE(n.amends, 0)
		FROM patient_notes n JOIN patient_notes o ON o.id = COALESCE(n.amends, n.id)
		WHERE COALESCE(n.amends, n.id) IN (SELECT id FROM shown)
		ORDER BY o.occurred_at DESC, o.id DESC, n.amends IS NOT NULL, n.id`, patient, sqlitedb.FormatTime(since), limit)
}

// Recent returns a patient's notes that occurred at or after since, newest
// first, each followed by its addenda (Amends says which they amend): what
// a handover summary quotes.
func (s *Store) Recent(ctx context.Context, patient vward.PatientID, since time.Time) ([]Note, error) {
	return s.List(ctx, patient, since, maxRecent)
}

// maxRecent bounds Recent: a summary quotes the last days, not a month.
const maxRecent = 200

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Note, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read notes: %w", err)
	}
	defer rows.Close()
	out := []Note{}
	for rows.Next() {
		var n Note
		var occurred, created string
		if err := rows.Scan(&n.ID, &n.Patient, &n.Ward, &n.Kind, &n.Text, &occurred, &created, &n.Author, &n.Amends); err != nil {
			return nil, fmt.Errorf("read notes: %w", err)
		}
		n.OccurredAt, n.CreatedAt = sqlitedb.ParseTime(occurred), sqlitedb.ParseTime(created)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notes: %w", err)
	}
	return out, nil
}
