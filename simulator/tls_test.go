package simulator_test

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/simulator"
)

// Devices connect over mutual TLS (the test CA's broker certificate for
// 127.0.0.1, a client certificate of that CA), publish, and every message
// is acknowledged; without the CA they are not connected.
func TestFleetOverTLS(t *testing.T) {
	ca := testenv.NewCA(t, "vward test CA")
	server := ca.Server(t)
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{TLS: &testenv.MosquittoTLS{
		CAFile: ca.CertFile, CertFile: server.CertFile, KeyFile: server.KeyFile, RequireCertificate: true,
	}})
	sc, err := simulator.Parse([]byte(`{"name":"tls","seed":3,"duration":"2s","clock":"real",
	  "cohorts":[{"count":2,"prefix":"tls","patient":{"devices":[{"kind":"hub","every":"1s"}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sc.Plan()
	if err != nil {
		t.Fatal(err)
	}
	var ids []simulator.Identity
	for _, d := range plan.Devices() {
		ids = append(ids, simulator.Identity{Device: d.ID})
	}
	cfg := &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Client(t, "devices").KeyPair(t)}}
	fleet, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: broker.TLSURL, TLS: cfg, ConnectTimeout: 10 * time.Second, Log: quietLog}, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	ctx := context.Background()
	if err := fleet.Connect(ctx); err != nil {
		t.Fatalf("connect over TLS: %v\nbroker log:\n%s", err, broker.Log())
	}
	clock := sc.NewClock(time.Now(), 0)
	var ds []simulator.DeviceSteps
	for _, s := range plan.Streams(clock) {
		ds = append(ds, simulator.DeviceSteps{Device: s.Device(), Steps: s})
	}
	if err := fleet.Play(ctx, clock, ds); err != nil {
		t.Fatal(err)
	}
	if unacked, _ := fleet.Drain(ctx, 10*time.Second); unacked > 0 {
		t.Errorf("%d messages never acknowledged over TLS", unacked)
	}
	if pub, acked := fleet.Stats.Published.Load(), fleet.Stats.Acked.Load(); pub < int64(len(ids)) || acked != pub {
		t.Errorf("over TLS: published %d, acked %d; want every device's readings acknowledged", pub, acked)
	}

	other := testenv.NewCA(t, "another CA")
	wrong, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: broker.TLSURL, TLS: &tls.Config{RootCAs: other.Pool}, ConnectTimeout: time.Second, Log: quietLog},
		[]simulator.Identity{{Device: "tls-wrong-ca"}})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if err := wrong.Connect(ctx); err == nil || wrong.Stats.Connected.Load() != 0 {
		t.Errorf("a fleet trusting another CA connected (err %v)", err)
	}

	if _, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: broker.URL, TLS: cfg}, ids); err == nil || !strings.Contains(err.Error(), "is not TLS") {
		t.Errorf("TLS settings with %s: %v, want an error saying the URL is not TLS", broker.URL, err)
	}
}
