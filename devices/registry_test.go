package devices_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/sqlitedb"
)

// openAt opens a registry on the SQLite file at path, as a separate process
// would: its own connection, its own caches.
func openAt(t testing.TB, path string) *devices.Registry {
	t.Helper()
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r, err := devices.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func openTemp(t *testing.T) (*devices.Registry, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vward.db")
	return openAt(t, path), path
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRegistryPatientStay(t *testing.T) {
	r, _ := openTemp(t)
	ctx := devices.WithActor(context.Background(), "matron")
	must(t, r.AddWard(ctx, devices.Ward{ID: "w1", Name: "Respiratory VW", Pathway: "Respiratory", Place: "Kent", Capacity: 4}))
	if err := r.AddWard(ctx, devices.Ward{ID: "w2", Name: "x", Pathway: "cardiology-ish"}); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("unknown pathway: %v, want ErrInvalid", err)
	}
	admitted := time.Now().Add(-48 * time.Hour).UTC()
	p := devices.Patient{ID: "p1", Ward: "w1", NHSNumber: "943 476 5919", Name: "Ada Whitfield", Born: "1941-03-02",
		Admitted: admitted, ExpectedEnd: time.Now().Add(5 * 24 * time.Hour).Format(devices.DateLayout),
		Contacts: []devices.Contact{{Name: "Jo Whitfield", Role: "daughter", Phone: "07700 900123"}}}
	must(t, r.Admit(ctx, p))
	got, err := r.Patient(ctx, "p1")
	must(t, err)
	if got.NHSNumber != "9434765919" || got.Status != devices.StatusAdmitted || got.SpO2Scale != 1 || len(got.Contacts) != 1 || got.Born != "1941-03-02" {
		t.Errorf("patient = %+v", got)
	}

	// The same person cannot be on two wards at once, nor an id reused.
	if err := r.Admit(ctx, devices.Patient{ID: "p2", Ward: "w1", NHSNumber: "9434765919", Name: "Ada W"}); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("second stay with the same NHS number: %v, want ErrConflict", err)
	}
	if err := r.Admit(ctx, devices.Patient{ID: "p1", Ward: "w1", Name: "Other"}); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("reused id: %v, want ErrConflict", err)
	}
	if err := r.Admit(ctx, devices.Patient{ID: "p3", Ward: "nope", Name: "Other"}); !errors.Is(err, vward.ErrNotFound) {
		t.Errorf("unknown ward: %v, want ErrNotFound", err)
	}
	if err := r.Admit(ctx, devices.Patient{ID: "p3", Ward: "w1", Name: "Other", NHSNumber: "9434765918"}); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("bad NHS number: %v, want ErrInvalid", err)
	}

	// Scale 2 needs a reason, and is audited with who and why.
	if err := r.SetSpO2Scale(ctx, "p1", 2, " "); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("scale without a reason: %v, want ErrInvalid", err)
	}
	must(t, r.SetSpO2Scale(devices.WithActor(context.Background(), "dr-patel"), "p1", 2, "COPD with type 2 respiratory failure; target 88-92%"))
	must(t, r.Pause(ctx, "p1", "admitted to QEQM with a fall"))
	if err := r.Pause(ctx, "p1", ""); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("pause twice: %v, want ErrConflict", err)
	}
	must(t, r.Resume(ctx, "p1", "back home"))

	secret, err := r.RegisterDevice(ctx, devices.Device{ID: "ox-1", Kind: "pulse oximeter", Serial: "SN-1"})
	must(t, err)
	if !r.Authenticate("ox-1", []byte(secret)) {
		t.Fatal("new device's secret refused")
	}
	must(t, r.Assign(ctx, "ox-1", "p1", admitted))
	if pid, ward, err := r.PatientAt("ox-1", time.Now()); err != nil || pid != "p1" || ward != "w1" {
		t.Fatalf("PatientAt = %s %s %v", pid, ward, err)
	}

	// Discharge ends the stay and unbinds its devices.
	if err := r.Discharge(ctx, "p1", "better", "", time.Time{}); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("unknown outcome: %v, want ErrInvalid", err)
	}
	must(t, r.Discharge(ctx, "p1", "recovered", "obs stable 72h", time.Time{}))
	if _, _, err := r.PatientAt("ox-1", time.Now().Add(time.Second)); !errors.Is(err, devices.ErrUnassigned) {
		t.Errorf("after discharge: %v, want ErrUnassigned", err)
	}
	if pid, _, err := r.PatientAt("ox-1", time.Now().Add(-time.Hour)); err != nil || pid != "p1" {
		t.Errorf("a reading measured before the discharge still belongs to p1: %s %v", pid, err)
	}
	if err := r.Assign(ctx, "ox-1", "p1", time.Time{}); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("assign to a discharged patient: %v, want ErrConflict", err)
	}
	if ps, _ := r.Patients(ctx); len(ps) != 0 {
		t.Errorf("Patients after discharge = %+v, want none", ps)
	}
	// A readmission is a new stay; the NHS number is free again.
	must(t, r.Admit(ctx, devices.Patient{ID: "p1-again", Ward: "w1", NHSNumber: "9434765919", Name: "Ada Whitfield"}))

	entries, err := r.PatientAudit(ctx, "p1", 0)
	must(t, err)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	want := []string{"patient.discharge", "patient.resume", "patient.pause", "patient.spo2_scale", "patient.admit"}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Fatalf("audit actions = %v, want %v", actions, want)
	}
	scale := entries[3]
	if scale.Actor != "dr-patel" || !strings.Contains(scale.Reason, "type 2 respiratory failure") || scale.Detail != "SpO2 scale 1 → 2" {
		t.Errorf("scale audit = %+v, want who, why and what", scale)
	}
	if entries[0].Actor != "matron" || !strings.Contains(entries[0].Detail, "outcome recovered") || !strings.Contains(entries[0].Detail, "unbound device ox-1") {
		t.Errorf("discharge audit = %+v", entries[0])
	}
	for _, e := range entries {
		if strings.Contains(e.Detail, "Whitfield") || strings.Contains(e.Detail, "9434765919") {
			t.Errorf("audit detail %q names the patient", e.Detail)
		}
	}
}

