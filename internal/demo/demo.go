// Package demo seeds the demo ward of `vward demo`: a ward, patients each
// with one device, credentials a person can publish with, and the simulated
// fleet that brings them to life.
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
	ID      vward.DeviceID  `json:"id"`
	Secret  string          `json:"secret"`
	Patient vward.PatientID `json:"patient"`
	Name    string          `json:"-"`
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
		pid := vward.PatientID(fmt.Sprintf("p-%03d", i+1))
		did := vward.DeviceID(fmt.Sprintf("dev-%03d", i+1))
		name := names[i%len(names)]
		if i >= len(names) {
			name = fmt.Sprintf("%s %d", name, i/len(names)+1)
		}
		if err := reg.Admit(ctx, devices.Patient{ID: pid, Ward: Ward, Name: name, Admitted: from}); err != nil {
			return Seeded{}, err
		}
		secret, err := reg.AddDevice(ctx, did, "multi-parameter hub")
		if err != nil {
			return Seeded{}, err
		}
		if err := reg.Assign(ctx, did, pid, from); err != nil {
			return Seeded{}, err
		}
		s.Devices = append(s.Devices, SeededDevice{ID: did, Secret: secret, Patient: pid, Name: name})
	}
	return s, nil
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

// Fleet builds the simulated fleet of the demo: most patients stable, one in
// four slowly turning septic over a few minutes, one in six recovering, so
// the board changes while someone watches. Each patient's hub takes a full
// set of observations every 5 seconds, in real time.
func Fleet(s Seeded, brokerURL string, log *slog.Logger) *simulator.Runner {
	rng := rand.New(rand.NewPCG(s.Options.Seed, 0))
	every := simulator.Duration(5 * time.Second)
	sc := &simulator.Scenario{
		Name: "demo", Seed: s.Options.Seed, Speed: 1, Clock: simulator.RealClock,
		// A week: the demo runs until stopped, and vward keeps a week of backfill.
		Duration: simulator.Duration(7 * 24 * time.Hour), Ward: Ward,
	}
	creds := map[vward.DeviceID]string{}
	for i, d := range s.Devices {
		p := simulator.PatientSpec{ID: d.Patient, Name: d.Name, Profile: simulator.Adult,
			Devices: []simulator.DeviceSpec{{ID: d.ID, Kind: simulator.Hub, Schedule: simulator.Schedule{Every: every}}}}
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
		creds[d.ID] = d.Secret
	}
	return &simulator.Runner{Scenario: sc, Options: simulator.RunOptions{
		MQTTURL: brokerURL, Credentials: creds, Log: log,
		// The embedded broker may start a moment after the fleet.
		ConnectTimeout: 5 * time.Minute,
	}}
}
