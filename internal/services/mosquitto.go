package services

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const (
	mosquittoReadyTimeout = 15 * time.Second
	mosquittoStopGrace    = 10 * time.Second
)

// Mosquitto is a real Mosquitto 2 broker on a loopback port, configured with
// the zero-loss settings of deploy/mosquitto/mosquitto.conf
// (docs/operator.md, "Zero-loss broker settings").
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	URL  string // tcp://127.0.0.1:port, for paho's AddBroker
	// ServiceURL is vward's own listener, with ServicePasswordFile's
	// accounts; empty without one.
	ServiceURL string
	// TLSURL is the TLS listener (mqtts://127.0.0.1:port); empty without
	// MosquittoOptions.TLS.
	TLSURL string

	dir  string // persistence and log live here, across restarts
	conf string
	Proc *Process
}

// MosquittoOptions turn on the broker's own authentication.
type MosquittoOptions struct {
	// PasswordFile is a mosquitto_passwd file. When set, anonymous
	// clients are refused.
	PasswordFile string
	// ACLFile is a Mosquitto ACL file; it may be used with or without a
	// password file (without one, only its anonymous topic lines apply).
	ACLFile string
	// AutosaveInterval is how often, in seconds, the broker snapshots its
	// persistence database; 0 means 1, the tests' setting (see
	// writeConfig). Production (deploy/mosquitto) says 30: each save
	// rewrites the whole database, which costs more the more is queued.
	AutosaveInterval int
	// MaxInflight is max_inflight_messages: 0 means production's
	// DefaultMaxInflight, a negative value unlimited.
	MaxInflight int
	// ServicePasswordFile, with PasswordFile, lays the broker out as
	// deploy/mosquitto does: URL is the devices' listener, with
	// PasswordFile's accounts and each client id replaced by its username;
	// ServiceURL is vward's, with this file's accounts.
	ServicePasswordFile string
	// TLS, if set, adds a TLS listener (TLSURL) with vward's accounts:
	// ServicePasswordFile's in that layout, else PasswordFile's.
	TLS *MosquittoTLS
}

// MosquittoTLS is a TLS listener's PEM files.
type MosquittoTLS struct {
	// CAFile is the CA bundle client certificates must verify against;
	// needed with RequireCertificate.
	CAFile string
	// CertFile and KeyFile are the broker's certificate and key.
	CertFile, KeyFile string
	// RequireCertificate refuses a client that presents no certificate
	// CAFile verifies (mutual TLS).
	RequireCertificate bool
}

// DefaultMaxInflight is deploy/mosquitto's max_inflight_messages: large
// enough never to throttle vward (its own window is 20,000), and finite,
// because with no limit Mosquitto 2.0's work per message grows with the
// backlog (docs/design/mosquitto-max-inflight.md).
const DefaultMaxInflight = 20000

func inflight(n int) int {
	switch {
	case n == 0:
		return DefaultMaxInflight
	case n < 0:
		return 0 // Mosquitto's "no limit"
	}
	return n
}

// StartMosquitto starts a broker whose persistence, config and log live in
// dir, and waits until it accepts TCP connections. The caller stops it.
func StartMosquitto(dir string, opt MosquittoOptions) (*Mosquitto, error) {
	bin, err := LookBinary("mosquitto")
	if err != nil {
		return nil, err
	}
	// A port can be taken between FreePort and the broker's bind (another
	// process starting services in parallel); only the first start may move
	// ports, restarts must keep theirs.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		m := &Mosquitto{
			Addr: fmt.Sprintf("127.0.0.1:%d", port),
			URL:  fmt.Sprintf("tcp://127.0.0.1:%d", port),
			dir:  dir,
			conf: filepath.Join(dir, "mosquitto.conf"),
		}
		servicePort := 0
		if opt.ServicePasswordFile != "" {
			if servicePort, err = FreePort(); err != nil {
				return nil, err
			}
			m.ServiceURL = fmt.Sprintf("tcp://127.0.0.1:%d", servicePort)
		}
		tlsPort := 0
		if opt.TLS != nil {
			if tlsPort, err = FreePort(); err != nil {
				return nil, err
			}
			m.TLSURL = fmt.Sprintf("mqtts://127.0.0.1:%d", tlsPort)
		}
		m.Proc = &Process{
			Name:    "mosquitto",
			Bin:     bin,
			Args:    []string{"-c", m.conf},
			LogPath: filepath.Join(dir, "mosquitto.log"),
		}
		if err := m.writeConfig(port, servicePort, tlsPort, opt); err != nil {
			return nil, err
		}
		err = m.Start()
		if err == nil {
			return m, nil
		}
		lastErr = err
		if !strings.Contains(m.Proc.Log(), "Address already in use") {
			break
		}
		// Move the losing attempt's log aside so the next one starts clean.
		_ = os.Rename(m.Proc.LogPath, fmt.Sprintf("%s.attempt%d", m.Proc.LogPath, attempt))
	}
	return nil, lastErr
}