func TestRegistryAssignKeepsBindingsApart(t *testing.T) {
	r, _ := openTemp(t)
	ctx := context.Background()
	must(t, r.AddWard(ctx, devices.Ward{ID: "w1", Name: "W"}))
	must(t, r.Admit(ctx, devices.Patient{ID: "a", Ward: "w1", Name: "A"}))
	must(t, r.Admit(ctx, devices.Patient{ID: "b", Ward: "w1", Name: "B"}))
	_, err := r.AddDevice(ctx, "d", "hub")
	must(t, err)
	t0 := time.Now().Add(-10 * time.Hour)
	must(t, r.Assign(ctx, "d", "a", t0))
	if err := r.Assign(ctx, "d", "b", t0.Add(-time.Hour)); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("reassign before the current binding began: %v, want ErrInvalid", err)
	}
	must(t, r.Assign(ctx, "d", "b", t0.Add(2*time.Hour)))
	if pid, _, _ := r.PatientAt("d", t0.Add(time.Hour)); pid != "a" {
		t.Errorf("reading at t0+1h → %s, want a", pid)
	}
	if pid, _, _ := r.PatientAt("d", t0.Add(3*time.Hour)); pid != "b" {
		t.Errorf("reading at t0+3h → %s, want b", pid)
	}
	must(t, r.Unassign(ctx, "d", t0.Add(4*time.Hour)))
	if err := r.Unassign(ctx, "d", time.Time{}); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("unassign twice: %v, want ErrConflict", err)
	}
	if err := r.Assign(ctx, "d", "a", t0.Add(3*time.Hour)); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("assign back into the ended binding to b: %v, want ErrInvalid", err)
	}
	if _, _, err := r.PatientAt("d", t0.Add(5*time.Hour)); !errors.Is(err, devices.ErrUnassigned) {
		t.Errorf("after unassign: %v, want ErrUnassigned", err)
	}
	ds, err := r.Devices(ctx)
	must(t, err)
	if len(ds) != 1 || ds[0].Patient != "" || !ds[0].MosquittoReady {
		t.Errorf("devices = %+v, want d unbound and exportable", ds)
	}
}

