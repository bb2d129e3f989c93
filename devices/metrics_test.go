package devices_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

func TestRegistryCount(t *testing.T) {
	r, _ := openTemp(t)
	ctx := devices.WithActor(context.Background(), "matron")
	must(t, r.AddWard(ctx, devices.Ward{ID: "w1", Name: "W1"}))
	must(t, r.AddWard(ctx, devices.Ward{ID: "w2", Name: "W2"}))
	for _, p := range []string{"a", "b", "c"} {
		must(t, r.Admit(ctx, devices.Patient{ID: vward.PatientID(p), Ward: "w1", Name: p}))
	}
	must(t, r.Pause(ctx, "b", "in hospital"))
	must(t, r.Discharge(ctx, "c", "recovered", "", time.Time{}))
	for _, d := range []string{"ox-1", "ox-2", "ox-3"} {
		if _, err := r.AddDevice(ctx, vward.DeviceID(d), "oximeter"); err != nil {
			t.Fatal(err)
		}
	}
	must(t, r.Assign(ctx, "ox-1", "a", time.Now().Add(-time.Hour)))
	must(t, r.Assign(ctx, "ox-2", "a", time.Now().Add(-time.Hour)))
	must(t, r.Unassign(ctx, "ox-2", time.Now().Add(-time.Minute)))
	got, err := r.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := devices.Counts{Wards: 2, Patients: map[string]int{devices.StatusAdmitted: 1, devices.StatusPaused: 1, devices.StatusDischarged: 1}, Bound: 1, Unbound: 2}
	if got.Wards != want.Wards || !maps.Equal(got.Patients, want.Patients) || got.Bound != want.Bound || got.Unbound != want.Unbound {
		t.Errorf("Count = %+v, want %+v", got, want)
	}
}
