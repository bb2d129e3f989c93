// Package planstore keeps each patient's care plan (careplan) beside the
// registry: at most one current plan a patient, every change a new
// version with its author, time and reason, and the versions kept. Each
// change is recorded in the patient's audit in its own transaction
// (devices.RecordPatientAudit). The careplan package stays pure; this one
// does its I/O.
package planstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/sqlitedb"
)

// plan holds the plan as careplan.Plan.MarshalJSON writes it, ” for a
// version that ended the plan. The triggers keep the versions as written
// whatever code runs against the file: a plan changes by a new version.
var migrations = []string{
	`CREATE TABLE care_plan_versions (
		patient_id TEXT NOT NULL,
		version INTEGER NOT NULL,
		ward_id TEXT NOT NULL,
		plan TEXT NOT NULL,
		author TEXT NOT NULL,
		reason TEXT NOT NULL,
		changed_at TEXT NOT NULL,
		PRIMARY KEY (patient_id, version)
	);
	CREATE TRIGGER care_plan_versions_never_changed BEFORE UPDATE ON care_plan_versions
		BEGIN SELECT RAISE(ABORT, 'a care plan version is never changed: write a new one'); END;
	CREATE TRIGGER care_plan_versions_never_removed BEFORE DELETE ON care_plan_versions
		BEGIN SELECT RAISE(ABORT, 'a care plan version is never removed: end the plan'); END;`,
}

// Registry is what the store asks of the registry (devices.Registry).
type Registry interface {
	Patient(ctx context.Context, id vward.PatientID) (devices.Patient, error)
}

// Version is one version of a patient's care plan: a plan put, or the
// plan ended (Plan nil).
type Version struct {
	Patient vward.PatientID
	Ward    vward.WardID // the patient's ward when it was written
	Number  int          // 1, 2, … per patient
	Plan    *careplan.Plan
	Author  string // a clinician's username, or "cli:<login>"
	Reason  string
	At      time.Time
}

// Ended reports whether the version ended the patient's plan.
func (v Version) Ended() bool { return v.Plan == nil }

// MaxReason bounds a change's reason, in characters.
const MaxReason = 1000

// Store keeps the care plans in the SQL store the registry shares. The
// CLI writes it from another process; a running node reads what it wrote
// on its next read.
type Store struct {
	db  *sql.DB
	reg Registry
	now func() time.Time
}

// Open migrates the care plans' table in db.
func Open(ctx context.Context, db *sql.DB, reg Registry) (*Store, error) {
	if err := sqlitedb.Migrate(ctx, db, "careplans", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db, reg: reg, now: time.Now}, nil
}

// Change is a new version of a patient's care plan as a person gives it.
type Change struct {
	// Plan is the plan as JSON, as careplan.Parse reads it; or Template
	// names a pathway template to copy. Exactly one is given.
	Plan     []byte
	Template string
	Reason   string
	// Base, when not 0, is the version the change was made from: the
	// change is refused (vward.ErrConflict) if another was written since,
	// so that two clinicians editing at once do not overwrite each other
	// unseen.
	Base int
}

// Set makes the change's plan the patient's current care plan, by
// devices.ActorOf(ctx), as a new version audited (careplan.set) in the
// same transaction. A plan that does not parse is refused with careplan's
// *InvalidError, naming each field; so are a missing reason
// (vward.ErrInvalid), an unknown patient or template (ErrNotFound), a
// discharged patient and a stale Base (ErrConflict).
func (s *Store) Set(ctx context.Context, patient vward.PatientID, c Change) (Version, error) {
	reason, err := checkReason(c.Reason)
	if err != nil {
		return Version{}, err
	}
	var p *careplan.Plan
	switch {
	case len(c.Plan) > 0 && c.Template != "":
		return Version{}, vward.Errorf(vward.ErrInvalid, "give a plan or a template's name, not both")
	case c.Template != "":
		p, err = careplan.Template(c.Template)
	case len(c.Plan) > 0:
		p, err = careplan.Parse(c.Plan)
	default:
		return Version{}, vward.Errorf(vward.ErrInvalid, "plan is required: the care plan as docs/careplans.md describes it, or a template's name")
	}
	if err != nil {
		return Version{}, err
	}
	pt, err := s.reg.Patient(ctx, patient)
	if err != nil {
		return Version{}, err
	}
	if pt.Status == devices.StatusDischarged {
		return Version{}, vward.Errorf(vward.ErrConflict, "patient %s is discharged: a care plan is for a stay", patient)
	}
	return s.insert(ctx, pt, p, reason, c.Base)
}

