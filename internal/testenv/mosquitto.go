package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	mosquittoReadyTimeout = 15 * time.Second
	mosquittoStopGrace    = 10 * time.Second
)

// Mosquitto is a real Mosquitto 2 broker on a loopback port, configured with
// the zero-loss settings from DESIGN.md.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	URL  string // tcp://127.0.0.1:port, for paho's AddBroker

	dir  string // persistence and log live here, across restarts
	conf string
	proc *process
}

// MosquittoOptions turn on the broker's own authentication. Paths may be
// relative to the test's working directory.
type MosquittoOptions struct {
	// PasswordFile is a mosquitto_passwd file (see PasswordFile). When set,
	// anonymous clients are refused.
	PasswordFile string
	// ACLFile is a Mosquitto ACL file; it may be used with or without a
	// password file (without one, only its anonymous topic lines apply).
	ACLFile string
}

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
	bin := need(t, "mosquitto")
	dir := t.TempDir()

	// A port can be taken between FreePort and the broker's bind (another
	// test binary running in parallel); only the first start may move ports,
	// restarts must keep theirs.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port := FreePort(t)
		m := &Mosquitto{
			Addr: fmt.Sprintf("127.0.0.1:%d", port),
			URL:  fmt.Sprintf("tcp://127.0.0.1:%d", port),
			dir:  dir,
			conf: filepath.Join(dir, "mosquitto.conf"),
		}
		m.proc = &process{
			name:    "mosquitto",
			bin:     bin,
			args:    []string{"-c", m.conf},
			logPath: filepath.Join(dir, "mosquitto.log"),
		}
		if err := m.writeConfig(port, opt); err != nil {
			t.Fatalf("StartMosquitto: %v", err)
		}
		began := time.Now()
		err := m.start()
		if err == nil {
			t.Logf("mosquitto ready on %s in %v", m.Addr, time.Since(began).Round(time.Millisecond))
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("mosquitto log (%s):\n%s", m.Addr, m.proc.logTail())
				}
				if err := m.proc.stop(syscall.SIGKILL, time.Second); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			})
			return m
		}
		lastErr = err
		if !strings.Contains(m.proc.log(), "Address already in use") {
			break
		}
		// Move the losing attempt's log aside so the next one starts clean.
		_ = os.Rename(m.proc.logPath, fmt.Sprintf("%s.attempt%d", m.proc.logPath, attempt))
	}
	t.Fatalf("StartMosquitto: %v", lastErr)
	return nil
}

// writeConfig writes mosquitto.conf. The zero-loss settings mirror
// deploy/mosquitto/mosquitto.conf so tests exercise what production runs.
func (m *Mosquitto) writeConfig(port int, opt MosquittoOptions) error {
	lines := []string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		// Keep queued QoS 1 messages across a broker restart. Mosquitto
		// writes the database on a clean shutdown (SIGTERM) and every
		// autosave_interval seconds; 1 s keeps what Kill (SIGKILL) loses
		// small, while a SIGTERM restart loses nothing.
		"persistence true",
		"persistence_location " + m.dir + string(filepath.Separator),
		"autosave_interval 1",
		// Unlimited queue and in-flight window: the defaults (1000 queued,
		// 20 in flight) silently drop or throttle once ingest withholds
		// PUBACKs while InfluxDB is down.
		//
		// Production says "max_queued_messages 0" (unlimited). Debian 12's
		// Mosquitto 2.0.11 has a bug with 0 (mosquitto issue #3244, fixed in
		// 2.0.22): after refusing a QoS 1 PUBLISH, e.g. one its ACL denies,
		// it reports "quota exceeded" and drops the publisher's connection.
		// A limit no test can reach behaves as unlimited without the bug.
		"max_queued_messages 1000000000",
		"max_queued_bytes 0",
		"max_inflight_messages 0",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"log_type notice",
		"log_type information",
		"log_timestamp_format %Y-%m-%dT%H:%M:%S",
	}
	// Mosquitto run as root switches to the "mosquitto" user, which cannot
	// write to a root-owned 0700 temp dir; "user root" keeps it as root. As a
	// non-root user the option is ignored, so only write it when needed.
	if os.Geteuid() == 0 {
		lines = append(lines, "user root")
	}
	if opt.PasswordFile != "" {
		p, err := filepath.Abs(opt.PasswordFile)
		if err != nil {
			return fmt.Errorf("password file path: %w", err)
		}
		lines = append(lines, "allow_anonymous false", "password_file "+p)
	} else {
		lines = append(lines, "allow_anonymous true")
	}
	if opt.ACLFile != "" {
		p, err := filepath.Abs(opt.ACLFile)
		if err != nil {
			return fmt.Errorf("acl file path: %w", err)
		}
		lines = append(lines, "acl_file "+p)
	}
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("write mosquitto config: %w", err)
	}
	return nil
}

func (m *Mosquitto) start() error {
	r, err := m.proc.start()
	if err != nil {
		return err
	}
	if err := waitReady(r, mosquittoReadyTimeout, dialProbe(m.Addr)); err != nil {
		_ = m.proc.stop(syscall.SIGKILL, time.Second)
		return fmt.Errorf("mosquitto on %s: %w\nlog:\n%s", m.Addr, err, m.proc.logTail())
	}
	return nil
}

// Stop shuts the broker down cleanly (SIGTERM) and waits for it to exit;
// Mosquitto saves its persistence database on the way out, so queued
// messages survive a later Start.
func (m *Mosquitto) Stop(t testing.TB) {
	t.Helper()
	if err := m.proc.stop(syscall.SIGTERM, mosquittoStopGrace); err != nil {
		t.Fatalf("stop mosquitto: %v\nlog:\n%s", err, m.proc.logTail())
	}
}

// Kill ends the broker with SIGKILL, as a crash would: whatever it queued
// since its last autosave (at most about a second ago) is lost.
func (m *Mosquitto) Kill(t testing.TB) {
	t.Helper()
	if err := m.proc.stop(syscall.SIGKILL, mosquittoStopGrace); err != nil {
		t.Fatalf("kill mosquitto: %v", err)
	}
}

// Start restarts a stopped broker on the same port with the same persistence
// directory, and waits until it accepts TCP connections.
func (m *Mosquitto) Start(t testing.TB) {
	t.Helper()
	began := time.Now()
	if err := m.start(); err != nil {
		t.Fatalf("restart mosquitto: %v", err)
	}
	t.Logf("mosquitto restarted on %s in %v", m.Addr, time.Since(began).Round(time.Millisecond))
}

// Log returns everything the broker has logged so far, across restarts.
func (m *Mosquitto) Log() string { return m.proc.log() }

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
