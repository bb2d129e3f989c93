// Package devices is the registry of wards, patients, the devices bound to
// them and their credentials. It answers the two questions ingest asks of
// every message — is this device who it says, and whose reading is this —
// from memory, and keeps the truth in the embedded SQL store.
package devices

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
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

	// 2: the patient's stay and its outcome, escalation contacts, a device's
	// serial and Mosquitto hash, the audit of registry changes, and the
	// version counter that tells a running node another process changed
	// the registry (see Registry.Watch).
	`ALTER TABLE patients ADD COLUMN expected_end TEXT NOT NULL DEFAULT '';
	ALTER TABLE patients ADD COLUMN discharged_at TEXT NOT NULL DEFAULT '';
	ALTER TABLE patients ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
	ALTER TABLE patients ADD COLUMN contacts TEXT NOT NULL DEFAULT '[]';
	CREATE INDEX patients_ward ON patients(ward_id);
	-- One person is on at most one virtual ward at a time.
	CREATE UNIQUE INDEX patients_nhs_number_active ON patients(nhs_number)
		WHERE nhs_number != '' AND status != 'discharged';
	ALTER TABLE devices ADD COLUMN secret_mosquitto TEXT NOT NULL DEFAULT '';
	ALTER TABLE devices ADD COLUMN secret_rotated_at TEXT NOT NULL DEFAULT '';
	CREATE INDEX device_bindings_patient ON device_bindings(patient_id);
	CREATE TABLE registry_audit (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		at TEXT NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		subject TEXT NOT NULL,
		detail TEXT NOT NULL DEFAULT '',
		reason TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX registry_audit_subject ON registry_audit(subject, id);
	CREATE TABLE registry_version (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		version INTEGER NOT NULL
	);
	INSERT INTO registry_version (id, version) VALUES (1, 1);
	CREATE TRIGGER wards_version_i AFTER INSERT ON wards BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER wards_version_u AFTER UPDATE ON wards BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER wards_version_d AFTER DELETE ON wards BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER patients_version_i AFTER INSERT ON patients BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER patients_version_u AFTER UPDATE ON patients BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER patients_version_d AFTER DELETE ON patients BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER devices_version_i AFTER INSERT ON devices BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER devices_version_u AFTER UPDATE ON devices BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER devices_version_d AFTER DELETE ON devices BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER device_bindings_version_i AFTER INSERT ON device_bindings BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER device_bindings_version_u AFTER UPDATE ON device_bindings BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;
	CREATE TRIGGER device_bindings_version_d AFTER DELETE ON device_bindings BEGIN UPDATE registry_version SET version = version + 1 WHERE id = 1; END;`,
}

// cachedDevice is what the registry keeps in memory of a registered
// device: its secret's hash and its bindings. They share one map entry
// because ingest asks for both with every message (is it registered, whose
// is it), and at a whole region's rate each lookup in a map of thousands of
// devices is a cache miss or two (docs/design/one-lookup-per-record.md).
type cachedDevice struct {
	secret   [sha256.Size]byte
	bindings []binding
}

// binding attributes a device's readings to a patient between From and To
// (To zero while the binding is current).
type binding struct {
	patient  vward.PatientID
	ward     vward.WardID
	from, to time.Time
}

// Registry is the registry. Its methods are safe for concurrent use.
//
// Authenticate and PatientAt answer from memory. Other processes (the
// `vward wards|patients|devices|users` commands) write the same SQLite file,
// and every write to wards, patients, devices or bindings bumps the
// registry_version row (by trigger, so no writer can forget). A running node
// notices a new version by Watch's periodic check and, at most once a second,
// on an authentication failure or an unattributable reading.
type Registry struct {
	db *sql.DB

	// loading serialises reload and reloadDevice, so that a full reload
	// that read the store before a write cannot swap in its older view
	// after that write's reloadDevice.
	loading sync.Mutex

	mu      sync.RWMutex
	known   map[vward.DeviceID]cachedDevice // every registered device
	version int64                           // registry_version the cache was loaded at

	lastMissCheck atomic.Int64 // unix nanoseconds of the last refresh on a miss
}

// ErrUnassigned is PatientAt's answer for a registered device bound to no
// patient at the time asked about. Every other refusal of the registry is
// of one of vward's error kinds: vward.ErrNotFound, ErrInvalid, ErrConflict.
var ErrUnassigned = errors.New("device is not bound to a patient at that time")

func invalidf(format string, args ...any) error {
	return vward.Errorf(vward.ErrInvalid, format, args...)
}

func conflictf(format string, args ...any) error {
	return vward.Errorf(vward.ErrConflict, format, args...)
}

func notFoundf(format string, args ...any) error {
	return vward.Errorf(vward.ErrNotFound, format, args...)
}

