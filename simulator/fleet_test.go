package simulator_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/simulator"
)

// fleetSize is the number of devices TestFleetOfThousands connects; set
// VWARD_SIM_FLEET to try more (docs/simulator.md has the 20,000 run).
func fleetSize(t *testing.T) int {
	if s := os.Getenv("VWARD_SIM_FLEET"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("VWARD_SIM_FLEET=%q is not a positive number", s)
		}
		return n
	}
	return 4000
}

// A fleet of thousands of devices, each its own MQTT connection, publishes
// to real Mosquitto without an error: every message is PUBACKed, and a
// subscriber receives every one exactly once.
func TestFleetOfThousands(t *testing.T) {
	n := fleetSize(t)
	broker := testenv.StartMosquitto(t)

	var received atomic.Int64
	var mu sync.Mutex
	seen := make(map[string]bool, n*6)
	dups := 0
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("fleet-counter").SetOrderMatters(false))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(250)
	tok := sub.Subscribe(vward.ReadingsFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		var p struct {
			MsgID string `json:"msg_id"`
		}
		_ = json.Unmarshal(m.Payload(), &p)
		mu.Lock()
		if seen[p.MsgID] {
			dups++
		}
		seen[p.MsgID] = true
		mu.Unlock()
		received.Add(1)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	sc, err := simulator.Parse(fmt.Appendf(nil, `{"name":"load","seed":5,"duration":"10s","clock":"real",
	  "cohorts":[{"count":%d,"prefix":"load","patient":{"devices":[{"kind":"hub","every":"2s"}]}}]}`, n))
	if err != nil {
		t.Fatal(err)
	}
	plan, _ := sc.Plan()
	var ids []simulator.Identity
	for _, d := range plan.Devices() {
		ids = append(ids, simulator.Identity{Device: d.ID}) // anonymous broker
	}
	fleet, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: broker.URL, Ramp: 2 * time.Second}, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	ctx := context.Background()
	began := time.Now()
	if err := fleet.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	connected := time.Since(began)
	clock := sc.NewClock(time.Now(), 0)
	var ds []simulator.DeviceSteps
	for _, s := range plan.Streams(clock) {
		ds = append(ds, simulator.DeviceSteps{Device: s.Device(), Steps: s})
	}
	if err := fleet.Play(ctx, clock, ds); err != nil {
		t.Fatal(err)
	}
	if unacked, _ := fleet.Drain(ctx, 30*time.Second); unacked > 0 {
		t.Errorf("%d messages never PUBACKed", unacked)
	}
	st := &fleet.Stats
	pub := st.Published.Load()
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < pub && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d devices connected in %v; %s", n, connected.Round(time.Millisecond), fleet.Line(0))
	if pub < int64(n)*4 {
		t.Errorf("published %d messages, want at least %d", pub, n*4)
	}
	if acked := st.Acked.Load(); acked != pub {
		t.Errorf("acked %d of %d published", acked, pub)
	}
	if e := st.Errors(); e != 0 || st.Resent.Load() != 0 {
		t.Errorf("errors: refused %d, connect failures %d, lost %d, write errors %d, resent %d",
			st.Refused.Load(), st.ConnectFailures.Load(), st.Lost.Load(), st.WriteErrors.Load(), st.Resent.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if got := received.Load(); got != pub || len(seen) != int(pub) || dups != 0 {
		t.Errorf("subscriber received %d messages (%d distinct msg_ids, %d duplicates), want the %d published once each", got, len(seen), dups, pub)
	}
}

// Devices with bad credentials are named, with the broker's reason.
func TestFleetRefusedCredentials(t *testing.T) {
	passwd := testenv.PasswordFile(t, map[string]string{"ok-1": "right"})
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{PasswordFile: passwd})
	fleet, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: broker.URL, ConnectTimeout: 2 * time.Second, Log: quietLog},
		[]simulator.Identity{{Device: "ok-1", Password: "right"}, {Device: "bad-1", Password: "wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	err = fleet.Connect(context.Background())
	if err == nil {
		t.Fatal("connected a device with a wrong password")
	}
	want := "1 of 2 devices are not connected: 1 refused by the broker: bad-1 (broker refused the connection: "
	if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("error = %q, want it to start %q", got, want)
	}
	if fleet.Stats.Connected.Load() != 1 {
		t.Errorf("connected = %d, want ok-1 connected", fleet.Stats.Connected.Load())
	}
}

// Play takes the steps due when it wakes in order of due time, ties in the
// order of the streams. With one worker that is the order in which the
// devices are asked for their next step. No broker is needed: the devices
// are never connected, so their messages only queue.
func TestFleetPlayOrder(t *testing.T) {
	const n = 500
	var ids []simulator.Identity
	for i := range n {
		ids = append(ids, simulator.Identity{Device: vward.DeviceID(fmt.Sprintf("order-%03d", i))})
	}
	fleet, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: "tcp://127.0.0.1:1", Workers: 1, Log: quietLog}, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	// Every step is long due, so the scheduler's first wake takes them all.
	clock := simulator.Clock{Mode: simulator.RealClock, Speed: 1, Origin: time.Now().Add(-time.Hour)}
	var (
		mu    sync.Mutex
		taken []int
		ds    []simulator.DeviceSteps
		want  []int
	)
	for i, id := range ids {
		at := time.Duration(i*7919%13) * time.Second // 13 due times: many ties
		ds = append(ds, simulator.DeviceSteps{Device: id.Device, Steps: &oneStep{
			st: simulator.Step{At: at, Op: simulator.Publish, Device: id.Device, Payload: []byte("{}")},
			took: func() {
				mu.Lock()
				taken = append(taken, i)
				mu.Unlock()
			},
		}})
		want = append(want, i)
	}
	slices.SortStableFunc(want, func(a, b int) int {
		return cmp.Compare(ds[a].Steps.(*oneStep).st.At, ds[b].Steps.(*oneStep).st.At)
	})
	if err := fleet.Play(context.Background(), clock, ds); err != nil {
		t.Fatal(err)
	}
	if got := fleet.Stats.Published.Load(); got != n {
		t.Errorf("published %d, want %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(taken, want) {
		t.Errorf("steps taken in the order %v, want %v", taken, want)
	}
}

// oneStep is a device with a single step, which calls took once it is taken.
type oneStep struct {
	st    simulator.Step
	calls int
	took  func()
}

func (s *oneStep) Next() (simulator.Step, bool) {
	s.calls++
	if s.calls == 1 {
		return s.st, true
	}
	s.took()
	return simulator.Step{}, false
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))
