package node_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/sqlitedb"
	"github.com/vward/vward/web"
)

// cliRegistry opens the running node's SQLite file on a connection of its
// own, as `vward devices …` in another process does.
func cliRegistry(t *testing.T, s *started) *devices.Registry {
	t.Helper()
	var seq int
	var name, file string
	if err := s.node.DB.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil || file == "" {
		t.Fatalf("find the node's database file: %q %v", file, err)
	}
	db, err := sqlitedb.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// eventually polls cond until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A device registered (by the CLI, while the node runs) but bound to no
// patient may connect and publish, but its readings are attributed to no
// one: they land in the dead letter as unassigned.
func TestRegistryUnassignedDeviceIsDeadLettered(t *testing.T) {
	s := start(t)
	cli := cliRegistry(t, s)
	const loose vward.DeviceID = "ox-loose"
	if _, err := cli.AddDevice(devices.WithActor(context.Background(), "cli:test"), loose, "pulse oximeter"); err != nil {
		t.Fatal(err)
	}
	payload := fmt.Sprintf(`{"msg_id":"loose-1","ts":%q,"readings":[{"type":"spo2","value":95}]}`,
		time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
	publish(t, s.broker.URL, "ox-loose-client", vward.ReadingsTopic(loose), []byte(payload))

	var got []ingest.Rejection
	eventually(t, "the unassigned device's reading in the dead letter", func() bool {
		rs, err := s.node.Dead.List(context.Background(), ingest.RejectionQuery{Device: loose, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		got = rs
		return len(rs) > 0
	})
	if len(got) != 1 || got[0].Code != ingest.RejectUnassigned || got[0].MsgID != "loose-1" || string(got[0].Payload) != payload {
		t.Fatalf("dead letters = %+v, want the one reading refused as %s", got, ingest.RejectUnassigned)
	}
	if !strings.Contains(got[0].Reason, "not bound to a patient") {
		t.Errorf("reason = %q", got[0].Reason)
	}
}

// Changes made with the CLI in another process reach the running node: a
// new SpO2 scale changes the board's patient, an admission appears on it.
func TestRegistryCLIChangesReachRunningNode(t *testing.T) {
	s := start(t)
	cli := cliRegistry(t, s)
	ctx := devices.WithActor(context.Background(), "cli:test")
	if err := cli.SetSpO2Scale(ctx, patient, 2, "COPD, hypercapnic; target 88-92%"); err != nil {
		t.Fatal(err)
	}
	if err := cli.Admit(ctx, devices.Patient{ID: "p-cli", Ward: ward, Name: "Admitted By CLI", NHSNumber: "9434765919"}); err != nil {
		t.Fatal(err)
	}
	nurseSession := signIn(t, s.node.URL(), nurse)
	eventually(t, "the board showing SpO2 scale 2", func() bool {
		var v web.PatientView
		return nurseSession.do("GET", "/api/v1/patients/"+string(patient), nil, &v) == http.StatusOK && v.SpO2Scale == 2
	})
	eventually(t, "the board listing the CLI's admission", func() bool {
		var snap web.Snapshot
		nurseSession.do("GET", "/api/v1/patients", nil, &snap)
		for _, p := range snap.Patients {
			if p.Patient == "p-cli" {
				return true
			}
		}
		return false
	})
}

type wardsBody struct {
	Wards []devices.Ward `json:"wards"`
}

type devicesBody struct {
	Devices []devices.Device `json:"devices"`
}

// The registry routes follow the board's rules: no session, no answer; a
// change needs the CSRF token and, except for the SpO2 scale, an admin; a
// clinician sees only their wards, and another ward's patient is not found.
func TestRegistryAPIAccess(t *testing.T) {
	s := start(t)
	base := s.node.URL()
	if err := s.node.Registry.AddClinician(context.Background(), devices.Clinician{Username: "admin", Role: "admin"}, password); err != nil {
		t.Fatal(err)
	}

	for _, rt := range []struct{ method, path string }{
		{"GET", "/api/v1/wards"}, {"GET", "/api/v1/wards/w1/report"}, {"GET", "/api/v1/wards/w1/patients"},
		{"GET", "/api/v1/devices"}, {"GET", "/api/v1/patients/p1/audit"},
		{"POST", "/api/v1/wards"}, {"POST", "/api/v1/patients"}, {"POST", "/api/v1/patients/p1/discharge"},
		{"POST", "/api/v1/patients/p1/spo2-scale"}, {"POST", "/api/v1/devices"}, {"POST", "/api/v1/devices/ox-1/rotate-secret"},
	} {
		req, _ := http.NewRequest(rt.method, base+rt.path, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without a session: %d, want 401", rt.method, rt.path, resp.StatusCode)
		}
	}

	adminSession := signIn(t, base, "admin")
	forged := *adminSession
	forged.csrf = "not-the-token"
	admit := map[string]any{"id": "p-forged", "ward": "w1", "nhs_number": "943 476 5919", "name": "Forged"}
	if code := forged.do("POST", "/api/v1/patients", admit, nil); code != http.StatusForbidden {
		t.Errorf("admit with a wrong CSRF token: %d, want 403", code)
	}
	if code := forged.do("POST", "/api/v1/devices/ox-1/rotate-secret", nil, nil); code != http.StatusForbidden {
		t.Errorf("rotate with a wrong CSRF token: %d, want 403", code)
	}
	if _, err := s.node.Registry.Patient(context.Background(), "p-forged"); err == nil {
		t.Error("the forged admission happened")
	}

	nurseSession := signIn(t, base, nurse)
	viewerSession := signIn(t, base, viewer)
	otherSession := signIn(t, base, otherNurse)

	// Reads are scoped to the user's wards.
	var ws wardsBody
	if code := nurseSession.do("GET", "/api/v1/wards", nil, &ws); code != http.StatusOK || len(ws.Wards) != 1 || ws.Wards[0].ID != ward || ws.Wards[0].Managed != 1 {
		t.Errorf("nurse's wards: %d %+v, want w1 with 1 patient", code, ws.Wards)
	}
	if code := otherSession.do("GET", "/api/v1/wards", nil, &ws); code != http.StatusOK || len(ws.Wards) != 0 {
		t.Errorf("other nurse's wards: %d %+v, want none", code, ws.Wards)
	}
	var rep devices.WardReport
	if code := nurseSession.do("GET", "/api/v1/wards/w1/report?days=7", nil, &rep); code != http.StatusOK || rep.Managed != 1 || len(rep.Flow) != 7 || rep.Admissions != 1 {
		t.Errorf("nurse's report: %d %+v", code, rep)
	}
	var ds devicesBody
	if code := nurseSession.do("GET", "/api/v1/devices", nil, &ds); code != http.StatusOK || len(ds.Devices) != 1 || ds.Devices[0].ID != device || ds.Devices[0].Patient != patient {
		t.Errorf("nurse's devices: %d %+v, want ox-1 on p1", code, ds.Devices)
	}
	if code := otherSession.do("GET", "/api/v1/devices", nil, &ds); code != http.StatusOK || len(ds.Devices) != 0 {
		t.Errorf("other nurse's devices: %d %+v, want none", code, ds.Devices)
	}
	for _, path := range []string{"/api/v1/wards/w1/report", "/api/v1/wards/w1/patients", "/api/v1/patients/p1/audit"} {
		if code := otherSession.do("GET", path, nil, nil); code != http.StatusNotFound {
			t.Errorf("other nurse GET %s: %d, want 404", path, code)
		}
	}
	scale2 := map[string]any{"scale": 2, "reason": "COPD with hypercapnia; target 88-92%"}
	if code := otherSession.do("POST", "/api/v1/patients/p1/spo2-scale", scale2, nil); code != http.StatusNotFound {
		t.Errorf("other nurse setting p1's scale: %d, want 404", code)
	}

	// A viewer changes nothing; a clinician changes only the SpO2 scale.
	for _, who := range []*session{viewerSession, nurseSession} {
		for _, rt := range []struct {
			path string
			body any
		}{
			{"/api/v1/wards", map[string]any{"id": "w9", "name": "New"}},
			{"/api/v1/patients", admit},
			{"/api/v1/patients/p1/pause", nil},
			{"/api/v1/patients/p1/discharge", map[string]any{"outcome": "recovered"}},
			{"/api/v1/devices", map[string]any{"id": "ox-9"}},
			{"/api/v1/devices/ox-1/assign", map[string]any{"patient": "p1"}},
			{"/api/v1/devices/ox-1/unassign", nil},
			{"/api/v1/devices/ox-1/rotate-secret", nil},
		} {
			if code := who.do("POST", rt.path, rt.body, nil); code != http.StatusForbidden {
				t.Errorf("POST %s as a %s: %d, want 403", rt.path, map[*session]string{viewerSession: "viewer", nurseSession: "clinician"}[who], code)
			}
		}
	}
	if code := viewerSession.do("POST", "/api/v1/patients/p1/spo2-scale", scale2, nil); code != http.StatusForbidden {
		t.Errorf("viewer setting the scale: %d, want 403", code)
	}
	if code := nurseSession.do("POST", "/api/v1/patients/p1/spo2-scale", map[string]any{"scale": 2}, nil); code != http.StatusBadRequest {
		t.Errorf("scale without a reason: %d, want 400", code)
	}
	var stay devices.Patient
	if code := nurseSession.do("POST", "/api/v1/patients/p1/spo2-scale", scale2, &stay); code != http.StatusOK || stay.SpO2Scale != 2 {
		t.Fatalf("nurse setting the scale: %d %+v", code, stay)
	}
	// The monitor scores with it at once: no waiting for the registry watch.
	var view web.PatientView
	if nurseSession.do("GET", "/api/v1/patients/p1", nil, &view); view.SpO2Scale != 2 {
		t.Errorf("board's p1 scale = %d right after the change, want 2", view.SpO2Scale)
	}
	var audit struct {
		Audit []devices.AuditEntry `json:"audit"`
	}
	if code := viewerSession.do("GET", "/api/v1/patients/p1/audit", nil, &audit); code != http.StatusOK || len(audit.Audit) == 0 {
		t.Fatalf("viewer reading p1's audit: %d %+v", code, audit)
	}
	if e := audit.Audit[0]; e.Action != "patient.spo2_scale" || e.Actor != nurse || e.Reason != scale2["reason"] {
		t.Errorf("latest audit entry = %+v, want the nurse's scale change with its reason", e)
	}

	// An admin runs the registry: a ward, an admission, a device, a discharge.
	if code := adminSession.do("POST", "/api/v1/wards", map[string]any{"id": "w2", "name": "Heart failure VW", "pathway": "heart-failure", "capacity": 20}, nil); code != http.StatusCreated {
		t.Fatalf("admin adding w2: %d", code)
	}
	bad := map[string]any{"ward": "w2", "nhs_number": "943 476 5918", "name": "Bad Number"}
	if code := adminSession.do("POST", "/api/v1/patients", bad, nil); code != http.StatusBadRequest {
		t.Errorf("admission with a wrong check digit: %d, want 400", code)
	}
	var admitted devices.Patient
	if code := adminSession.do("POST", "/api/v1/patients", map[string]any{"ward": "w2", "nhs_number": "943-476-5919", "name": "Harold Price", "born": "1938-05-01"}, &admitted); code != http.StatusCreated || admitted.ID == "" || admitted.NHSNumber != "9434765919" {
		t.Fatalf("admin admitting to w2: %d %+v", code, admitted)
	}
	if code := adminSession.do("POST", "/api/v1/patients", map[string]any{"ward": "w2", "nhs_number": "9434765919", "name": "Twice"}, nil); code != http.StatusConflict {
		t.Errorf("second stay with the same NHS number: %d, want 409", code)
	}
	var cred struct {
		Device devices.Device `json:"device"`
		Secret string         `json:"secret"`
	}
	if code := adminSession.do("POST", "/api/v1/devices", map[string]any{"id": "bp-7", "kind": "BP cuff", "serial": "A&D-123"}, &cred); code != http.StatusCreated || cred.Secret == "" || !cred.Device.MosquittoReady {
		t.Fatalf("admin adding a device: %d %+v", code, cred)
	}
	if !s.node.Registry.Authenticate("bp-7", []byte(cred.Secret)) {
		t.Error("the secret the API returned does not authenticate")
	}
	if code := adminSession.do("POST", "/api/v1/devices/bp-7/assign", map[string]any{"patient": admitted.ID}, nil); code != http.StatusOK {
		t.Fatalf("admin assigning bp-7: %d", code)
	}
	// The other nurse works on w2: they now see its patient and device.
	if code := otherSession.do("GET", "/api/v1/devices", nil, &ds); code != http.StatusOK || len(ds.Devices) != 1 || ds.Devices[0].ID != "bp-7" {
		t.Errorf("w2 nurse's devices: %d %+v, want bp-7", code, ds.Devices)
	}
	var snap web.Snapshot
	if otherSession.do("GET", "/api/v1/patients", nil, &snap); len(snap.Patients) != 1 || snap.Patients[0].Patient != admitted.ID {
		t.Errorf("w2 nurse's board: %+v, want the new admission", snap.Patients)
	}
	if code := otherSession.do("GET", "/api/v1/wards/w1/report", nil, nil); code != http.StatusNotFound {
		t.Errorf("w2 nurse reading w1's report: %d, want 404", code)
	}
	if code := adminSession.do("POST", "/api/v1/patients/"+string(admitted.ID)+"/discharge", map[string]any{"outcome": "recovered", "reason": "stable"}, &admitted); code != http.StatusOK || admitted.Status != devices.StatusDischarged {
		t.Fatalf("admin discharging: %d %+v", code, admitted)
	}
	if code := otherSession.do("GET", "/api/v1/wards/w2/report", nil, &rep); code != http.StatusOK || rep.Discharges != 1 || rep.Outcomes["recovered"] != 1 || rep.Managed != 0 {
		t.Errorf("w2 report after the discharge: %d %+v", code, rep)
	}
	var all devicesBody // fresh: decoding into a used slice keeps omitted fields
	if code := adminSession.do("GET", "/api/v1/devices", nil, &all); code != http.StatusOK || len(all.Devices) != 2 {
		t.Errorf("admin's devices: %d %+v, want ox-1 and bp-7", code, all.Devices)
	}
	for _, d := range all.Devices {
		if d.ID == "bp-7" && d.Patient != "" {
			t.Errorf("bp-7 still bound to %s after its patient's discharge", d.Patient)
		}
	}
	// The discharged patient leaves the board once the node sees the change.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var snap web.Snapshot
		adminSession.do("GET", "/api/v1/patients", nil, &snap)
		gone := true
		for _, p := range snap.Patients {
			gone = gone && p.Patient != admitted.ID
		}
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("discharged patient %s is still on the board after 10s", admitted.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
