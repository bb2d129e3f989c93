package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/web"
)

// openAlerts returns the open alerts of the patient by condition.
func openAlerts(t *testing.T, s *session, p vward.PatientID) map[alerting.Condition]alerting.Alert {
	t.Helper()
	var as struct {
		Alerts []alerting.Alert `json:"alerts"`
	}
	if code := s.do("GET", "/api/v1/alerts?state=open&patient="+string(p), nil, &as); code != 200 {
		t.Fatalf("GET /api/v1/alerts: %d", code)
	}
	out := map[alerting.Condition]alerting.Alert{}
	for _, a := range as.Alerts {
		out[a.Condition] = a
	}
	return out
}

// waitOpen waits for the patient's open alert of condition c.
func waitOpen(t *testing.T, s *session, p vward.PatientID, c alerting.Condition, what string) alerting.Alert {
	t.Helper()
	var a alerting.Alert
	eventually(t, what, func() bool {
		got, ok := openAlerts(t, s, p)[c]
		a = got
		return ok
	})
	return a
}

// lastReason is the reason of the alert's newest audit entry.
func lastReason(t *testing.T, s *session, id int64) string {
	t.Helper()
	var a web.AlertWithAudit
	if code := s.do("GET", fmt.Sprintf("/api/v1/alerts/%d", id), nil, &a); code != 200 || len(a.Audit) == 0 {
		t.Fatalf("GET alert %d: %d, %d audit entries", id, code, len(a.Audit))
	}
	return a.Audit[len(a.Audit)-1].Reason
}

// Each registry change reaches the alerts at once, over REST and from the
// CLI in another process: pausing a patient withdraws their overdue and
// device alerts and raises nothing while they are in hospital; resuming
// restarts the clocks; unassigning a device withdraws its alert; a
// discharge from the CLI takes the patient off the board and withdraws
// what was open for them. Each withdrawal says who changed what and why.
func TestRegistryChangesTakeEffectAtOnce(t *testing.T) {
	const silence = 2 * time.Second
	s := start(t, func(c *node.Config) {
		c.Alerting = alerting.Config{Tick: 100 * time.Millisecond, Policy: alerting.Policy{
			DeviceSilence: silence,
			Overdue:       alerting.Intervals{TwelveHourly: 3 * time.Second, FourToSixHourly: 3 * time.Second, Hourly: 3 * time.Second, Continuous: 3 * time.Second},
		}}
	})
	if err := s.node.Registry.AddClinician(context.Background(), devices.Clinician{Username: "admin", Role: "admin"}, password); err != nil {
		t.Fatal(err)
	}
	admin := signIn(t, s.node.URL(), "admin")
	nurseS := signIn(t, s.node.URL(), nurse)

	publish(t, s.broker.URL, "dev-ox-1", vward.ReadingsTopic(device), vitalsMessage("m1", time.Now(), 16, 97, 120, 70, "A", 37.0))
	eventually(t, "overdue and device_offline alerts", func() bool {
		as := openAlerts(t, nurseS, patient)
		_, overdue := as[alerting.Overdue]
		_, offline := as[alerting.DeviceOffline]
		return overdue && offline
	})
	before := openAlerts(t, nurseS, patient)

	if code := admin.do("POST", "/api/v1/patients/p1/pause", map[string]string{"reason": "admitted to hospital"}, nil); code != 200 {
		t.Fatalf("pause: %d", code)
	}
	if as := openAlerts(t, nurseS, patient); len(as) != 0 {
		t.Fatalf("open alerts as the pause is answered: %v, want none", as)
	}
	for _, c := range []alerting.Condition{alerting.Overdue, alerting.DeviceOffline} {
		r := lastReason(t, nurseS, before[c].ID)
		if !strings.Contains(r, "withdrawn: monitoring paused: patient.pause") || !strings.Contains(r, "by admin") || !strings.Contains(r, "admitted to hospital") {
			t.Errorf("%s withdrawn with reason %q", c, r)
		}
	}
	time.Sleep(3 * silence)
	if as := openAlerts(t, nurseS, patient); len(as) != 0 {
		t.Fatalf("open alerts while paused: %v, want none", as)
	}

	resumed := time.Now()
	if code := admin.do("POST", "/api/v1/patients/p1/resume", map[string]string{"reason": "home again"}, nil); code != 200 {
		t.Fatalf("resume: %d", code)
	}
	offline := waitOpen(t, nurseS, patient, alerting.DeviceOffline, "device_offline again after resuming")
	if offline.RaisedAt.Sub(resumed) < silence-200*time.Millisecond {
		t.Errorf("device_offline raised %s after resuming, want the device's silence (%s) counted from then",
			offline.RaisedAt.Sub(resumed), silence)
	}

	if code := admin.do("POST", "/api/v1/devices/"+string(device)+"/unassign", map[string]any{}, nil); code != 200 {
		t.Fatalf("unassign: %d", code)
	}
	if _, ok := openAlerts(t, nurseS, patient)[alerting.DeviceOffline]; ok {
		t.Fatalf("device_offline still open as the unassignment is answered")
	}
	if r := lastReason(t, nurseS, offline.ID); !strings.Contains(r, "no longer assigned") || !strings.Contains(r, "device.unassign") {
		t.Errorf("device_offline withdrawn with reason %q", r)
	}

	overdue := waitOpen(t, nurseS, patient, alerting.Overdue, "overdue again after resuming")
	cli := cliRegistry(t, s)
	if err := cli.Discharge(devices.WithActor(context.Background(), "cli:ops"), patient, "recovered", "completed the pathway", time.Time{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the discharged patient off the board, nothing open", func() bool {
		var snap web.Snapshot
		nurseS.do("GET", "/api/v1/patients", nil, &snap)
		return len(snap.Patients) == 0 && len(openAlerts(t, nurseS, patient)) == 0
	})
	if r := lastReason(t, nurseS, overdue.ID); !strings.Contains(r, "discharged: patient.discharge") || !strings.Contains(r, "by cli:ops") {
		t.Errorf("overdue withdrawn at discharge with reason %q", r)
	}
}