// A second process (the CLI) writing the same SQLite file: the running
// registry sees its changes through Refresh, a miss, or Watch.
func TestRegistryNoticesAnotherProcess(t *testing.T) {
	running, path := openTemp(t)
	cli := openAt(t, path)
	ctx := context.Background()

	changes := make(chan struct{}, 16)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- running.Watch(wctx, 20*time.Millisecond, nil, func() { changes <- struct{}{} })
	}()
	stopWatch := sync.OnceFunc(func() { cancel(); <-done })
	defer stopWatch()

	must(t, cli.AddWard(ctx, devices.Ward{ID: "w1", Name: "W"}))
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not report the CLI's new ward")
	}

	secret, err := cli.AddDevice(ctx, "ox-9", "oximeter")
	must(t, err)
	// A refused login checks for changes first, so a device registered by
	// the CLI can connect at once (or, if a check ran within the last
	// second, as soon as Watch reloads).
	deadline := time.Now().Add(10 * time.Second)
	for !running.Authenticate("ox-9", []byte(secret)) {
		if time.Now().After(deadline) {
			t.Fatal("the running registry never accepted the device the CLI added")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Without the watcher, an explicit Refresh picks up a rotation.
	stopWatch()
	newSecret, err := cli.RotateSecret(ctx, "ox-9", "lost")
	must(t, err)
	changed, err := running.Refresh(ctx)
	must(t, err)
	if !changed {
		t.Error("Refresh after the CLI rotated a secret reported no change")
	}
	if running.Authenticate("ox-9", []byte(secret)) {
		t.Error("old secret still accepted after rotation and refresh")
	}
	if !running.Authenticate("ox-9", []byte(newSecret)) {
		t.Error("new secret refused")
	}
}

func TestRegistryWatchSkipsUnchanged(t *testing.T) {
	r, _ := openTemp(t)
	var calls atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	must(t, r.Watch(ctx, 10*time.Millisecond, nil, func() { calls.Add(1) }))
	if n := calls.Load(); n != 0 {
		t.Errorf("Watch called back %d times with nothing changed", n)
	}
}

func TestWardReport(t *testing.T) {
	r, _ := openTemp(t)
	ctx := context.Background()
	must(t, r.AddWard(ctx, devices.Ward{ID: "w1", Name: "Frailty", Pathway: "frailty", Capacity: 10}))
	loc := time.UTC
	now := time.Date(2026, 11, 24, 15, 0, 0, 0, loc)
	day := func(d int, h int) time.Time { return time.Date(2026, 11, d, h, 0, 0, 0, loc) }
	admit := func(id string, at time.Time, end string) {
		t.Helper()
		must(t, r.Admit(ctx, devices.Patient{ID: vward.PatientID(id), Ward: "w1", Name: id, Admitted: at, ExpectedEnd: end}))
	}
	admit("old", day(1, 9), "")            // before the window, still on the ward
	admit("a", day(20, 9), "2026-11-23")   // past expected end
	admit("b", day(20, 10), "")            // discharged after 2 days
	admit("c", day(22, 12), "")            // discharged after 1 day, to hospital
	admit("d", day(24, 8), "2026-11-30")   // today, paused
	admit("gone", day(2, 8), "2026-11-10") // discharged before the window
	must(t, r.Discharge(ctx, "gone", "recovered", "", day(5, 8)))
	must(t, r.Discharge(ctx, "b", "recovered", "", day(22, 10)))
	must(t, r.Discharge(ctx, "c", "hospital", "", day(23, 12)))
	must(t, r.Pause(ctx, "d", ""))

	rep, err := r.WardReport(ctx, "w1", 7, now, loc)
	must(t, err)
	if rep.Managed != 3 || rep.Admitted != 2 || rep.Paused != 1 || rep.Capacity != 10 || rep.Occupancy == nil || *rep.Occupancy != 0.3 {
		t.Errorf("now: managed %d admitted %d paused %d capacity %d occupancy %v", rep.Managed, rep.Admitted, rep.Paused, rep.Capacity, rep.Occupancy)
	}
	if rep.PastExpectedEnd != 1 {
		t.Errorf("past expected end = %d, want 1 (a)", rep.PastExpectedEnd)
	}
	if len(rep.Flow) != 7 || rep.Flow[0].Date != "2026-11-18" || rep.Flow[6].Date != "2026-11-24" {
		t.Fatalf("flow days = %+v", rep.Flow)
	}
	flow := map[string]devices.DayFlow{}
	for _, f := range rep.Flow {
		flow[f.Date] = f
	}
	if flow["2026-11-20"].Admissions != 2 || flow["2026-11-22"].Admissions != 1 || flow["2026-11-24"].Admissions != 1 {
		t.Errorf("admissions per day = %+v", rep.Flow)
	}
	if flow["2026-11-22"].Discharges != 1 || flow["2026-11-23"].Discharges != 1 || rep.Discharges != 2 || rep.Admissions != 4 {
		t.Errorf("discharges per day = %+v, totals %d/%d", rep.Flow, rep.Admissions, rep.Discharges)
	}
	if rep.Outcomes["recovered"] != 1 || rep.Outcomes["hospital"] != 1 || len(rep.Outcomes) != 2 {
		t.Errorf("outcomes = %v, want the window's discharges only", rep.Outcomes)
	}
	if s := rep.LengthOfStay; s.Count != 2 || s.MeanDays != 1.5 || s.MedianDays != 1.5 || s.MaxDays != 2 {
		t.Errorf("length of stay = %+v, want 2 stays of 1 and 2 days", s)
	}
	if rep.CurrentStay.Count != 3 {
		t.Errorf("current stay = %+v", rep.CurrentStay)
	}
	if _, err := r.WardReport(ctx, "nope", 7, now, loc); !errors.Is(err, vward.ErrNotFound) {
		t.Errorf("unknown ward: %v", err)
	}
}

// The hash vward stores is the one Mosquitto's own tool makes: both verify
// with the same check, and mosquitto_passwd's line verifies.
func TestMosquittoHashFormat(t *testing.T) {
	h, err := devices.MosquittoHash("s3cret-device")
	must(t, err)
	parts := strings.Split(h, "$")
	if len(parts) != 5 || parts[1] != "7" || parts[2] != "101" || len(parts[3]) != 16 || len(parts[4]) != 88 {
		t.Fatalf("hash %q is not $7$101$<16 base64>$<88 base64>", h)
	}
	if !devices.CheckMosquittoHash(h, "s3cret-device") || devices.CheckMosquittoHash(h, "s3cret-devicE") {
		t.Error("CheckMosquittoHash disagrees with MosquittoHash")
	}
	file := testenv.PasswordFile(t, map[string]string{"dev": "from-mosquitto"})
	b, err := os.ReadFile(file)
	must(t, err)
	line := strings.TrimSpace(string(b))
	theirs, ok := strings.CutPrefix(line, "dev:")
	if !ok || !strings.HasPrefix(theirs, "$7$101$") {
		t.Fatalf("mosquitto_passwd wrote %q", line)
	}
	if !devices.CheckMosquittoHash(theirs, "from-mosquitto") {
		t.Errorf("mosquitto_passwd's hash %q does not verify with vward's PBKDF2", theirs)
	}
}

func TestMosquittoExportSkipsDevicesWithoutHash(t *testing.T) {
	r, path := openTemp(t)
	ctx := context.Background()
	_, err := r.AddDevice(ctx, "new", "hub")
	must(t, err)
	_, err = r.AddDevice(ctx, "legacy", "hub")
	must(t, err)
	// As a device registered before vward kept Mosquitto hashes.
	db, err := sqlitedb.Open(path)
	must(t, err)
	defer db.Close()
	_, err = db.Exec(`UPDATE devices SET secret_mosquitto = '' WHERE id = 'legacy'`)
	must(t, err)

	out, err := r.ExportMosquittoPasswd(ctx, "vward", "svc-pw")
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(out.Passwd)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "new:$7$") {
		t.Errorf("devices' passwd = %q, want the one device with a hash", out.Passwd)
	}
	lines = strings.Split(strings.TrimSpace(string(out.ServicePasswd)), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "vward:$7$") || !devices.CheckMosquittoHash(strings.TrimPrefix(lines[0], "vward:"), "svc-pw") {
		t.Errorf("service passwd = %q, want vward's account alone", out.ServicePasswd)
	}
	if out.Devices != 1 || len(out.Skipped) != 1 || out.Skipped[0] != "legacy" {
		t.Errorf("export = %d devices, skipped %v", out.Devices, out.Skipped)
	}
	if _, err := r.ExportMosquittoPasswd(ctx, "new", "pw"); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("service account named like a device: %v, want ErrConflict", err)
	}
	if _, err := r.ExportMosquittoPasswd(ctx, "vward", ""); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("no service password: %v, want ErrInvalid", err)
	}

	// vward's own client ids begin with "vward"; no device id may, in any
	// case, and one registered before that rule is not exported.
	for _, id := range []vward.DeviceID{"vward-ingest", "VWARD-1", "vward"} {
		if _, err := r.AddDevice(ctx, id, "oximeter"); !errors.Is(err, vward.ErrInvalid) || !strings.Contains(err.Error(), "vward's own MQTT client ids") {
			t.Errorf("add device %s: %v, want ErrInvalid naming the reserved prefix", id, err)
		}
	}
	_, err = db.Exec(`INSERT INTO devices (id, kind, serial, secret_sha256, secret_mosquitto, added_at) SELECT 'vward-old', kind, serial, secret_sha256, secret_mosquitto, added_at FROM devices WHERE id = 'new'`)
	must(t, err)
	if _, err := r.ExportMosquittoPasswd(ctx, "vward", "svc-pw"); !errors.Is(err, vward.ErrConflict) || !strings.Contains(err.Error(), "vward-old") {
		t.Errorf("export with device vward-old: %v, want ErrConflict naming it", err)
	}
}

