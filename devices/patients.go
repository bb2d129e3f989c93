package devices

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
)

// A patient's status on the ward.
const (
	StatusAdmitted   = "admitted"   // monitored at home
	StatusPaused     = "paused"     // in hospital for now; back later
	StatusDischarged = "discharged" // the stay has ended, with an outcome
)

// Outcomes of a stay, for the ward's flow report.
var Outcomes = []string{
	"recovered",   // care complete; stays at home
	"onward-care", // handed on to community, primary or social care
	"hospital",    // admitted or conveyed to hospital
	"died",
	"withdrew", // the patient declined further virtual ward care
	"other",
}

// DateLayout is how the registry writes calendar dates (date of birth,
// expected end of stay).
const DateLayout = "2006-01-02"

// Contact is someone to call when a patient deteriorates: a relative, a
// carer, the GP.
type Contact struct {
	Name  string `json:"name"`
	Role  string `json:"role,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Patient is a patient's stay on a virtual ward.
type Patient struct {
	ID        vward.PatientID `json:"id"`
	Ward      vward.WardID    `json:"ward"`
	NHSNumber string          `json:"nhs_number,omitempty"` // ten digits
	Name      string          `json:"name"`
	Born      string          `json:"born,omitempty"` // date of birth, DateLayout
	Status    string          `json:"status"`
	// SpO2Scale is the NEWS2 SpO2 scale prescribed: 1, or 2 for patients
	// with hypercapnic respiratory failure (target 88–92%). Changed only
	// with SetSpO2Scale, which records who and why.
	SpO2Scale   int        `json:"spo2_scale"`
	Admitted    time.Time  `json:"admitted_at"`
	ExpectedEnd string     `json:"expected_end,omitempty"` // DateLayout
	Discharged  *time.Time `json:"discharged_at,omitempty"`
	Outcome     string     `json:"outcome,omitempty"`
	Contacts    []Contact  `json:"escalation_contacts"`
}

// NewPatientID returns a fresh patient id, for admissions that do not
// bring their own.
func NewPatientID() (vward.PatientID, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make patient id: %w", err)
	}
	return vward.PatientID("p-" + hex.EncodeToString(b[:])), nil
}

func parseDate(what, s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, invalidf("%s %q is not a date written YYYY-MM-DD", what, s)
	}
	return t, nil
}

// Admit admits a patient to a ward. The NHS number, date of birth, expected
// end and contacts are optional here (the CLI and REST API ask for the NHS
// number); what is given is checked.
func (r *Registry) Admit(ctx context.Context, p Patient) error {
	if err := ValidID(string(p.ID)); err != nil {
		return fmt.Errorf("admit patient: %w", err)
	}
	if p.Name = strings.TrimSpace(p.Name); p.Name == "" {
		return invalidf("admit patient %s: give the patient's name", p.ID)
	}
	if p.NHSNumber != "" {
		n, err := NormalizeNHSNumber(p.NHSNumber)
		if err != nil {
			return fmt.Errorf("admit patient %s: %w", p.ID, err)
		}
		p.NHSNumber = n
	}
	if p.Admitted.IsZero() {
		p.Admitted = now()
	}
	if p.Born != "" {
		b, err := parseDate("date of birth", p.Born)
		if err != nil {
			return fmt.Errorf("admit patient %s: %w", p.ID, err)
		}
		if b.After(p.Admitted) {
			return invalidf("admit patient %s: date of birth %s is after the admission", p.ID, p.Born)
		}
		p.Born = b.Format(DateLayout)
	}
	if p.ExpectedEnd != "" {
		e, err := parseDate("expected end", p.ExpectedEnd)
		if err != nil {
			return fmt.Errorf("admit patient %s: %w", p.ID, err)
		}
		if e.Before(p.Admitted.Truncate(24 * time.Hour)) {
			return invalidf("admit patient %s: expected end %s is before the admission", p.ID, p.ExpectedEnd)
		}
		p.ExpectedEnd = e.Format(DateLayout)
	}
	if p.SpO2Scale == 0 {
		p.SpO2Scale = 1
	}
	if p.SpO2Scale != 1 && p.SpO2Scale != 2 {
		return invalidf("admit patient %s: SpO2 scale must be 1 or 2, not %d", p.ID, p.SpO2Scale)
	}
	for i, c := range p.Contacts {
		if strings.TrimSpace(c.Name) == "" {
			return invalidf("admit patient %s: escalation contact %d has no name", p.ID, i+1)
		}
	}
	contacts := p.Contacts
	if contacts == nil {
		contacts = []Contact{}
	}
	cj, _ := json.Marshal(contacts)

	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("admit patient %s: %w", p.ID, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM wards WHERE id = ?`, p.Ward).Scan(&n); err != nil {
		return fmt.Errorf("admit patient %s: %w", p.ID, err)
	}
	if n == 0 {
		return notFoundf("admit patient %s: ward %s not found", p.ID, p.Ward)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM patients WHERE id = ?`, p.ID).Scan(&n); err != nil {
		return fmt.Errorf("admit patient %s: %w", p.ID, err)
	}
	if n > 0 {
		return conflictf("admit patient %s: that id is taken; a readmission is a new stay with a new id", p.ID)
	}
	if p.NHSNumber != "" {
		var other string
		err := tx.QueryRowContext(ctx, `SELECT id FROM patients WHERE nhs_number = ? AND status != 'discharged'`, p.NHSNumber).Scan(&other)
		if err == nil {
			return conflictf("admit patient %s: a patient with this NHS number is already on a virtual ward (%s); discharge them first", p.ID, other)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("admit patient %s: %w", p.ID, err)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO patients (id, ward_id, nhs_number, name, born, status, spo2_scale, admitted_at, expected_end, contacts)
		VALUES (?, ?, ?, ?, ?, 'admitted', ?, ?, ?, ?)`,
		p.ID, p.Ward, p.NHSNumber, p.Name, p.Born, p.SpO2Scale, formatTime(p.Admitted), p.ExpectedEnd, string(cj))
	if err != nil {
		return fmt.Errorf("admit patient %s to ward %s: %w", p.ID, p.Ward, err)
	}
	// Names and NHS numbers stay out of the audit detail: the subject's id
	// leads to them, and the audit may be shared more widely.
	detail := fmt.Sprintf("ward %s, SpO2 scale %d", p.Ward, p.SpO2Scale)
	if p.ExpectedEnd != "" {
		detail += ", expected end " + p.ExpectedEnd
	}
	if err := audit(ctx, tx, "patient.admit", patientSubject(string(p.ID)), detail, ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("admit patient %s to ward %s: %w", p.ID, p.Ward, err)
	}
	return nil
}

