// Package devices is the registry of wards, patients, the devices bound to
// them and their credentials. It answers the two questions ingest asks of
// every message — is this device who it says, and whose reading is this —
// from memory, and keeps the truth in the embedded SQL store.
package devices

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/internal/sqlitedb"
)

var migrations = []string{
	`CREATE TABLE wards (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		pathway TEXT NOT NULL DEFAULT '',
		place TEXT NOT NULL DEFAULT '',
		capacity INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE patients (
		id TEXT PRIMARY KEY,
		ward_id TEXT NOT NULL REFERENCES wards(id),
		nhs_number TEXT NOT NULL DEFAULT '',
		name TEXT NOT NULL,
		born TEXT NOT NULL DEFAULT '',
		status TEXT NOT NULL DEFAULT 'admitted',
		spo2_scale INTEGER NOT NULL DEFAULT 1,
		admitted_at TEXT NOT NULL
	);
	CREATE TABLE devices (
		id TEXT PRIMARY KEY,
		kind TEXT NOT NULL DEFAULT '',
		serial TEXT NOT NULL DEFAULT '',
		secret_sha256 TEXT NOT NULL,
		added_at TEXT NOT NULL
	);
	CREATE TABLE device_bindings (
		device_id TEXT NOT NULL REFERENCES devices(id),
		patient_id TEXT NOT NULL REFERENCES patients(id),
		bound_from TEXT NOT NULL,
		bound_to TEXT
	);
	CREATE INDEX device_bindings_device ON device_bindings(device_id);`,
}

// Ward is a virtual ward.
type Ward struct {
	ID       vward.WardID `json:"id"`
	Name     string       `json:"name"`
	Pathway  string       `json:"pathway"`
	Place    string       `json:"place"`
	Capacity int          `json:"capacity"`
}

// Patient is a patient admitted to a virtual ward.
type Patient struct {
	ID        vward.PatientID `json:"id"`
	Ward      vward.WardID    `json:"ward"`
	Name      string          `json:"name"`
	Status    string          `json:"status"`
	SpO2Scale int             `json:"spo2_scale"`
	Admitted  time.Time       `json:"admitted_at"`
}

// Device is a registered device and its current patient, if bound.
type Device struct {
	ID      vward.DeviceID  `json:"id"`
	Kind    string          `json:"kind"`
	Patient vward.PatientID `json:"patient,omitempty"`
}

// binding attributes a device's readings to a patient between From and To
// (To zero while the binding is current).
type binding struct {
	patient  vward.PatientID
	ward     vward.WardID
	from, to time.Time
}

// Registry is the registry. Its methods are safe for concurrent use.
type Registry struct {
	db *sql.DB

	mu       sync.RWMutex
	secrets  map[vward.DeviceID][sha256.Size]byte
	bindings map[vward.DeviceID][]binding
}

// Errors a caller may test for.
var (
	ErrNotFound   = errors.New("not found")
	ErrUnassigned = errors.New("device is not bound to a patient at that time")
)

// idPattern keeps identifiers safe in MQTT topics, URLs and line protocol.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidID reports whether s may name a ward, patient or device.
func ValidID(s string) error {
	if !idPattern.MatchString(s) {
		return fmt.Errorf("id %q must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit", s)
	}
	return nil
}