// BenchmarkPatientAtFleet attributes readings as ingest does, once a
// message (its readings share a time), across a region's fleet of 12,700
// devices each bound to its own patient: at this size the registry's
// records are out of the CPU's caches, as in production. The fleet is
// written in one transaction and read back by a second registry, as a node
// opens one.
func BenchmarkPatientAtFleet(b *testing.B) {
	const fleet = 12700
	path := filepath.Join(b.TempDir(), "vward.db")
	db, err := sqlitedb.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := devices.Open(context.Background(), db); err != nil { // creates the schema
		b.Fatal(err)
	}
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	exec := func(q string, args ...any) {
		if _, err := tx.Exec(q, args...); err != nil {
			b.Fatal(err)
		}
	}
	exec(`INSERT INTO wards (id, name) VALUES ('w1', 'Bench')`)
	ids := make([]vward.DeviceID, fleet)
	for i := range ids {
		ids[i] = vward.DeviceID(fmt.Sprintf("dev-%05d", i))
		patient := fmt.Sprintf("p%05d", i)
		exec(`INSERT INTO patients (id, ward_id, name, admitted_at) VALUES (?, 'w1', ?, ?)`, patient, patient, from)
		exec(`INSERT INTO devices (id, secret_sha256, added_at) VALUES (?, '', ?)`, ids[i], from)
		exec(`INSERT INTO device_bindings (device_id, patient_id, bound_from) VALUES (?, ?, ?)`, ids[i], patient, from)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	db.Close()
	r := openAt(b, path)
	at := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := ids[(i*7919)%fleet] // a stride, not the order they were added in
		i++
		if _, _, err := r.PatientAt(d, at); err != nil {
			b.Fatal(err)
		}
	}
}
