package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vward/vward/internal/services"
)

// Mosquitto is a real Mosquitto 2 broker on a loopback port, configured with
// the zero-loss settings of production (services.Mosquitto).
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	URL  string // tcp://127.0.0.1:port, for paho's AddBroker
	// ServiceURL is vward's own listener (MosquittoOptions.ServicePasswordFile).
	ServiceURL string
	// TLSURL is the TLS listener (MosquittoOptions.TLS), mqtts://127.0.0.1:port.
	TLSURL string

	m *services.Mosquitto
}

// MosquittoOptions turn on the broker's own authentication. Paths may be
// relative to the test's working directory.
type MosquittoOptions = services.MosquittoOptions

// MosquittoTLS is a TLS listener's files, for MosquittoOptions.TLS: a
// CA's Server certificate (tlscert.go), and its CertFile to verify client
// certificates with RequireCertificate.
type MosquittoTLS = services.MosquittoTLS

// StartMosquitto starts a broker and waits until it accepts TCP connections.
// It is killed when the test ends.
func StartMosquitto(t testing.TB, opts ...MosquittoOptions) *Mosquitto {
	t.Helper()
	if len(opts) > 1 {
		t.Fatalf("StartMosquitto: at most one MosquittoOptions, got %d", len(opts))
	}
	var opt MosquittoOptions
	if len(opts) == 1 {
		opt = opts[0]
	}
	need(t, "mosquitto")
	began := time.Now()
	sm, err := services.StartMosquitto(t.TempDir(), opt)
	if err != nil {
		t.Fatalf("StartMosquitto: %v", err)
	}
	m := &Mosquitto{Addr: sm.Addr, URL: sm.URL, ServiceURL: sm.ServiceURL, TLSURL: sm.TLSURL, m: sm}
	t.Logf("mosquitto ready on %s in %v", m.Addr, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mosquitto log (%s):\n%s", m.Addr, sm.Proc.LogTail())
		}
		if err := sm.Kill(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return m
}

// Stop shuts the broker down cleanly (SIGTERM) and waits for it to exit;
// Mosquitto saves its persistence database on the way out, so queued
// messages survive a later Start.
func (m *Mosquitto) Stop(t testing.TB) {
	t.Helper()
	if err := m.m.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Kill ends the broker with SIGKILL, as a crash would: whatever it queued
// since its last autosave (at most about a second ago) is lost.
func (m *Mosquitto) Kill(t testing.TB) {
	t.Helper()
	if err := m.m.Kill(); err != nil {
		t.Fatal(err)
	}
}

// Start restarts a stopped broker on the same port with the same persistence
// directory, and waits until it accepts TCP connections.
func (m *Mosquitto) Start(t testing.TB) {
	t.Helper()
	began := time.Now()
	if err := m.m.Start(); err != nil {
		t.Fatalf("restart mosquitto: %v", err)
	}
	t.Logf("mosquitto restarted on %s in %v", m.Addr, time.Since(began).Round(time.Millisecond))
}

// Log returns everything the broker has logged so far, across restarts.
func (m *Mosquitto) Log() string { return m.m.Log() }

// PasswordFile writes a Mosquitto password file for users (username →
// password) with mosquitto_passwd, for MosquittoOptions.PasswordFile.
func PasswordFile(t testing.TB, users map[string]string) string {
	t.Helper()
	bin := need(t, "mosquitto_passwd")
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatalf("create password file: %v", err)
	}
	// Sorted so a failure names the same user on every run.
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	slices.Sort(names)
	for _, u := range names {
		// -b takes the password on the command line: fine for test
		// credentials, and the only non-interactive mode.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, bin, "-b", path, u, users[u]).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("mosquitto_passwd for %q: %v\n%s", u, err, out)
		}
	}
	return path
}
