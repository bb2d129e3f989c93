// Package demo seeds the demo ward of `vward demo`: a ward, patients each
// with the devices a virtual ward lends (an oximeter or a respiratory
// patch, a blood pressure cuff, a thermometer), credentials a person can
// publish with, the simulated fleet that brings them to life, and a virtual
// nurse who telephones patients for what no device measures.
package demo

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/simulator"
)

// Options shape the demo ward.
type Options struct {
	Patients int
	Simulate bool
	Seed     uint64
	// NurseEvery is how often the virtual nurse makes a telephone call; 0:
	// there is no virtual nurse.
	NurseEvery time.Duration
}

// Ward is the demo ward's id.
const Ward vward.WardID = "demo-frailty"

// Seeded is what Seed made.
type Seeded struct {
	Clinician Login
	Devices   []SeededDevice
	Options   Options
}

// Login is a clinician's demo sign-in.
type Login struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// SeededDevice is one demo device and its patient.
type SeededDevice struct {
	ID      vward.DeviceID       `json:"id"`
	Kind    simulator.DeviceKind `json:"kind"`
	Secret  string               `json:"secret"`
	Patient vward.PatientID      `json:"patient"`
	Name    string               `json:"-"`
}

// Credentials is the demo-credentials.json file.
type Credentials struct {
	Clinician Login          `json:"clinician"`
	Devices   []SeededDevice `json:"devices"`
}

// CredentialsFile is the name of the credentials file in the data dir.
const CredentialsFile = "demo-credentials.json"

// Reset removes what an earlier demo left in dir, and only that.
func Reset(dir string) error {
	for _, name := range []string{"vward.db", "vward.db-wal", "vward.db-shm", CredentialsFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reset demo data: %w", err)
		}
	}
	return nil
}

var names = []string{
	"Ada Whitfield", "Bernard Okafor", "Catherine Doyle", "Dev Sharma", "Edith Morgan",
	"Frank Kowalski", "Grace Mensah", "Harold Price", "Irene Walsh", "Jamal Hussain",
	"Kathleen Burke", "Leonard Ashby", "Margaret Chen", "Norman Fisher", "Olive Bennett",
	"Patrick Nolan", "Queenie Adams", "Ronald Hughes", "Sylvia Patel", "Thomas Reid",
}

// Seed registers the demo ward, its patients and their devices.
func Seed(ctx context.Context, reg *devices.Registry, o Options) (Seeded, error) {
	if o.Patients < 1 {
		return Seeded{}, fmt.Errorf("the demo needs at least one patient, not %d", o.Patients)
	}
	if err := reg.AddWard(ctx, devices.Ward{ID: Ward, Name: "Frailty virtual ward (demo)", Pathway: "frailty", Place: "Home", Capacity: max(50, o.Patients)}); err != nil {
		return Seeded{}, err
	}
	s := Seeded{Options: o, Clinician: Login{Username: "demo"}}
	var pw [12]byte
	if _, err := crand.Read(pw[:]); err != nil {
		return Seeded{}, fmt.Errorf("make demo password: %w", err)
	}
	// Hex, so the password never starts with "-" or needs quoting in a shell.
	s.Clinician.Password = hex.EncodeToString(pw[:])
	if err := reg.AddClinician(ctx, devices.Clinician{Username: s.Clinician.Username, Role: "clinician", Wards: []vward.WardID{Ward}}, s.Clinician.Password); err != nil {
		return Seeded{}, err
	}
	// Bindings start a day back so that a person may backfill readings.
	from := time.Now().Add(-24 * time.Hour)
	for i := range o.Patients {
		pid := PatientID(i)
		name := names[i%len(names)]
		if i >= len(names) {
			name = fmt.Sprintf("%s %d", name, i/len(names)+1)
		}
		if err := reg.Admit(ctx, devices.Patient{ID: pid, Ward: Ward, Name: name, Admitted: from}); err != nil {
			return Seeded{}, err
		}
		for _, kind := range Kit(i) {
			g := gear[kind]
			did := vward.DeviceID(fmt.Sprintf("%s-%03d", g.prefix, i+1))
			secret, err := reg.AddDevice(ctx, did, g.model)
			if err != nil {
				return Seeded{}, err
			}
			if err := reg.Assign(ctx, did, pid, from); err != nil {
				return Seeded{}, err
			}
			s.Devices = append(s.Devices, SeededDevice{ID: did, Kind: kind, Secret: secret, Patient: pid, Name: name})
		}
	}
	return s, nil
}

// PatientID is the id of the demo's patient i, from 0: "p-001".
func PatientID(i int) vward.PatientID { return vward.PatientID(fmt.Sprintf("p-%03d", i+1)) }