// idPattern keeps identifiers safe in MQTT topics, URLs and line protocol.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidID reports whether s may name a ward, patient or device.
func ValidID(s string) error {
	if !idPattern.MatchString(s) {
		return invalidf("id %q must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit", s)
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

// reload reads the caches afresh in one read transaction, so that the
// version it records matches what it read.
func (r *Registry) reload(ctx context.Context) error {
	r.loading.Lock()
	defer r.loading.Unlock()
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("load registry: %w", err)
	}
	defer tx.Rollback()
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM registry_version WHERE id = 1`).Scan(&version); err != nil {
		return fmt.Errorf("load registry version: %w", err)
	}
	devs := make(map[vward.DeviceID]cachedDevice)
	rows, err := tx.QueryContext(ctx, `SELECT id, secret_sha256 FROM devices`)
	if err != nil {
		return fmt.Errorf("load devices: %w", err)
	}
	for rows.Next() {
		var id, h string
		if err := rows.Scan(&id, &h); err != nil {
			rows.Close()
			return fmt.Errorf("load devices: %w", err)
		}
		devs[vward.DeviceID(id)] = cachedDevice{secret: parseSum(h)}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load devices: %w", err)
	}

	rows, err = tx.QueryContext(ctx, `SELECT b.device_id, b.patient_id, p.ward_id, b.bound_from, COALESCE(b.bound_to, '')
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
		d, ok := devs[vward.DeviceID(dev)]
		if !ok {
			continue // PatientAt refuses a device that is not registered, so its bindings are moot
		}
		d.bindings = append(d.bindings, newBinding(pat, ward, from, to))
		devs[vward.DeviceID(dev)] = d
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load bindings: %w", err)
	}
	r.mu.Lock()
	r.known, r.version = devs, version
	r.mu.Unlock()
	return nil
}

func parseSum(h string) [sha256.Size]byte {
	var sum [sha256.Size]byte
	if b, err := hex.DecodeString(h); err == nil && len(b) == sha256.Size {
		copy(sum[:], b)
	}
	return sum
}

func newBinding(patient, ward, from, to string) binding {
	b := binding{patient: vward.PatientID(patient), ward: vward.WardID(ward)}
	b.from, _ = time.Parse(time.RFC3339Nano, from)
	if to != "" {
		b.to, _ = time.Parse(time.RFC3339Nano, to)
	}
	return b
}

// refreshDevice is reloadDevice after a committed write. The write stands
// whatever happens here, and a secret just made must reach its caller, so a
// failure is not returned: the caches catch up at the next full reload,
// which the write's version bump guarantees.
func (r *Registry) refreshDevice(ctx context.Context, device vward.DeviceID) {
	if err := r.reloadDevice(ctx, device); err != nil {
		r.lastMissCheck.Store(0) // let the next miss reload at once
	}
}

// reloadDevice refreshes one device's cached secret and bindings after this
// process changed them, so that the change applies at once. The recorded
// version is left alone: changes by other processes since the last reload
// are picked up by the next full reload, which the version bump of this
// very write guarantees.
func (r *Registry) reloadDevice(ctx context.Context, device vward.DeviceID) error {
	r.loading.Lock()
	defer r.loading.Unlock()
	var h string
	err := r.db.QueryRowContext(ctx, `SELECT secret_sha256 FROM devices WHERE id = ?`, device).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		r.mu.Lock()
		delete(r.known, device)
		r.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("load device %s: %w", device, err)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT b.patient_id, p.ward_id, b.bound_from, COALESCE(b.bound_to, '')
		FROM device_bindings b JOIN patients p ON p.id = b.patient_id WHERE b.device_id = ?`, device)
	if err != nil {
		return fmt.Errorf("load bindings of %s: %w", device, err)
	}
	defer rows.Close()
	var bs []binding
	for rows.Next() {
		var pat, ward, from, to string
		if err := rows.Scan(&pat, &ward, &from, &to); err != nil {
			return fmt.Errorf("load bindings of %s: %w", device, err)
		}
		bs = append(bs, newBinding(pat, ward, from, to))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load bindings of %s: %w", device, err)
	}
	r.mu.Lock()
	r.known[device] = cachedDevice{secret: parseSum(h), bindings: bs}
	r.mu.Unlock()
	return nil
}

// Authenticate reports whether secret is device's current secret. Secrets
// are 256 random bits, so a fast hash suffices (unlike a person's password)
// and thousands of devices can reconnect at once after an outage.
//
// A refusal first checks, at most once a second, whether another process
// changed the registry, so a device added or re-keyed with the CLI can
// connect at once.
func (r *Registry) Authenticate(device vward.DeviceID, secret []byte) bool {
	if r.authenticate(device, secret) {
		return true
	}
	return r.refreshOnMiss() && r.authenticate(device, secret)
}

func (r *Registry) authenticate(device vward.DeviceID, secret []byte) bool {
	r.mu.RLock()
	d, ok := r.known[device]
	r.mu.RUnlock()
	got := sha256.Sum256(secret)
	return ok && subtle.ConstantTimeCompare(d.secret[:], got[:]) == 1
}

// Known reports whether the device is registered.
func (r *Registry) Known(device vward.DeviceID) bool {
	r.mu.RLock()
	_, ok := r.known[device]
	r.mu.RUnlock()
	return ok
}

// PatientAt says whose reading a device measured at time at. Like
// Authenticate, a miss first checks for changes by another process.
func (r *Registry) PatientAt(device vward.DeviceID, at time.Time) (vward.PatientID, vward.WardID, error) {
	p, w, err := r.patientAt(device, at)
	if err != nil && r.refreshOnMiss() {
		return r.patientAt(device, at)
	}
	return p, w, err
}

func (r *Registry) patientAt(device vward.DeviceID, at time.Time) (vward.PatientID, vward.WardID, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.known[device]
	if !ok {
		return "", "", fmt.Errorf("device %s: %w", device, vward.ErrNotFound)
	}
	for _, b := range d.bindings {
		if !at.Before(b.from) && (b.to.IsZero() || at.Before(b.to)) {
			return b.patient, b.ward, nil
		}
	}
	return "", "", fmt.Errorf("device %s at %s: %w", device, at.Format(time.RFC3339), ErrUnassigned)
}

// now is the registry's clock, in UTC and at the resolution it stores.
func now() time.Time { return time.Now().UTC() }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
