package main

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vward/vward/internal/testenv"
)

// Every mistake in the broker's TLS settings stops serve (and simulate) at
// once with a usage error (exit 2) that names the flag and the file.
func TestMQTTTLSConfigurationErrors(t *testing.T) {
	ca := testenv.NewCA(t, "vward test CA")
	client := ca.Client(t, "vward")
	other := ca.Client(t, "someone-else")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not-pem.txt")
	if err := os.WriteFile(notPEM, []byte("this is not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	const tlsURL = "mqtts://127.0.0.1:8883"
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"missing CA file", []string{"--mqtt-url", tlsURL, "--mqtt-ca-file", missing}, []string{"--mqtt-ca-file", missing, "no such file"}},
		{"CA file not PEM", []string{"--mqtt-url", tlsURL, "--mqtt-ca-file", notPEM}, []string{"--mqtt-ca-file", notPEM, "no PEM certificate"}},
		{"a key in the CA file", []string{"--mqtt-url", tlsURL, "--mqtt-ca-file", client.KeyFile}, []string{"--mqtt-ca-file", client.KeyFile, `"PRIVATE KEY", not a CERTIFICATE`}},
		{"certificate without key", []string{"--mqtt-url", tlsURL, "--mqtt-cert-file", client.CertFile}, []string{"--mqtt-cert-file", client.CertFile, "needs --mqtt-key-file"}},
		{"key without certificate", []string{"--mqtt-url", tlsURL, "--mqtt-key-file", client.KeyFile}, []string{"--mqtt-key-file", client.KeyFile, "needs --mqtt-cert-file"}},
		{"unreadable certificate", []string{"--mqtt-url", tlsURL, "--mqtt-cert-file", missing, "--mqtt-key-file", client.KeyFile}, []string{"--mqtt-cert-file", missing}},
		{"key of another certificate", []string{"--mqtt-url", tlsURL, "--mqtt-cert-file", client.CertFile, "--mqtt-key-file", other.KeyFile},
			[]string{"--mqtt-cert-file " + client.CertFile + " with --mqtt-key-file " + other.KeyFile, "private key does not match public key"}},
		{"TLS settings with tcp://", []string{"--mqtt-url", "tcp://127.0.0.1:1883", "--mqtt-ca-file", ca.CertFile},
			[]string{"--mqtt-ca-file given, but --mqtt-url tcp://127.0.0.1:1883 is not TLS", "mqtts://"}},
	} {
		for _, cmd := range []string{"serve", "simulate"} {
			t.Run(cmd+"/"+tc.name, func(t *testing.T) {
				args := append([]string{cmd}, tc.args...)
				if cmd == "serve" {
					args = append(args, "--influx-url", "http://127.0.0.1:1", "--data-dir", t.TempDir())
				} else {
					args = append(args, "--devices", "1", "--duration", "1s", "--clock", "real", "--quiet")
				}
				_, err := runCLI(t, args...)
				if err == nil || !errors.As(err, new(usageError)) {
					t.Fatalf("%s: %v, want a usage error", strings.Join(args, " "), err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %q, want it to say %q", strings.Join(args, " "), err, w)
					}
				}
			})
		}
	}
}

// serve reads its TLS settings from VWARD_MQTT_* like any other flag.
func TestMQTTTLSFromEnvironment(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ca.pem")
	t.Setenv("VWARD_MQTT_URL", "mqtts://127.0.0.1:8883")
	t.Setenv("VWARD_MQTT_CA_FILE", missing)
	_, err := runCLI(t, "serve", "--influx-url", "http://127.0.0.1:1", "--data-dir", t.TempDir())
	if err == nil || !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "--mqtt-ca-file") || !strings.Contains(err.Error(), missing) {
		t.Fatalf("serve with VWARD_MQTT_CA_FILE=%s: %v, want a usage error naming --mqtt-ca-file and the file", missing, err)
	}
}

// Good files give a configuration that trusts the CA file's certificates
// only, presents the client certificate, names the server and speaks TLS
// 1.2 or later.
func TestMQTTTLSConfig(t *testing.T) {
	ca := testenv.NewCA(t, "vward test CA")
	second := testenv.NewCA(t, "second CA")
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	var b []byte
	for _, f := range []string{ca.CertFile, second.CertFile} {
		pem, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, "# a comment between certificates\n"...), pem...)
	}
	if err := os.WriteFile(bundle, b, 0o600); err != nil {
		t.Fatal(err)
	}
	client := ca.Client(t, "vward")
	f := mqttTLSFlags{caFile: bundle, certFile: client.CertFile, keyFile: client.KeyFile, serverName: "broker.example"}
	cfg, err := f.config("mqtts://10.0.0.5:8883")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion < 0x0303 || cfg.ServerName != "broker.example" || len(cfg.Certificates) != 1 {
		t.Errorf("config: min version %#x, server name %q, %d certificates; want TLS 1.2, broker.example, 1", cfg.MinVersion, cfg.ServerName, len(cfg.Certificates))
	}
	if !cfg.RootCAs.Equal(poolOf(t, ca, second)) {
		t.Error("the roots are not exactly the bundle's two CAs")
	}
	if cfg, err := (&mqttTLSFlags{}).config("mqtts://10.0.0.5:8883"); cfg != nil || err != nil {
		t.Errorf("no TLS flags: %v, %v; want nil (the system's roots)", cfg, err)
	}
}

func poolOf(t *testing.T, cas ...*testenv.CA) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	for _, ca := range cas {
		b, err := os.ReadFile(ca.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		p.AppendCertsFromPEM(b)
	}
	return p
}
