package devices

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
)

// Device is a registered device and, while it is bound, its patient.
type Device struct {
	ID     vward.DeviceID `json:"id"`
	Kind   string         `json:"kind"`
	Serial string         `json:"serial,omitempty"`
	// Patient and Ward name the current binding; BoundFrom is when it began.
	Patient   vward.PatientID `json:"patient,omitempty"`
	Ward      vward.WardID    `json:"ward,omitempty"`
	BoundFrom *time.Time      `json:"bound_from,omitempty"`
	Added     time.Time       `json:"added_at"`
	// SecretRotated is when the secret was last replaced; nil if never.
	SecretRotated *time.Time `json:"secret_rotated_at,omitempty"`
	// MosquittoReady says the registry holds a Mosquitto hash of the
	// current secret, so export-mosquitto can include the device. Devices
	// registered before vward kept one need a rotate-secret first.
	MosquittoReady bool `json:"mosquitto_ready"`
}

// credential is a new device secret and the only forms of it that are kept.
type credential struct {
	secret    string // shown once, never stored
	sha256    string // hex; what Authenticate checks
	mosquitto string // Mosquitto's PBKDF2-SHA512 form, for export
}

func newCredential() (credential, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return credential{}, fmt.Errorf("make secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(s))
	m, err := MosquittoHash(s)
	if err != nil {
		return credential{}, err
	}
	return credential{secret: s, sha256: hex.EncodeToString(sum[:]), mosquitto: m}, nil
}

// AddDevice registers a device and returns its new secret. The secret is
// shown this once; only its hashes are kept.
func (r *Registry) AddDevice(ctx context.Context, id vward.DeviceID, kind string) (string, error) {
	return r.RegisterDevice(ctx, Device{ID: id, Kind: kind})
}

// RegisterDevice registers a device with its kind and serial number and
// returns its new secret, shown this once. Two hashes of the secret are
// kept: SHA-256, which vward checks, and Mosquitto's salted PBKDF2-SHA512,
// which export-mosquitto writes to a Mosquitto password file. Neither
// gives the secret back.
func (r *Registry) RegisterDevice(ctx context.Context, d Device) (string, error) {
	if err := ValidID(string(d.ID)); err != nil {
		return "", fmt.Errorf("add device: %w", err)
	}
	if vward.IsServiceID(string(d.ID)) {
		return "", invalidf("add device %s: ids beginning with %q are vward's own MQTT client ids; a device so named could take over vward's broker session", d.ID, vward.ServiceIDPrefix)
	}
	d.Kind, d.Serial = strings.TrimSpace(d.Kind), strings.TrimSpace(d.Serial)
	c, err := newCredential()
	if err != nil {
		return "", fmt.Errorf("add device %s: %w", d.ID, err)
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("add device %s: %w", d.ID, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE id = ?`, d.ID).Scan(&n); err != nil {
		return "", fmt.Errorf("add device %s: %w", d.ID, err)
	}
	if n > 0 {
		return "", conflictf("add device %s: already registered; use rotate-secret for a new secret", d.ID)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO devices (id, kind, serial, secret_sha256, secret_mosquitto, added_at) VALUES (?, ?, ?, ?, ?, ?)`,
		d.ID, d.Kind, d.Serial, c.sha256, c.mosquitto, formatTime(now()))
	if err != nil {
		return "", fmt.Errorf("add device %s: %w", d.ID, err)
	}
	if err := audit(ctx, tx, "device.add", deviceSubject(string(d.ID)), fmt.Sprintf("kind %q, serial %q", d.Kind, d.Serial), ""); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("add device %s: %w", d.ID, err)
	}
	r.refreshDevice(ctx, d.ID)
	return c.secret, nil
}

// RotateSecret gives a device a new secret, returned this once; the old one
// stops working at once in this process, within Watch's interval in a
// running node, and in Mosquitto once the password file is exported again
// and the broker reloaded.
func (r *Registry) RotateSecret(ctx context.Context, id vward.DeviceID, reason string) (string, error) {
	c, err := newCredential()
	if err != nil {
		return "", fmt.Errorf("rotate secret of %s: %w", id, err)
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("rotate secret of %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE devices SET secret_sha256 = ?, secret_mosquitto = ?, secret_rotated_at = ? WHERE id = ?`,
		c.sha256, c.mosquitto, formatTime(now()), id)
	if err != nil {
		return "", fmt.Errorf("rotate secret of %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", notFoundf("device %s not found", id)
	}
	if err := audit(ctx, tx, "device.rotate_secret", deviceSubject(string(id)), "", reason); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("rotate secret of %s: %w", id, err)
	}
	r.refreshDevice(ctx, id)
	return c.secret, nil
}

// storedBinding is a binding row as kept.
type storedBinding struct {
	rowid    int64
	patient  vward.PatientID
	from, to time.Time // to zero while current
}

func deviceBindings(ctx context.Context, tx *sql.Tx, device vward.DeviceID) ([]storedBinding, error) {
	rows, err := tx.QueryContext(ctx, `SELECT rowid, patient_id, bound_from, COALESCE(bound_to, '') FROM device_bindings WHERE device_id = ?`, device)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedBinding
	for rows.Next() {
		var b storedBinding
		var from, to string
		if err := rows.Scan(&b.rowid, &b.patient, &from, &to); err != nil {
			return nil, err
		}
		b.from = parseTime(from)
		if to != "" {
			b.to = parseTime(to)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// Assign binds a device to a patient from a time on (now when zero), ending
// any current binding then. Readings are attributed by when they were
// measured, so the time may lie in the past to take in readings a device
// buffered before it was assigned; it may not reach back into an earlier
// binding.
func (r *Registry) Assign(ctx context.Context, device vward.DeviceID, patient vward.PatientID, from time.Time) error {
	if from.IsZero() {
		from = now()
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE id = ?`, device).Scan(&n); err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	if n == 0 {
		return notFoundf("device %s not found", device)
	}
	p, err := r.patient(ctx, tx, patient)
	if err != nil {
		return err
	}
	if p.Status == StatusDischarged {
		return conflictf("assign %s to %s: the patient is discharged", device, patient)
	}
	bs, err := deviceBindings(ctx, tx, device)
	if err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	var current *storedBinding
	for i, b := range bs {
		switch {
		case b.to.IsZero():
			current = &bs[i]
		case b.to.After(from):
			return invalidf("assign %s to %s from %s: the device was bound to %s until %s; start after that",
				device, patient, from.UTC().Format(time.RFC3339), b.patient, b.to.UTC().Format(time.RFC3339))
		}
	}
	detail := "from " + from.UTC().Format(time.RFC3339)
	if current != nil {
		if current.patient == patient {
			return nil // already bound to this patient
		}
		if from.Before(current.from) {
			return invalidf("assign %s to %s from %s: its binding to %s began later, at %s",
				device, patient, from.UTC().Format(time.RFC3339), current.patient, current.from.UTC().Format(time.RFC3339))
		}
		if _, err := tx.ExecContext(ctx, `UPDATE device_bindings SET bound_to = ? WHERE rowid = ?`, formatTime(from), current.rowid); err != nil {
			return fmt.Errorf("assign %s to %s: %w", device, patient, err)
		}
		detail += ", ending its binding to " + string(current.patient)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_bindings (device_id, patient_id, bound_from) VALUES (?, ?, ?)`, device, patient, formatTime(from)); err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	if err := audit(ctx, tx, "device.assign", deviceSubject(string(device)), "to patient "+string(patient)+", "+detail, ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	r.refreshDevice(ctx, device)
	return nil
}

// Unassign ends a device's current binding at time at (now when zero).
// Its readings measured from then on are refused as unassigned.
func (r *Registry) Unassign(ctx context.Context, device vward.DeviceID, at time.Time) error {
	if at.IsZero() {
		at = now()
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("unassign %s: %w", device, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM devices WHERE id = ?`, device).Scan(&n); err != nil {
		return fmt.Errorf("unassign %s: %w", device, err)
	}
	if n == 0 {
		return notFoundf("device %s not found", device)
	}
	bs, err := deviceBindings(ctx, tx, device)
	if err != nil {
		return fmt.Errorf("unassign %s: %w", device, err)
	}
	var current *storedBinding
	for i := range bs {
		if bs[i].to.IsZero() {
			current = &bs[i]
		}
	}
	if current == nil {
		return conflictf("unassign %s: it is not bound to a patient", device)
	}
	if at.Before(current.from) {
		return invalidf("unassign %s at %s: its binding began later, at %s", device, at.UTC().Format(time.RFC3339), current.from.UTC().Format(time.RFC3339))
	}
	if _, err := tx.ExecContext(ctx, `UPDATE device_bindings SET bound_to = ? WHERE rowid = ?`, formatTime(at), current.rowid); err != nil {
		return fmt.Errorf("unassign %s: %w", device, err)
	}
	detail := fmt.Sprintf("from patient %s at %s", current.patient, at.UTC().Format(time.RFC3339))
	if err := audit(ctx, tx, "device.unassign", deviceSubject(string(device)), detail, ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("unassign %s: %w", device, err)
	}
	r.refreshDevice(ctx, device)
	return nil
}

// Devices lists registered devices, by id, with their current binding.
func (r *Registry) Devices(ctx context.Context) ([]Device, error) {
	return r.devices(ctx, "")
}

// Device returns one device.
func (r *Registry) Device(ctx context.Context, id vward.DeviceID) (Device, error) {
	ds, err := r.devices(ctx, id)
	if err != nil {
		return Device{}, err
	}
	if len(ds) == 0 {
		return Device{}, notFoundf("device %s not found", id)
	}
	return ds[0], nil
}

func (r *Registry) devices(ctx context.Context, only vward.DeviceID) ([]Device, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT d.id, d.kind, d.serial, d.added_at, d.secret_rotated_at, d.secret_mosquitto != '',
			COALESCE(b.patient_id, ''), COALESCE(p.ward_id, ''), COALESCE(b.bound_from, '')
		FROM devices d
		LEFT JOIN device_bindings b ON b.device_id = d.id AND b.bound_to IS NULL
		LEFT JOIN patients p ON p.id = b.patient_id
		WHERE (? = '' OR d.id = ?)
		ORDER BY d.id`, only, only)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	defer rows.Close()
	out := []Device{}
	for rows.Next() {
		var d Device
		var added, rotated, from string
		if err := rows.Scan(&d.ID, &d.Kind, &d.Serial, &added, &rotated, &d.MosquittoReady, &d.Patient, &d.Ward, &from); err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		d.Added = parseTime(added)
		if rotated != "" {
			t := parseTime(rotated)
			d.SecretRotated = &t
		}
		if from != "" {
			t := parseTime(from)
			d.BoundFrom = &t
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
