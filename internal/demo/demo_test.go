package demo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/simulator"
	"github.com/vward/vward/sqlitedb"
)

// seed seeds a demo ward of n patients in a fresh registry.
func seed(t *testing.T, n int) Seeded {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Seed(context.Background(), reg, Options{Patients: n, Simulate: true, Seed: 1, NurseEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKit(t *testing.T) {
	ox, patch, cuff, thermo := simulator.Oximeter, simulator.Wearable, simulator.BPCuff, simulator.Thermometer
	for i, want := range [][]simulator.DeviceKind{
		{ox, thermo}, {ox, cuff, thermo}, {patch, cuff, thermo}, {ox, cuff, thermo},
		{ox, thermo}, {patch, cuff, thermo}, {ox, cuff, thermo}, {ox, cuff, thermo},
		{patch, thermo}, {ox, cuff, thermo}, {ox, cuff, thermo}, {patch, cuff, thermo},
	} {
		if got := Kit(i); !reflect.DeepEqual(got, want) {
			t.Errorf("Kit(%d) = %v, want %v", i, got, want)
		}
	}
}

// The demo's devices publish only what real home devices measure: no
// device ever sends consciousness (ACVPU) or oxygen; every patient's
// devices send SpO2, pulse and temperature; the blood pressure comes from
// the cuffs, the respiratory rate only from the patches. Checked on the
// payloads the fleet would publish in its first ten minutes.
func TestDemoDevicesSendWhatRealDevicesMeasure(t *testing.T) {
	s := seed(t, 12)
	plan, err := Scenario(s).Plan()
	if err != nil {
		t.Fatal(err)
	}
	kindOf := map[vward.DeviceID]simulator.DeviceKind{}
	for _, d := range s.Devices {
		kindOf[d.ID] = d.Kind
	}
	sent := map[vward.PatientID]map[vward.ReadingKind]bool{}
	messages := 0
	for _, st := range plan.Streams(Scenario(s).NewClock(time.Now(), 0)) {
		for {
			step, ok := st.Next()
			if !ok || step.At > 10*time.Minute {
				break
			}
			if step.Op != simulator.Publish {
				continue
			}
			var p simulator.Payload
			if err := json.Unmarshal(step.Payload, &p); err != nil {
				t.Fatalf("%s sent %s: %v", step.Device, step.Payload, err)
			}
			messages++
			if sent[step.Patient] == nil {
				sent[step.Patient] = map[vward.ReadingKind]bool{}
			}
			for _, r := range p.Readings {
				sent[step.Patient][r.Type] = true
				switch {
				case r.Type == vward.Consciousness || r.Type == vward.SupplementalOxygen:
					t.Fatalf("%s (%s) sent %s: no home device reports it", step.Device, kindOf[step.Device], r.Type)
				case r.Type == vward.RespiratoryRate && kindOf[step.Device] != simulator.Wearable:
					t.Errorf("%s (%s) sent a respiratory rate", step.Device, kindOf[step.Device])
				case (r.Type == vward.SystolicBP || r.Type == vward.DiastolicBP) && kindOf[step.Device] != simulator.BPCuff:
					t.Errorf("%s (%s) sent %s", step.Device, kindOf[step.Device], r.Type)
				}
			}
		}
	}
	if messages == 0 {
		t.Fatal("the fleet sent nothing in ten minutes")
	}
	withRR, withBP := 0, 0
	for i := range 12 {
		id := PatientID(i)
		got := sent[id]
		for _, k := range []vward.ReadingKind{vward.SpO2, vward.HeartRate, vward.Temperature} {
			if !got[k] {
				t.Errorf("%s's devices sent no %s", id, k)
			}
		}
		if got[vward.RespiratoryRate] {
			withRR++
		}
		if got[vward.SystolicBP] {
			withBP++
		}
		if got[vward.RespiratoryRate] != slices.Contains(Kit(i), simulator.Wearable) || got[vward.SystolicBP] != slices.Contains(Kit(i), simulator.BPCuff) {
			t.Errorf("%s's devices sent %v for the kit %v", id, got, Kit(i))
		}
	}
	if withRR == 0 || withRR == 12 || withBP == 12 {
		t.Errorf("of 12 patients %d had their respiratory rate measured and %d their blood pressure: want some without", withRR, withBP)
	}
}

// The credentials file lists every device with its kind and patient.
func TestSeededDevices(t *testing.T) {
	s := seed(t, 5)
	var ids []vward.DeviceID
	for _, d := range s.Devices {
		ids = append(ids, d.ID)
	}
	want := []vward.DeviceID{"ox-001", "temp-001", "ox-002", "bp-002", "temp-002", "patch-003", "bp-003", "temp-003",
		"ox-004", "bp-004", "temp-004", "ox-005", "temp-005"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("devices %v, want %v", ids, want)
	}
	dir := t.TempDir()
	path, err := WriteCredentials(dir, s)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Devices []map[string]string `json:"devices"`
	}
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &c) != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if first := c.Devices[0]; first["id"] != "ox-001" || first["kind"] != "oximeter" || first["patient"] != "p-001" || first["secret"] == "" {
		t.Errorf("the first device in the file: %v", first)
	}
}