// writeConfig writes mosquitto.conf. The zero-loss settings mirror
// deploy/mosquitto/mosquitto.conf so tests and benchmarks exercise what
// production runs.
func (m *Mosquitto) writeConfig(port, servicePort, tlsPort int, opt MosquittoOptions) error {
	lines := []string{
		// Keep queued QoS 1 messages across a broker restart. Mosquitto
		// writes the database on a clean shutdown (SIGTERM) and every
		// autosave_interval seconds; 1 s keeps what Kill (SIGKILL) loses
		// small, while a SIGTERM restart loses nothing.
		"persistence true",
		"persistence_location " + m.dir + string(filepath.Separator),
		fmt.Sprintf("autosave_interval %d", cmp.Or(opt.AutosaveInterval, 1)),
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
		fmt.Sprintf("max_inflight_messages %d", inflight(opt.MaxInflight)),
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
	// listener writes a listener's lines: with per_listener_settings, the
	// accounts and ACL are the listener's own.
	listener := func(port int, passwd string, extra ...string) error {
		lines = append(lines, fmt.Sprintf("listener %d 127.0.0.1", port))
		lines = append(lines, extra...)
		if passwd != "" {
			p, err := filepath.Abs(passwd)
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
		return nil
	}
	if servicePort == 0 {
		if err := listener(port, opt.PasswordFile); err != nil {
			return err
		}
	} else {
		lines = append(lines, "per_listener_settings true")
		if err := listener(port, opt.PasswordFile, "use_username_as_clientid true"); err != nil {
			return err
		}
		if err := listener(servicePort, opt.ServicePasswordFile); err != nil {
			return err
		}
	}
	if tlsPort != 0 {
		tlsLines, err := tlsListenerLines(opt.TLS)
		if err != nil {
			return err
		}
		if servicePort == 0 {
			// The accounts and ACL are global without
			// per_listener_settings: given once, above.
			lines = append(lines, fmt.Sprintf("listener %d 127.0.0.1", tlsPort))
			lines = append(lines, tlsLines...)
		} else if err := listener(tlsPort, opt.ServicePasswordFile, tlsLines...); err != nil {
			return err
		}
	}
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("write mosquitto config: %w", err)
	}
	return nil
}

// tlsListenerLines are a TLS listener's settings, with absolute paths.
func tlsListenerLines(o *MosquittoTLS) ([]string, error) {
	if o.CertFile == "" || o.KeyFile == "" || (o.RequireCertificate && o.CAFile == "") {
		return nil, fmt.Errorf("mosquitto TLS listener: need CertFile and KeyFile, and CAFile with RequireCertificate")
	}
	var lines []string
	for _, f := range []struct{ key, path string }{{"cafile", o.CAFile}, {"certfile", o.CertFile}, {"keyfile", o.KeyFile}} {
		if f.path == "" {
			continue
		}
		p, err := filepath.Abs(f.path)
		if err != nil {
			return nil, fmt.Errorf("mosquitto TLS listener %s path: %w", f.key, err)
		}
		lines = append(lines, f.key+" "+p)
	}
	return append(lines, fmt.Sprintf("require_certificate %t", o.RequireCertificate)), nil
}

// Start (re)starts the broker on its port with its persistence directory,
// and waits until it accepts TCP connections.
func (m *Mosquitto) Start() error {
	r, err := m.Proc.Start()
	if err != nil {
		return err
	}
	if err := WaitReady(r, mosquittoReadyTimeout, DialProbe(m.Addr)); err != nil {
		_ = m.Proc.Stop(syscall.SIGKILL, time.Second)
		return fmt.Errorf("mosquitto on %s: %w\nlog:\n%s", m.Addr, err, m.Proc.LogTail())
	}
	return nil
}

// Stop shuts the broker down cleanly (SIGTERM) and waits for it to exit;
// Mosquitto saves its persistence database on the way out.
func (m *Mosquitto) Stop() error {
	if err := m.Proc.Stop(syscall.SIGTERM, mosquittoStopGrace); err != nil {
		return fmt.Errorf("stop mosquitto: %w\nlog:\n%s", err, m.Proc.LogTail())
	}
	return nil
}

// Kill ends the broker with SIGKILL, as a crash would.
func (m *Mosquitto) Kill() error {
	if err := m.Proc.Stop(syscall.SIGKILL, mosquittoStopGrace); err != nil {
		return fmt.Errorf("kill mosquitto: %w", err)
	}
	return nil
}

// Log returns everything the broker has logged so far, across restarts.
func (m *Mosquitto) Log() string { return m.Proc.Log() }

// MosquittoVersion is the version the broker binary at bin gives for itself
// ("2.1.2"), from `mosquitto -h`, which prints "mosquitto version X" and
// exits non-zero. Figures measured against a broker say which: Debian 12's
// 2.0.11 and production's 2.1 differ in CPU per message
// (docs/design/mosquitto-2.1.md).
func MosquittoVersion(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput() // -h always exits non-zero
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "mosquitto version "); ok {
			return v, nil
		}
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return "", fmt.Errorf("%s -h does not say its version: %q", bin, first)
}
