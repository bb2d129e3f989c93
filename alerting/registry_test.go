package alerting

import (
	"context"
	"strings"
	"testing"
	"time"
)

// reasons returns the reasons of an alert's audit entries, oldest first.
func (r *rig) reasons(t *testing.T, id int64) []string {
	t.Helper()
	_, audit, err := r.engine.Alert(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range audit {
		out = append(out, e.Reason)
	}
	return out
}

func lastContains(t *testing.T, reasons []string, want string) {
	t.Helper()
	if len(reasons) == 0 || !strings.Contains(reasons[len(reasons)-1], want) {
		t.Errorf("audit reasons %q: the last should say %q", reasons, want)
	}
}

// A paused patient is in hospital: their overdue and device alerts clear
// at once, saying who paused them, and nothing is raised for them until
// they are resumed, though their readings are still scored. Resuming
// restarts the overdue clock and the devices' silence from then, and
// assesses their set as it is.
func TestAlertPauseAndResume(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	info := PatientInfo{ID: "p1", Ward: "w1", Name: "One"}
	silence := DefaultPolicy().DeviceSilence
	r.monitor.ObserveDevice("ox-1", "p1", "w1", nil, t0)
	r.observe(mild, t0) // NEWS2 2: a set due within 4 hours
	clk.Set(t0.Add(4*time.Hour + time.Second))
	r.engine.Tick()
	overdue, offline := r.openOf(t, Overdue), r.openOf(t, DeviceOffline)
	if overdue == nil || offline == nil {
		t.Fatalf("open = %+v, want overdue and device_offline", r.open(t))
	}

	paused := info
	paused.Paused = true
	r.monitor.Update(paused, "patient.pause by alice: admitted to hospital")
	if open := r.open(t); len(open) != 0 {
		t.Fatalf("open after pausing = %+v, want none", open)
	}
	for _, id := range []int64{overdue.ID, offline.ID} {
		lastContains(t, r.reasons(t, id), "monitoring paused: patient.pause by alice: admitted to hospital")
	}

	// While paused: a high-risk set, a low battery and days of silence
	// raise nothing; the set is still scored on the board.
	bat := 0.05
	r.monitor.ObserveDevice("ox-1", "p1", "w1", &bat, clk.Now())
	r.observe(high, clk.Now())
	for range 3 {
		clk.Set(clk.Now().Add(12 * time.Hour))
		r.engine.Tick()
	}
	if open := r.open(t); len(open) != 0 {
		t.Fatalf("open while paused = %+v, want none", open)
	}
	if row, _ := view(r.monitor.Patient("p1")); row.News2 == nil || row.News2.Score != 8 {
		t.Errorf("paused patient's row = %+v, want their NEWS2 8 still shown", row.News2)
	}
	r.monitor.Update(paused, "again") // the registry read again: no change
	if open := r.open(t); len(open) != 0 {
		t.Fatalf("open after the same pause again = %+v", open)
	}

	// Resumed with a fresh high set: it alerts at once, saying why.
	clk.Set(clk.Now().Add(time.Minute))
	r.observe(high, clk.Now())
	resumedAt := clk.Now().Add(time.Minute)
	clk.Set(resumedAt)
	r.monitor.Update(info, "patient.resume by bob: home again")
	news := r.openOf(t, News2)
	if news == nil || news.Risk.String() != "high" {
		t.Fatalf("open after resuming = %+v, want a high NEWS2 alert", r.open(t))
	}
	lastContains(t, r.reasons(t, news.ID), "rescored because patient.resume by bob: home again")

	// The overdue clock and the device's silence count from resuming.
	clk.Set(resumedAt.Add(silence - time.Second))
	r.engine.Tick()
	if a := r.openOf(t, DeviceOffline); a != nil {
		t.Fatalf("device offline %s after resuming: %+v", silence-time.Second, a)
	}
	clk.Set(resumedAt.Add(silence + time.Second))
	r.engine.Tick()
	if r.openOf(t, DeviceOffline) == nil {
		t.Fatalf("no device_offline %s after resuming with the device silent", silence+time.Second)
	}
}

// An unassigned device no longer alerts for the patient: its open device
// alerts clear, saying why, and its silence raises nothing more for them.
func TestAlertUnbindClearsDeviceAlerts(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	silence := DefaultPolicy().DeviceSilence
	bat := 0.05
	r.monitor.ObserveDevice("ox-1", "p1", "w1", &bat, t0)
	r.monitor.ObserveDevice("bp-1", "p1", "w1", nil, t0)
	clk.Set(t0.Add(silence + time.Second))
	r.engine.Tick()
	if off := r.offline(t); len(off) != 2 || r.openOf(t, BatteryLow) == nil {
		t.Fatalf("open = %+v, want both devices offline and ox-1's battery low", r.open(t))
	}
	if got := r.monitor.BoundDevices(); got["ox-1"] != "p1" || got["bp-1"] != "p1" {
		t.Fatalf("bound devices = %v", got)
	}
	battery := r.openOf(t, BatteryLow)
	r.monitor.Unbind("ox-1", "device.unassign by carol")
	off := r.offline(t)
	if _, ok := off["ox-1"]; ok || len(off) != 1 || r.openOf(t, BatteryLow) != nil {
		t.Fatalf("open after unbinding ox-1 = %+v, want only bp-1 offline", r.open(t))
	}
	lastContains(t, r.reasons(t, battery.ID), "device ox-1 no longer assigned to the patient: device.unassign by carol")
	if _, ok := r.monitor.BoundDevices()["ox-1"]; ok {
		t.Errorf("ox-1 still bound after Unbind")
	}
	clk.Set(clk.Now().Add(2 * silence))
	r.engine.Tick()
	if _, ok := r.offline(t)["ox-1"]; ok {
		t.Errorf("unbound ox-1 alerted again")
	}
}

// A discharge clears the patient's overdue and device alerts with who
// discharged them; an open NEWS2 alert stays for a clinician to resolve.
func TestAlertDischargeClearsTechnicalKeepsNews2(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	r.monitor.ObserveDevice("ox-1", "p1", "w1", nil, t0)
	r.observe(high, t0)
	clk.Set(t0.Add(2 * time.Hour)) // high: hourly sets; the device silent for an hour
	r.engine.Tick()
	overdue, offline, news := r.openOf(t, Overdue), r.openOf(t, DeviceOffline), r.openOf(t, News2)
	if overdue == nil || offline == nil || news == nil {
		t.Fatalf("open = %+v, want NEWS2, overdue and device_offline", r.open(t))
	}
	r.monitor.Discharge("p1", "patient.discharge by alice: recovered")
	open := r.open(t)
	if len(open) != 1 || open[0].ID != news.ID {
		t.Fatalf("open after discharge = %+v, want only the NEWS2 alert", open)
	}
	for _, id := range []int64{overdue.ID, offline.ID} {
		lastContains(t, r.reasons(t, id), "patient.discharge by alice: recovered")
	}
	if got := r.monitor.BoundDevices(); len(got) != 0 {
		t.Errorf("bound devices after discharge = %v", got)
	}
}