// Put makes plan, JSON as careplan.Parse reads it, the patient's current
// care plan, as Set does.
func (s *Store) Put(ctx context.Context, patient vward.PatientID, plan []byte, reason string) (Version, error) {
	return s.Set(ctx, patient, Change{Plan: plan, Reason: reason})
}

// PutTemplate makes a copy of the named pathway template the patient's
// current care plan, as Set does.
func (s *Store) PutTemplate(ctx context.Context, patient vward.PatientID, template, reason string) (Version, error) {
	return s.Set(ctx, patient, Change{Template: template, Reason: reason})
}

// End ends the patient's current care plan, by devices.ActorOf(ctx) for
// reason, as a new version audited (careplan.end) in the same
// transaction; the versions before it are kept. A patient with no current
// plan is answered vward.ErrNotFound. A discharged patient's plan may be
// ended, so that a plan left over from the stay can be closed.
func (s *Store) End(ctx context.Context, patient vward.PatientID, reason string) (Version, error) {
	reason, err := checkReason(reason)
	if err != nil {
		return Version{}, err
	}
	pt, err := s.reg.Patient(ctx, patient)
	if err != nil {
		return Version{}, err
	}
	return s.insert(ctx, pt, nil, reason, 0)
}

// insert writes the next version in one transaction with its audit
// record. The version number is read and written in that transaction, and
// the primary key refuses a second writer (the CLI, in another process)
// that read the same number.
func (s *Store) insert(ctx context.Context, pt devices.Patient, plan *careplan.Plan, reason string, base int) (Version, error) {
	patient := pt.ID
	v := Version{Patient: pt.ID, Ward: pt.Ward, Plan: plan, Author: devices.ActorOf(ctx), Reason: reason, At: s.now().UTC()}
	var js []byte
	var err error
	if plan != nil {
		if js, err = plan.MarshalJSON(); err != nil {
			return Version{}, fmt.Errorf("encode the care plan of %s: %w", patient, err)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Version{}, fmt.Errorf("write the care plan of %s: %w", patient, err)
	}
	defer tx.Rollback()
	var last int
	var lastPlan, lastAuthor string
	err = tx.QueryRowContext(ctx, `SELECT version, plan, author FROM care_plan_versions WHERE patient_id = ? ORDER BY version DESC LIMIT 1`,
		patient).Scan(&last, &lastPlan, &lastAuthor)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Version{}, fmt.Errorf("read the care plan of %s: %w", patient, err)
	}
	if base != 0 && base != last {
		return Version{}, changedSince(patient, base, last, lastAuthor)
	}
	action := "careplan.set"
	if plan == nil {
		if lastPlan == "" {
			return Version{}, vward.Errorf(vward.ErrNotFound, "patient %s has no current care plan to end", patient)
		}
		action = "careplan.end"
	}
	v.Number = last + 1
	if _, err := tx.ExecContext(ctx, `INSERT INTO care_plan_versions (patient_id, version, ward_id, plan, author, reason, changed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, v.Patient, v.Number, v.Ward, string(js), v.Author, v.Reason, sqlitedb.FormatTime(v.At)); err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return Version{}, vward.Errorf(vward.ErrConflict, "the care plan of %s changed meanwhile: read it again and repeat the change", patient)
		}
		return Version{}, fmt.Errorf("write the care plan of %s: %w", patient, err)
	}
	if err := devices.RecordPatientAudit(ctx, tx, action, v.Patient, summary(v), v.Reason); err != nil {
		return Version{}, err
	}
	if err := tx.Commit(); err != nil {
		return Version{}, fmt.Errorf("write the care plan of %s: %w", patient, err)
	}
	return v, nil
}

func changedSince(patient vward.PatientID, base, last int, author string) error {
	if last == 0 {
		return vward.Errorf(vward.ErrConflict, "the change was made from care plan version %d of %s, which has no care plan yet", base, patient)
	}
	return vward.Errorf(vward.ErrConflict, "the change was made from care plan version %d of %s, but version %d by %s is the newest: read it and repeat the change",
		base, patient, last, author)
}

// summary is the audit's one-line detail of a version; the version keeps
// the whole plan.
func summary(v Version) string {
	if v.Plan == nil {
		return fmt.Sprintf("care plan version %d: ended", v.Number)
	}
	p := v.Plan
	var b strings.Builder
	fmt.Fprintf(&b, "care plan version %d: %q", v.Number, p.Name)
	if p.Template != "" {
		fmt.Fprintf(&b, " from template %s", p.Template)
	}
	fmt.Fprintf(&b, ", %d expected measurements, %d rules", len(p.Expected), len(p.Rules))
	if e := p.Escalation; e != nil {
		fmt.Fprintf(&b, ", ceiling of care %s decided by %s", e.Ceiling, e.DecidedBy)
	} else {
		b.WriteString(", no treatment escalation plan")
	}
	return b.String()
}

// checkReason returns reason without surrounding space, refusing an empty
// or over-long one and control characters other than line breaks and
// tabs.
func checkReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", vward.Errorf(vward.ErrInvalid, "reason is required: say why the care plan changes; it is kept with the version and in the audit")
	}
	if !utf8.ValidString(reason) {
		return "", vward.Errorf(vward.ErrInvalid, "reason is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(reason); n > MaxReason {
		return "", vward.Errorf(vward.ErrInvalid, "reason is %d characters long; at most %d are kept", n, MaxReason)
	}
	for i, r := range []rune(reason) {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return "", vward.Errorf(vward.ErrInvalid, "reason holds a control character (U+%04X) at character %d", r, i+1)
		}
	}
	return reason, nil
}

const selectVersion = `SELECT patient_id, ward_id, version, plan, author, reason, changed_at FROM care_plan_versions`

// Current returns the patient's current care plan: the newest version,
// unless it ended the plan. A patient with no current plan is answered
// vward.ErrNotFound.
func (s *Store) Current(ctx context.Context, patient vward.PatientID) (Version, error) {
	vs, err := s.query(ctx, selectVersion+` WHERE patient_id = ? ORDER BY version DESC LIMIT 1`, patient)
	if err != nil {
		return Version{}, err
	}
	if len(vs) == 0 || vs[0].Ended() {
		return Version{}, vward.Errorf(vward.ErrNotFound, "patient %s has no current care plan", patient)
	}
	return vs[0], nil
}

// History returns every version of the patient's care plan, newest first.
func (s *Store) History(ctx context.Context, patient vward.PatientID) ([]Version, error) {
	return s.query(ctx, selectVersion+` WHERE patient_id = ? ORDER BY version DESC`, patient)
}

// Since returns the versions of the patient's care plan written at or
// after from, newest first, at most limit of them.
func (s *Store) Since(ctx context.Context, patient vward.PatientID, from time.Time, limit int) ([]Version, error) {
	return s.query(ctx, selectVersion+` WHERE patient_id = ? AND changed_at >= ? ORDER BY version DESC LIMIT ?`, patient, sqlitedb.FormatTime(from), limit)
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]Version, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read care plans: %w", err)
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		var v Version
		var plan, at string
		if err := rows.Scan(&v.Patient, &v.Ward, &v.Number, &plan, &v.Author, &v.Reason, &at); err != nil {
			return nil, fmt.Errorf("read care plans: %w", err)
		}
		v.At = sqlitedb.ParseTime(at)
		if plan != "" {
			// Stored plans were parsed when put; one that no longer
			// parses (a format this build does not read) is an error,
			// never a plan half-read, nor a refusal of the request.
			if v.Plan, err = careplan.Parse([]byte(plan)); err != nil {
				return nil, fmt.Errorf("read care plan version %d of %s: %v", v.Number, v.Patient, err)
			}
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read care plans: %w", err)
	}
	return out, nil
}