// Kit is what the ward lent demo patient i (from 0): every patient a
// thermometer; one in three a respiratory patch (breathing rate, pulse
// and saturation), the others a fingertip pulse oximeter; and a blood
// pressure cuff, but for one in four, whose blood pressure is taken at
// visits. No device reports consciousness (ACVPU) or oxygen, as no home
// device does: a person asks.
func Kit(i int) []simulator.DeviceKind {
	kit := []simulator.DeviceKind{simulator.Oximeter}
	if i%3 == 2 {
		kit[0] = simulator.Wearable
	}
	if i%4 != 0 {
		kit = append(kit, simulator.BPCuff)
	}
	return append(kit, simulator.Thermometer)
}

// gear names each kind of demo device, and says how often it measures:
// faster than a real ward's spot checks, so that the board changes while
// someone watches, and well inside the hour a value counts for.
var gear = map[simulator.DeviceKind]struct {
	prefix, model string
	every, jitter time.Duration
}{
	simulator.Oximeter:    {"ox", "pulse oximeter", 10 * time.Second, 2 * time.Second},
	simulator.Wearable:    {"patch", "respiratory patch", 5 * time.Second, 0},
	simulator.BPCuff:      {"bp", "blood pressure cuff", 30 * time.Second, 5 * time.Second},
	simulator.Thermometer: {"temp", "thermometer", 30 * time.Second, 5 * time.Second},
}

// WriteCredentials writes demo-credentials.json (mode 0600) and returns its path.
func WriteCredentials(dir string, s Seeded) (string, error) {
	b, err := json.MarshalIndent(Credentials{Clinician: s.Clinician, Devices: s.Devices}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode demo credentials: %w", err)
	}
	path := filepath.Join(dir, CredentialsFile)
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("write demo credentials: %w", err)
	}
	return path, nil
}

// Scenario is the demo ward as the simulator plays it: most patients
// stable, one in four slowly turning septic over a few minutes, one in six
// recovering, so the board changes while someone watches. Each device
// measures what its kind measures (Kit), in real time.
func Scenario(s Seeded) *simulator.Scenario {
	rng := rand.New(rand.NewPCG(s.Options.Seed, 0))
	sc := &simulator.Scenario{
		Name: "demo", Seed: s.Options.Seed, Speed: 1, Clock: simulator.RealClock,
		// A week: the demo runs until stopped, and vward keeps a week of backfill.
		Duration: simulator.Duration(7 * 24 * time.Hour), Ward: Ward,
	}
	kits := map[vward.PatientID][]simulator.DeviceSpec{}
	for _, d := range s.Devices {
		g := gear[d.Kind]
		kits[d.Patient] = append(kits[d.Patient], simulator.DeviceSpec{ID: d.ID, Kind: d.Kind,
			Schedule: simulator.Schedule{Every: simulator.Duration(g.every), Jitter: simulator.Duration(g.jitter)}})
	}
	for i := range s.Options.Patients {
		id := PatientID(i)
		p := simulator.PatientSpec{ID: id, Name: nameOf(s, id), Profile: simulator.Adult, Devices: kits[id]}
		switch {
		case i%4 == 1:
			p.Trajectories = []simulator.Course{{Kind: simulator.Sepsis,
				Onset: simulator.Duration(time.Duration(20+rng.IntN(100)) * time.Second),
				Span:  simulator.Duration(time.Duration(3+rng.IntN(3)) * time.Minute)}}
		case i%6 == 3:
			p.Trajectories = []simulator.Course{{Kind: simulator.Recovery,
				Span: simulator.Duration(time.Duration(3+rng.IntN(3)) * time.Minute)}}
		}
		sc.Patients = append(sc.Patients, p)
	}
	return sc
}

func nameOf(s Seeded, id vward.PatientID) string {
	for _, d := range s.Devices {
		if d.Patient == id {
			return d.Name
		}
	}
	return string(id)
}

// Fleet builds the simulated fleet of the demo (Scenario), its clock
// starting at origin: the virtual nurse reads the same patients' state at
// the same times.
func Fleet(s Seeded, brokerURL string, origin time.Time, log *slog.Logger) *simulator.Runner {
	creds := map[vward.DeviceID]string{}
	for _, d := range s.Devices {
		creds[d.ID] = d.Secret
	}
	return &simulator.Runner{Scenario: Scenario(s), Options: simulator.RunOptions{
		MQTTURL: brokerURL, Credentials: creds, Log: log, Origin: origin,
		// The embedded broker may start a moment after the fleet.
		ConnectTimeout: 5 * time.Minute,
	}}
}