const patientColumns = `id, ward_id, nhs_number, name, born, status, spo2_scale, admitted_at, expected_end, discharged_at, outcome, contacts`

func scanPatient(row interface{ Scan(...any) error }) (Patient, error) {
	var p Patient
	var admitted, discharged, contacts string
	if err := row.Scan(&p.ID, &p.Ward, &p.NHSNumber, &p.Name, &p.Born, &p.Status, &p.SpO2Scale, &admitted, &p.ExpectedEnd, &discharged, &p.Outcome, &contacts); err != nil {
		return Patient{}, err
	}
	p.Admitted = parseTime(admitted)
	if discharged != "" {
		t := parseTime(discharged)
		p.Discharged = &t
	}
	if err := json.Unmarshal([]byte(contacts), &p.Contacts); err != nil || p.Contacts == nil {
		p.Contacts = []Contact{}
	}
	return p, nil
}

// Patient returns one patient's stay.
func (r *Registry) Patient(ctx context.Context, id vward.PatientID) (Patient, error) {
	return r.patient(ctx, r.db, id)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (r *Registry) patient(ctx context.Context, q queryRower, id vward.PatientID) (Patient, error) {
	p, err := scanPatient(q.QueryRowContext(ctx, `SELECT `+patientColumns+` FROM patients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Patient{}, notFoundf("patient %s not found", id)
	}
	if err != nil {
		return Patient{}, fmt.Errorf("patient %s: %w", id, err)
	}
	return p, nil
}

// PatientQuery selects patients.
type PatientQuery struct {
	Ward       vward.WardID // empty for every ward
	Discharged bool         // include discharged stays
}

// ListPatients lists stays by name.
func (r *Registry) ListPatients(ctx context.Context, q PatientQuery) ([]Patient, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+patientColumns+` FROM patients
		WHERE (? = '' OR ward_id = ?) AND (? OR status != 'discharged') ORDER BY name, id`,
		q.Ward, q.Ward, q.Discharged)
	if err != nil {
		return nil, fmt.Errorf("list patients: %w", err)
	}
	defer rows.Close()
	out := []Patient{}
	for rows.Next() {
		p, err := scanPatient(rows)
		if err != nil {
			return nil, fmt.Errorf("list patients: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Patients lists the patients on a ward now (admitted or paused), of every
// ward when wards is empty.
func (r *Registry) Patients(ctx context.Context, wards ...vward.WardID) ([]Patient, error) {
	all, err := r.ListPatients(ctx, PatientQuery{})
	if err != nil {
		return nil, err
	}
	if len(wards) == 0 {
		return all, nil
	}
	allowed := make(map[vward.WardID]bool, len(wards))
	for _, w := range wards {
		allowed[w] = true
	}
	out := all[:0]
	for _, p := range all {
		if allowed[p.Ward] {
			out = append(out, p)
		}
	}
	return out, nil
}

// errUnchanged tells change that there is nothing to write or record.
var errUnchanged = errors.New("unchanged")

// change runs one status change of a patient in a transaction with its
// audit record. apply sees the patient as it was and returns the audit
// detail.
func (r *Registry) change(ctx context.Context, id vward.PatientID, action, reason string, apply func(tx *sql.Tx, p Patient) (string, error)) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, id, err)
	}
	defer tx.Rollback()
	p, err := r.patient(ctx, tx, id)
	if err != nil {
		return err
	}
	detail, err := apply(tx, p)
	if errors.Is(err, errUnchanged) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := audit(ctx, tx, action, patientSubject(string(id)), detail, reason); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s %s: %w", action, id, err)
	}
	return nil
}

func setStatus(ctx context.Context, tx *sql.Tx, id vward.PatientID, status string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE patients SET status = ? WHERE id = ?`, status, id); err != nil {
		return fmt.Errorf("set patient %s %s: %w", id, status, err)
	}
	return nil
}

// Pause marks an admitted patient as in hospital for now. Their devices stay
// bound to them, ready for their return.
func (r *Registry) Pause(ctx context.Context, id vward.PatientID, reason string) error {
	return r.change(ctx, id, "patient.pause", reason, func(tx *sql.Tx, p Patient) (string, error) {
		if p.Status != StatusAdmitted {
			return "", conflictf("pause patient %s: they are %s, not admitted", id, p.Status)
		}
		return "admitted → paused", setStatus(ctx, tx, id, StatusPaused)
	})
}

// Resume takes a paused patient back onto the ward.
func (r *Registry) Resume(ctx context.Context, id vward.PatientID, reason string) error {
	return r.change(ctx, id, "patient.resume", reason, func(tx *sql.Tx, p Patient) (string, error) {
		if p.Status != StatusPaused {
			return "", conflictf("resume patient %s: they are %s, not paused", id, p.Status)
		}
		return "paused → admitted", setStatus(ctx, tx, id, StatusAdmitted)
	})
}

// Discharge ends a patient's stay at time at (now when zero) with an
// outcome from Outcomes. Their devices are unbound at that time, so a
// device handed back and not yet reassigned has its readings dead-lettered
// instead of landing on a discharged patient.
func (r *Registry) Discharge(ctx context.Context, id vward.PatientID, outcome, reason string, at time.Time) error {
	outcome = strings.ToLower(strings.TrimSpace(outcome))
	known := false
	for _, o := range Outcomes {
		known = known || o == outcome
	}
	if !known {
		return invalidf("discharge patient %s: outcome %q is not one of: %s", id, outcome, strings.Join(Outcomes, ", "))
	}
	if at.IsZero() {
		at = now()
	}
	if at.After(now().Add(time.Minute)) {
		return invalidf("discharge patient %s: %s is in the future", id, at.Format(time.RFC3339))
	}
	var unbound []vward.DeviceID
	err := r.change(ctx, id, "patient.discharge", reason, func(tx *sql.Tx, p Patient) (string, error) {
		if p.Status == StatusDischarged {
			return "", conflictf("discharge patient %s: already discharged", id)
		}
		if at.Before(p.Admitted) {
			return "", invalidf("discharge patient %s: %s is before the admission at %s", id, at.Format(time.RFC3339), p.Admitted.Format(time.RFC3339))
		}
		rows, err := tx.QueryContext(ctx, `SELECT device_id FROM device_bindings WHERE patient_id = ? AND bound_to IS NULL`, id)
		if err != nil {
			return "", fmt.Errorf("discharge patient %s: %w", id, err)
		}
		for rows.Next() {
			var d vward.DeviceID
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return "", fmt.Errorf("discharge patient %s: %w", id, err)
			}
			unbound = append(unbound, d)
		}
		rows.Close()
		if _, err := tx.ExecContext(ctx, `UPDATE device_bindings SET bound_to = ? WHERE patient_id = ? AND bound_to IS NULL`, formatTime(at), id); err != nil {
			return "", fmt.Errorf("discharge patient %s: unbind devices: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE patients SET status = 'discharged', discharged_at = ?, outcome = ? WHERE id = ?`, formatTime(at), outcome, id); err != nil {
			return "", fmt.Errorf("discharge patient %s: %w", id, err)
		}
		detail := fmt.Sprintf("outcome %s, at %s", outcome, at.UTC().Format(time.RFC3339))
		for _, d := range unbound {
			detail += ", unbound device " + string(d)
		}
		return detail, nil
	})
	if err != nil {
		return err
	}
	for _, d := range unbound {
		r.refreshDevice(ctx, d)
	}
	return nil
}

// SetSpO2Scale prescribes the NEWS2 SpO2 scale for a patient. Scale 2 is
// only for patients a clinician has judged at risk of hypercapnic
// respiratory failure, so a reason is required and the change is audited
// with who made it. Setting the scale a patient already has changes
// nothing and records nothing.
func (r *Registry) SetSpO2Scale(ctx context.Context, id vward.PatientID, scale int, reason string) error {
	if scale != 1 && scale != 2 {
		return invalidf("set SpO2 scale of %s: the scale is 1 or 2, not %d", id, scale)
	}
	if strings.TrimSpace(reason) == "" {
		return invalidf("set SpO2 scale of %s: give the clinical reason; it is kept in the audit", id)
	}
	return r.change(ctx, id, "patient.spo2_scale", reason, func(tx *sql.Tx, p Patient) (string, error) {
		if p.Status == StatusDischarged {
			return "", conflictf("set SpO2 scale of %s: the patient is discharged", id)
		}
		if p.SpO2Scale == scale {
			return "", errUnchanged
		}
		if _, err := tx.ExecContext(ctx, `UPDATE patients SET spo2_scale = ? WHERE id = ?`, scale, id); err != nil {
			return "", fmt.Errorf("set SpO2 scale of %s: %w", id, err)
		}
		return fmt.Sprintf("SpO2 scale %d → %d", p.SpO2Scale, scale), nil
	})
}

// PatientAudit returns the recorded changes of one patient, newest first.
func (r *Registry) PatientAudit(ctx context.Context, id vward.PatientID, limit int) ([]AuditEntry, error) {
	return r.Audit(ctx, AuditQuery{Subject: patientSubject(string(id)), Limit: limit})
}

// DeviceAudit returns the recorded changes of one device, newest first.
func (r *Registry) DeviceAudit(ctx context.Context, id vward.DeviceID, limit int) ([]AuditEntry, error) {
	return r.Audit(ctx, AuditQuery{Subject: deviceSubject(string(id)), Limit: limit})
}
