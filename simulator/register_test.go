package simulator

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vward/vward/devices/devicestest"
)

// Registering a scenario binds every device to its patient with the
// scenario's SpO2 scale; registering it again reuses what exists and gives
// the devices new secrets, the old ones no longer working.
func TestRegisterScenarioTwice(t *testing.T) {
	ctx := context.Background()
	_, reg := devicestest.Open(t)
	sc, err := Load(filepath.Join("scenarios", "copd-scale2.json"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sc.Plan()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first, err := Register(ctx, reg, plan, now)
	if err != nil {
		t.Fatalf("first registration: %v", err)
	}
	second, err := Register(ctx, reg, plan, now)
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	if len(first.Devices) == 0 || len(first.Devices) != len(second.Devices) {
		t.Fatalf("registered %d then %d devices", len(first.Devices), len(second.Devices))
	}
	scale2 := 0
	for i, d := range second.Devices {
		if reg.Authenticate(d.ID, []byte(first.Devices[i].Secret)) {
			t.Errorf("%s still accepts its first secret", d.ID)
		}
		if !reg.Authenticate(d.ID, []byte(d.Secret)) {
			t.Errorf("%s refuses its new secret", d.ID)
		}
		got, _, err := reg.PatientAt(d.ID, now.Add(-time.Hour))
		if err != nil || got != d.Patient {
			t.Errorf("%s attributed to %q (%v), want %s", d.ID, got, err, d.Patient)
		}
	}
	for _, p := range plan.Patients {
		rp, err := reg.Patient(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rp.SpO2Scale != p.SpO2Scale {
			t.Errorf("%s registered on scale %d, want %d", p.ID, rp.SpO2Scale, p.SpO2Scale)
		}
		if rp.SpO2Scale == 2 {
			scale2++
		}
	}
	if scale2 == 0 {
		t.Error("the COPD scenario registered nobody on Scale 2")
	}
}
