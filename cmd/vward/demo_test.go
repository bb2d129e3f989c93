package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/internal/demo"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/web"
)

// `vward demo` as a person runs it: nothing to install, the startup
// message true (the board answers the sign-in it prints, the credentials
// file holds every device with its kind), every row partial until a
// person completes it, and the virtual nurse's telephone calls completing
// patients' scores, entered as nurse.demo (simulated).
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	root := newRootCmd()
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs([]string{"demo", "--http-addr", httpAddr, "--mqtt-addr", mqttAddr, "--data-dir", dir,
		"--devices", "6", "--nurse-every", "1s"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("vward demo exited with %v\n%s", err, out)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("vward demo did not stop within 60s")
		}
	})

	signIn := regexp.MustCompile(`board: +(http://\S+) \(sign in as (\S+) / (\S+)\)`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; {
		if m = signIn.FindStringSubmatch(out.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("vward demo printed no sign-in within 30s:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"simulating 6 patients with 16 devices (4 pulse oximeters, 2 respiratory patches, 4 blood pressure cuffs, 6 thermometers)",
		"No device reports consciousness (ACVPU) or oxygen", "nurse.demo (simulated)", `open a row that says "needs"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the startup message does not say %q:\n%s", want, out)
		}
	}
	var creds demo.Credentials
	if b, err := os.ReadFile(filepath.Join(dir, demo.CredentialsFile)); err != nil || json.Unmarshal(b, &creds) != nil {
		t.Fatalf("read the credentials: %v", err)
	}
	if len(creds.Devices) != 16 || creds.Clinician.Username != m[2] || creds.Clinician.Password != m[3] {
		t.Errorf("the credentials file holds %d devices and %+v; the message said %s / %s", len(creds.Devices), creds.Clinician, m[2], m[3])
	}
	for _, d := range creds.Devices {
		if d.Kind == "" || d.Kind == "hub" || d.Secret == "" {
			t.Errorf("credentials of %s: %+v", d.ID, d)
		}
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Post(m[1]+"/api/v1/login", "application/json", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, m[2], m[3])))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in as the message says: %v %v", err, resp)
	}
	resp.Body.Close()
	get := func(path string, into any) {
		t.Helper()
		resp, err := c.Get(m[1] + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	type entries struct {
		Observations []struct {
			Source   string         `json:"source"`
			Author   string         `json:"entered_by"`
			Current  bool           `json:"current"`
			Readings map[string]any `json:"readings"`
		} `json:"observations"`
	}
	// Each complete row owes it to a current telephone call by the
	// virtual nurse: no device completes a NEWS2.
	completed := 0
	for deadline := time.Now().Add(90 * time.Second); completed == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no patient's NEWS2 was complete within 90s:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
		var snap struct {
			Patients []web.PatientView `json:"patients"`
		}
		get("/api/v1/patients", &snap)
		if len(snap.Patients) != 6 {
			t.Fatalf("the board has %d patients, want 6", len(snap.Patients))
		}
		for _, p := range snap.Patients {
			if p.News2 == nil || !p.News2.Complete {
				continue
			}
			if len(p.Needs) != 0 {
				t.Errorf("%s is complete but needs %+v", p.Patient, p.Needs)
			}
			var es entries
			get("/api/v1/patients/"+string(p.Patient)+"/observations", &es)
			if len(es.Observations) == 0 {
				t.Fatalf("%s is complete with no observation entered", p.Patient)
			}
			e := es.Observations[0]
			if e.Author != demo.NurseActor || e.Source != "telephone" || !e.Current || e.Readings["consciousness"] == nil || e.Readings["supplemental_oxygen"] == nil {
				t.Errorf("%s is complete after the entry %+v; want a current telephone call by %s giving ACVPU and oxygen", p.Patient, e, demo.NurseActor)
			}
			if v := p.Vitals["consciousness"]; v.At.Before(time.Now().Add(-time.Hour)) {
				t.Errorf("%s is complete with the ACVPU of %v", p.Patient, v.At)
			}
			completed++
		}
	}
}

// `vward simulate --credentials` with the demo's file simulates each device
// as the kind the file says, and --kind only those it says nothing of.
func TestSimulateTakesKindsFromCredentials(t *testing.T) {
	file := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(file, []byte(`{"devices":[
		{"id":"ox-001","kind":"oximeter","secret":"s1","patient":"p-001"},
		{"id":"temp-001","kind":"thermometer","secret":"s2","patient":"p-001"},
		{"id":"old-1","secret":"s3","patient":"p-002"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := simulateFlags{credentials: file, kind: "wearable", clock: "real", speed: 1, duration: time.Hour, seed: 1}
	sc, _, err := f.scenario()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range sc.Patients {
		for _, d := range p.Devices {
			got[string(d.ID)] = string(p.ID) + " " + string(d.Kind)
		}
	}
	want := map[string]string{"ox-001": "p-001 oximeter", "temp-001": "p-001 thermometer", "old-1": "p-002 wearable"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("devices %v, want %v", got, want)
	}
	if err := os.WriteFile(file, []byte(`{"devices":[{"id":"x-1","kind":"toaster","secret":"s"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.scenario(); err == nil || !strings.Contains(err.Error(), `kind "toaster" is not one of`) {
		t.Errorf("an unknown kind in the file: %v", err)
	}
}
