package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vward/vward/devices"
	"github.com/vward/vward/sqlitedb"
)

// Secrets set in the environment never show in --help: flag defaults are
// the built-in ones, and the environment is read when the command runs.
func TestHelpShowsNoSecrets(t *testing.T) {
	t.Setenv("VWARD_MQTT_PASSWORD", "s3cret-mqtt")
	t.Setenv("VWARD_INFLUX_TOKEN", "s3cret-token")
	for _, cmd := range []string{"serve", "demo", "replay", "devices"} {
		out, err := runCLI(t, cmd, "--help")
		if err != nil {
			t.Fatalf("%s --help: %v", cmd, err)
		}
		if strings.Contains(out, "s3cret") {
			t.Errorf("%s --help shows a secret:\n%s", cmd, out)
		}
	}
}

// A VWARD_* value that does not parse as its flag is a usage error naming
// the variable (exit 2), not a warning and a default; a secret's value is
// not repeated.
func TestEnvironmentValuesMustParse(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"VWARD_MAX_INFLIGHT", "20k", `VWARD_MAX_INFLIGHT="20k" does not parse as --max-inflight`},
		{"VWARD_MQTT_CONNECTIONS", "two", `VWARD_MQTT_CONNECTIONS="two"`},
		{"VWARD_LOG_LEVEL", "loud", `--log-level "loud"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(tc.name, tc.value)
			_, err := runCLI(t, "serve", "--influx-url", "http://127.0.0.1:1")
			if err == nil || !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a usage error saying %s", err, tc.want)
			}
		})
	}
	if _, err := runCLI(t, "serve", "--no-such-flag"); !errors.As(err, new(usageError)) {
		t.Errorf("an unknown flag: %v, want a usage error", err)
	}
	if _, err := runCLI(t, "version", "extra"); !errors.As(err, new(usageError)) {
		t.Errorf("an extra argument: %v, want a usage error", err)
	}
}

// VWARD_<NAME>_FILE reads a secret from a file, as containers mount them.
func TestSecretFromFile(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlitedb.Open(filepath.Join(dir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devices.Open(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	db.Close()
	secretFile := filepath.Join(dir, "mqtt-password")
	if err := os.WriteFile(secretFile, []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VWARD_MQTT_PASSWORD_FILE", secretFile)
	svc := filepath.Join(dir, "passwd.service")
	if out, err := runCLI(t, "devices", "export-mosquitto", "--data-dir", dir, "--service-passwd", svc); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	b, err := os.ReadFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	user, hash, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	if user != "vward" || !devices.CheckMosquittoHash(hash, "from-a-file") {
		t.Errorf("service passwd %q does not hold the file's password", b)
	}
	t.Setenv("VWARD_MQTT_PASSWORD_FILE", filepath.Join(dir, "missing"))
	if _, err := runCLI(t, "devices", "export-mosquitto", "--data-dir", dir, "--service-passwd", svc); err == nil || !strings.Contains(err.Error(), "VWARD_MQTT_PASSWORD_FILE") {
		t.Errorf("a missing secret file: %v, want an error naming VWARD_MQTT_PASSWORD_FILE", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := runCLI(t, "version")
	if err != nil || !strings.HasPrefix(out, "vward ") || !strings.Contains(out, "go      go1.") {
		t.Errorf("vward version = %q, %v", out, err)
	}
	out, err = runCLI(t, "--version")
	if err != nil || !strings.HasPrefix(out, "vward version ") {
		t.Errorf("vward --version = %q, %v", out, err)
	}
}

// A simulation whose devices could not connect did not do its job: it
// exits with an error saying so, not 0.
func TestSimulateFailsWhenDevicesCannotConnect(t *testing.T) {
	closed := "tcp://127.0.0.1:1" // nothing listens on port 1
	out, err := runCLI(t, "simulate", "--mqtt-url", closed, "--devices", "2", "--duration", "2s", "--clock", "real",
		"--connect-timeout", "1s", "--quiet")
	if err == nil || !strings.Contains(err.Error(), "2 of 2 devices were not connected") {
		t.Fatalf("simulate with no broker: %v\n%s", err, out)
	}
}
