package devices_test

import (
	"context"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

// The registry's stays give the alarm burden's patient-days: from the
// admission, to the discharge, with the pauses its audit records apart.
func TestStayDays(t *testing.T) {
	r, _ := openTemp(t)
	ctx := context.Background()
	must(t, r.AddWard(ctx, devices.Ward{ID: "w1", Name: "One"}))
	must(t, r.AddWard(ctx, devices.Ward{ID: "w2", Name: "Two"}))
	now := time.Now().UTC()
	admit := func(id string, at time.Time) {
		must(t, r.Admit(ctx, devices.Patient{ID: vward.PatientID("p-" + id), Ward: "w1", Name: id, Admitted: at}))
	}
	admit("long", now.Add(-30*24*time.Hour))
	admit("new", now.Add(-12*time.Hour))
	admit("gone", now.Add(-20*24*time.Hour))
	must(t, r.Discharge(ctx, "p-gone", "recovered", "", now.Add(-10*24*time.Hour)))
	admit("paused", now.Add(-2*24*time.Hour))
	must(t, r.Pause(ctx, "p-paused", "admitted to QEQM"))
	must(t, r.Admit(ctx, devices.Patient{ID: "p-other", Ward: "w2", Name: "other", Admitted: now.Add(-24 * time.Hour)}))

	to := time.Now().UTC().Add(24 * time.Hour) // the pause, made just now, lasts a day into the window's end
	from := to.Add(-7 * 24 * time.Hour)
	got, err := r.StayDays(ctx, "w1", from, to)
	must(t, err)
	byID := map[string]devices.StayDays{}
	for _, s := range got {
		byID[string(s.Patient)] = s
	}
	if len(got) != 3 || byID["p-gone"].Patient != "" || byID["p-other"].Patient != "" {
		t.Fatalf("stays = %+v, want long, new and paused: not the one discharged before the window, nor another ward's", got)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if got < want-0.01 || got > want+0.01 {
			t.Errorf("%s = %.3f days, want %.3f", what, got, want)
		}
	}
	near("long's days", byID["p-long"].Days, 7)
	near("new's days", byID["p-new"].Days, 1.5)
	near("paused's days", byID["p-paused"].Days, 2)
	near("paused's paused days", byID["p-paused"].PausedDays, 1)
	if byID["p-new"].Name != "new" {
		t.Errorf("name = %q", byID["p-new"].Name)
	}
}
