package mqttsource

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/testenv"
)

// tlsBroker is a Mosquitto with a TLS listener whose server certificate
// the test CA issued, requiring a client certificate of that CA.
func tlsBroker(t *testing.T) (*testenv.Mosquitto, *testenv.CA) {
	t.Helper()
	ca := testenv.NewCA(t, "vward test CA")
	server := ca.Server(t)
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{TLS: &testenv.MosquittoTLS{
		CAFile: ca.CertFile, CertFile: server.CertFile, KeyFile: server.KeyFile, RequireCertificate: true,
	}})
	return broker, ca
}

// A reading published by a device reaches the store, and is acknowledged,
// through vward's connection over mutual TLS: the broker's certificate
// verified against the CA, vward's own presented to the broker.
func TestSourceOverMutualTLS(t *testing.T) {
	broker, ca := tlsBroker(t)
	r := newRig(t, ingest.Config{}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	cfg := Config{URL: broker.TLSURL, ClientID: "vward-ingest-tls", TLS: &tls.Config{
		RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Client(t, "vward").KeyPair(t)},
	}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate(%s with TLS) = %v", cfg.URL, err)
	}
	_, stop := runSource(t, r, cfg)
	defer stop()

	dev := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("ingest-tls-device"))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer dev.Disconnect(100)
	tok := dev.Publish(vward.ReadingsTopic("ox-1"), 1, false, v1("tls-1", now.Add(-time.Minute), vward.SpO2, 94))
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	waitFor(t, "the reading to be stored and acknowledged over TLS", func() bool { return value(r.m.Acked) == 1 })
	rs := r.store.readings()
	if len(rs) != 1 || rs[0].Device != "ox-1" || rs[0].Kind != vward.SpO2 || rs[0].Value != 94 {
		t.Errorf("stored %+v, want ox-1's SpO2 of 94", rs)
	}
}

// logBuffer collects what a logger writes, from any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// failsToConnect runs a source with cfg, which must not connect, until
// /readyz's check says every one of want, and returns what the source
// logged by then; the log must say it too.
func failsToConnect(t *testing.T, cfg Config, want ...string) string {
	t.Helper()
	r := newRig(t, ingest.Config{}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	var logged logBuffer
	src := NewSource(cfg, r.p, nil, r.broker, slog.New(slog.NewTextHandler(&logged, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _ = r.p.Run(ctx) }() // the source waits for it to drain
	go func() { done <- src.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after a cancel = %v, want nil: a TLS failure is retried, not fatal", err)
		}
	}()
	says := func(s string) bool {
		for _, w := range want {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		check := src.Check()
		if check != nil && says(check.Error()) && says(logged.String()) {
			break
		}
		if src.Connected() {
			t.Fatalf("connected to %s; want the connection refused", cfg.URL)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Check = %v, and the log:\n%s\nwant both to say %q", check, logged.String(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logged.String(), "cannot connect to the broker; retrying") {
		t.Errorf("log:\n%s\nwant the retrying line", logged.String())
	}
	return logged.String()
}

// A broker whose certificate another CA issued, or that names another
// host, is not talked to, and the reason is logged and shown on /readyz.
func TestSourceSaysTheBrokersCertificateDidNotVerify(t *testing.T) {
	broker, ca := tlsBroker(t)
	client := ca.Client(t, "vward").KeyPair(t)
	t.Run("another CA", func(t *testing.T) {
		other := testenv.NewCA(t, "another CA")
		failsToConnect(t, Config{URL: broker.TLSURL, ClientID: "vward-wrong-ca", TLS: &tls.Config{
			RootCAs: other.Pool, Certificates: []tls.Certificate{client},
		}}, "the broker's TLS certificate did not verify", "--mqtt-ca-file", "certificate signed by unknown authority")
	})
	t.Run("another host", func(t *testing.T) {
		failsToConnect(t, Config{URL: broker.TLSURL, ClientID: "vward-wrong-host", TLS: &tls.Config{
			RootCAs: ca.Pool, Certificates: []tls.Certificate{client}, ServerName: "broker.example.org",
		}}, "the broker's TLS certificate did not verify", "--mqtt-tls-server-name", "not broker.example.org")
	})
}

// Without a client certificate, a broker that requires one refuses the
// handshake, and the source says so.
func TestSourceSaysTheBrokerWantsAClientCertificate(t *testing.T) {
	broker, ca := tlsBroker(t)
	failsToConnect(t, Config{URL: broker.TLSURL, ClientID: "vward-no-cert", TLS: &tls.Config{RootCAs: ca.Pool}},
		"the broker refused the TLS handshake", "--mqtt-cert-file", "certificate required")
}

// A TLS URL pointed at a plain listener is named as that.
func TestSourceSaysTheBrokerDoesNotSpeakTLS(t *testing.T) {
	broker, ca := tlsBroker(t)
	failsToConnect(t, Config{URL: strings.Replace(broker.URL, "tcp://", "mqtts://", 1), ClientID: "vward-plain-port", TLS: &tls.Config{RootCAs: ca.Pool}},
		"the TLS handshake with the broker failed", "a TLS listener?")
}

func TestMQTTConfigValidateTLS(t *testing.T) {
	cfg := &tls.Config{}
	for _, tc := range []struct{ url, want string }{
		{"mqtts://broker:8883", ""},
		{"ssl://broker:8883", ""},
		{"tcp://broker:1883", `"tcp://broker:1883" is not TLS, but TLS settings were given`},
		{"mqtt://broker:1883", "is not TLS"},
	} {
		err := Config{URL: tc.url, ClientID: "vward-ingest", TLS: cfg}.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%s with TLS) = %v, want %q", tc.url, err, tc.want)
		}
	}
}

// Whatever the configuration says, vward speaks TLS 1.2 or later.
func TestSourceSpeaksTLS12OrLater(t *testing.T) {
	for _, cfg := range []*tls.Config{nil, {MinVersion: tls.VersionTLS10}, {MinVersion: tls.VersionTLS13}} {
		got := minTLS12(cfg).MinVersion
		want := uint16(tls.VersionTLS12)
		if cfg != nil && cfg.MinVersion > want {
			want = cfg.MinVersion
		}
		if got != want {
			t.Errorf("minTLS12(%+v).MinVersion = %#x, want %#x", cfg, got, want)
		}
	}
}