// Open migrates the registry's tables in db and loads the hot-path caches.
func Open(ctx context.Context, db *sql.DB) (*Registry, error) {
	if err := sqlitedb.Migrate(ctx, db, "devices", migrations); err != nil {
		return nil, err
	}
	r := &Registry{db: db}
	if err := r.migrateClinicians(ctx); err != nil {
		return nil, err
	}
	if err := r.reload(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Registry) reload(ctx context.Context) error {
	secrets := make(map[vward.DeviceID][sha256.Size]byte)
	rows, err := r.db.QueryContext(ctx, `SELECT id, secret_sha256 FROM devices`)
	if err != nil {
		return fmt.Errorf("load devices: %w", err)
	}
	for rows.Next() {
		var id, h string
		if err := rows.Scan(&id, &h); err != nil {
			rows.Close()
			return fmt.Errorf("load devices: %w", err)
		}
		var sum [sha256.Size]byte
		if b, err := hex.DecodeString(h); err == nil && len(b) == sha256.Size {
			copy(sum[:], b)
		}
		secrets[vward.DeviceID(id)] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load devices: %w", err)
	}

	bindings := make(map[vward.DeviceID][]binding)
	rows, err = r.db.QueryContext(ctx, `SELECT b.device_id, b.patient_id, p.ward_id, b.bound_from, COALESCE(b.bound_to, '')
		FROM device_bindings b JOIN patients p ON p.id = b.patient_id`)
	if err != nil {
		return fmt.Errorf("load bindings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dev, pat, ward, from, to string
		if err := rows.Scan(&dev, &pat, &ward, &from, &to); err != nil {
			return fmt.Errorf("load bindings: %w", err)
		}
		b := binding{patient: vward.PatientID(pat), ward: vward.WardID(ward)}
		b.from, _ = time.Parse(time.RFC3339Nano, from)
		if to != "" {
			b.to, _ = time.Parse(time.RFC3339Nano, to)
		}
		bindings[vward.DeviceID(dev)] = append(bindings[vward.DeviceID(dev)], b)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load bindings: %w", err)
	}
	r.mu.Lock()
	r.secrets, r.bindings = secrets, bindings
	r.mu.Unlock()
	return nil
}

// Authenticate reports whether secret is device's current secret. Secrets
// are 256 random bits, so a fast hash suffices (unlike a person's password)
// and thousands of devices can reconnect at once after an outage.
func (r *Registry) Authenticate(device vward.DeviceID, secret []byte) bool {
	r.mu.RLock()
	want, ok := r.secrets[device]
	r.mu.RUnlock()
	got := sha256.Sum256(secret)
	return ok && subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// Known reports whether the device is registered.
func (r *Registry) Known(device vward.DeviceID) bool {
	r.mu.RLock()
	_, ok := r.secrets[device]
	r.mu.RUnlock()
	return ok
}

// PatientAt says whose reading a device measured at time at.
func (r *Registry) PatientAt(device vward.DeviceID, at time.Time) (vward.PatientID, vward.WardID, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.secrets[device]; !ok {
		return "", "", fmt.Errorf("device %s: %w", device, ErrNotFound)
	}
	for _, b := range r.bindings[device] {
		if !at.Before(b.from) && (b.to.IsZero() || at.Before(b.to)) {
			return b.patient, b.ward, nil
		}
	}
	return "", "", fmt.Errorf("device %s at %s: %w", device, at.Format(time.RFC3339), ErrUnassigned)
}

// AddWard creates or updates a ward.
func (r *Registry) AddWard(ctx context.Context, w Ward) error {
	if err := ValidID(string(w.ID)); err != nil {
		return fmt.Errorf("add ward: %w", err)
	}
	_, err := r.db.ExecContext(ctx, `INSERT INTO wards (id, name, pathway, place, capacity) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET name = excluded.name, pathway = excluded.pathway, place = excluded.place, capacity = excluded.capacity`,
		w.ID, w.Name, w.Pathway, w.Place, w.Capacity)
	if err != nil {
		return fmt.Errorf("add ward %s: %w", w.ID, err)
	}
	return nil
}

// Admit admits a patient to a ward.
func (r *Registry) Admit(ctx context.Context, p Patient) error {
	if err := ValidID(string(p.ID)); err != nil {
		return fmt.Errorf("admit patient: %w", err)
	}
	if p.SpO2Scale == 0 {
		p.SpO2Scale = 1
	}
	if p.Admitted.IsZero() {
		p.Admitted = time.Now()
	}
	_, err := r.db.ExecContext(ctx, `INSERT INTO patients (id, ward_id, name, status, spo2_scale, admitted_at) VALUES (?, ?, ?, 'admitted', ?, ?)`,
		p.ID, p.Ward, p.Name, p.SpO2Scale, p.Admitted.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("admit patient %s to ward %s: %w", p.ID, p.Ward, err)
	}
	return nil
}

// AddDevice registers a device and returns its new secret. The secret is
// shown this once; only its hash is kept.
func (r *Registry) AddDevice(ctx context.Context, id vward.DeviceID, kind string) (string, error) {
	if err := ValidID(string(id)); err != nil {
		return "", fmt.Errorf("add device: %w", err)
	}
	secret, sum, err := newSecret()
	if err != nil {
		return "", fmt.Errorf("add device %s: %w", id, err)
	}
	_, err = r.db.ExecContext(ctx, `INSERT INTO devices (id, kind, secret_sha256, added_at) VALUES (?, ?, ?, ?)`,
		id, kind, hex.EncodeToString(sum[:]), time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return "", fmt.Errorf("add device %s: %w", id, err)
	}
	r.mu.Lock()
	r.secrets[id] = sum
	r.mu.Unlock()
	return secret, nil
}

// Assign binds a device to a patient from a time on, ending any current binding then.
func (r *Registry) Assign(ctx context.Context, device vward.DeviceID, patient vward.PatientID, from time.Time) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	defer tx.Rollback()
	ts := from.UTC().Format(time.RFC3339Nano)
	if _, err := tx.ExecContext(ctx, `UPDATE device_bindings SET bound_to = ? WHERE device_id = ? AND bound_to IS NULL`, ts, device); err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_bindings (device_id, patient_id, bound_from) VALUES (?, ?, ?)`, device, patient, ts); err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("assign %s to %s: %w", device, patient, err)
	}
	return r.reload(ctx)
}

// Wards lists the wards by name.
func (r *Registry) Wards(ctx context.Context) ([]Ward, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, name, pathway, place, capacity FROM wards ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list wards: %w", err)
	}
	defer rows.Close()
	var out []Ward
	for rows.Next() {
		var w Ward
		if err := rows.Scan(&w.ID, &w.Name, &w.Pathway, &w.Place, &w.Capacity); err != nil {
			return nil, fmt.Errorf("list wards: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// Patients lists admitted patients, of every ward when wards is empty.
func (r *Registry) Patients(ctx context.Context, wards ...vward.WardID) ([]Patient, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, ward_id, name, status, spo2_scale, admitted_at FROM patients WHERE status != 'discharged' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list patients: %w", err)
	}
	defer rows.Close()
	allowed := make(map[vward.WardID]bool, len(wards))
	for _, w := range wards {
		allowed[w] = true
	}
	var out []Patient
	for rows.Next() {
		var p Patient
		var admitted string
		if err := rows.Scan(&p.ID, &p.Ward, &p.Name, &p.Status, &p.SpO2Scale, &admitted); err != nil {
			return nil, fmt.Errorf("list patients: %w", err)
		}
		p.Admitted, _ = time.Parse(time.RFC3339Nano, admitted)
		if len(wards) == 0 || allowed[p.Ward] {
			out = append(out, p)
		}
	}
	return out, rows.Err()
}

// Devices lists registered devices with their current patient.
func (r *Registry) Devices() []Device {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Device, 0, len(r.secrets))
	for id := range r.secrets {
		d := Device{ID: id}
		for _, b := range r.bindings[id] {
			if b.to.IsZero() {
				d.Patient = b.patient
			}
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func newSecret() (string, [sha256.Size]byte, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", [sha256.Size]byte{}, fmt.Errorf("make secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	return s, sha256.Sum256([]byte(s)), nil
}
