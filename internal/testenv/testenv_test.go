package testenv_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	influxdb2 "github.com/influxdata/influxdb-client-go/v2"

	"github.com/vward/vward/internal/testenv"
)

const waitFor = 10 * time.Second

// connect returns a connected paho client; it is disconnected at cleanup.
func connect(t *testing.T, broker *testenv.Mosquitto, clientID string, clean bool, onMessage mqtt.MessageHandler) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().
		AddBroker(broker.URL).
		SetClientID(clientID).
		SetCleanSession(clean).
		SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).
		// Messages queued for a persistent session arrive before the test
		// can re-subscribe, so they only reach the default handler.
		SetDefaultPublishHandler(onMessage)
	c := mqtt.NewClient(opts)
	wait(t, c.Connect(), "connect "+clientID)
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func wait(t *testing.T, tok mqtt.Token, what string) {
	t.Helper()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("%s: no answer from the broker within %v", what, waitFor)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func receive(t *testing.T, ch <-chan mqtt.Message, broker *testenv.Mosquitto) mqtt.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitFor):
		t.Fatalf("no message within %v; broker log:\n%s", waitFor, broker.Log())
		return nil
	}
}

func TestMosquittoQoS1RoundTrip(t *testing.T) {
	t.Parallel()
	broker := testenv.StartMosquitto(t)

	got := make(chan mqtt.Message, 1)
	sub := connect(t, broker, "testenv-sub", true, nil)
	wait(t, sub.Subscribe("vward/v1/devices/ox-1/readings", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }), "subscribe")

	pub := connect(t, broker, "testenv-pub", true, nil)
	wait(t, pub.Publish("vward/v1/devices/ox-1/readings", 1, false, `{"msg_id":"m1"}`), "publish")

	m := receive(t, got, broker)
	if string(m.Payload()) != `{"msg_id":"m1"}` || m.Qos() != 1 {
		t.Fatalf("got %q at QoS %d, want the published payload at QoS 1", m.Payload(), m.Qos())
	}
}

// A QoS 1 message queued for an offline persistent session must survive a
// clean broker restart: that is what lets ingest stop acknowledging while
// InfluxDB is down without losing readings if the broker restarts meanwhile.
func TestMosquittoRestartKeepsQueuedMessage(t *testing.T) {
	t.Parallel()
	broker := testenv.StartMosquitto(t)
	const (
		topic = "vward/v1/devices/ox-2/readings"
		id    = "testenv-ingest"
	)

	// Create the persistent session and its subscription, then go offline.
	sub := connect(t, broker, id, false, func(mqtt.Client, mqtt.Message) {})
	wait(t, sub.Subscribe(topic, 1, nil), "subscribe")
	sub.Disconnect(100)

	// PUBACK from the broker means it has queued the message for the session.
	pub := connect(t, broker, "testenv-device", true, nil)
	wait(t, pub.Publish(topic, 1, false, "queued while offline"), "publish")
	pub.Disconnect(100)

	broker.Stop(t)
	broker.Start(t)

	got := make(chan mqtt.Message, 1)
	connect(t, broker, id, false, func(_ mqtt.Client, m mqtt.Message) { got <- m })
	if m := receive(t, got, broker); string(m.Payload()) != "queued while offline" {
		t.Fatalf("got %q after restart, want the queued message", m.Payload())
	}
	if !strings.Contains(broker.Log(), "Saving in-memory database to") {
		t.Errorf("broker log does not show persistence being written:\n%s", broker.Log())
	}
}

func TestMosquittoPasswordFile(t *testing.T) {
	t.Parallel()
	passwd := testenv.PasswordFile(t, map[string]string{"vward": "s3cret"})
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{PasswordFile: passwd})

	anon := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("anon").SetAutoReconnect(false))
	tok := anon.Connect()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("anonymous connect: no answer within %v", waitFor)
	}
	if tok.Error() == nil {
		anon.Disconnect(100)
		t.Fatal("anonymous client connected to a broker with a password file")
	}
	ok := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("svc").
		SetUsername("vward").SetPassword("s3cret").SetAutoReconnect(false))
	wait(t, ok.Connect(), "connect with password")
	ok.Disconnect(100)
}

func TestInfluxWriteQueryRestart(t *testing.T) {
	t.Parallel()
	db := testenv.StartInflux(t)

	client := influxdb2.NewClient(db.URL, db.Token)
	defer client.Close()
	ts := time.Now().UTC().Truncate(time.Millisecond)
	p := influxdb2.NewPoint("testenv",
		map[string]string{"device_id": "ox-3"},
		map[string]any{"spo2": 94.0, "supplemental_oxygen": false},
		ts)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := client.WriteAPIBlocking(db.Org, db.Bucket).WritePoint(ctx, p); err != nil {
		t.Fatalf("write point: %v\ninfluxd log:\n%s", err, db.Log())
	}

	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "testenv" and r._field == "spo2")`, db.Bucket)
	check := func(when string) {
		t.Helper()
		rows := db.Query(t, flux)
		if len(rows) != 1 {
			t.Fatalf("%s: got %d rows, want 1: %v", when, len(rows), rows)
		}
		r := rows[0]
		if r["_value"] != 94.0 || r["device_id"] != "ox-3" {
			t.Errorf("%s: got row %v, want _value 94.0 (float64) and device_id ox-3", when, r)
		}
		if tm, ok := r["_time"].(time.Time); !ok || !tm.Equal(ts) {
			t.Errorf("%s: got _time %v (%T), want %v", when, r["_time"], r["_time"], ts)
		}
	}
	check("after write")

	db.Stop(t)
	if _, err := db.QueryContext(ctx, flux); err == nil {
		t.Fatal("query succeeded while influxd was stopped")
	}
	db.Start(t)
	check("after restart")
}

func TestFreePortIsBindableAndUnique(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p := testenv.FreePort(t)
		if seen[p] {
			t.Fatalf("FreePort returned %d twice", p)
		}
		seen[p] = true
	}
}

func TestChromiumRuns(t *testing.T) {
	t.Parallel()
	path := testenv.Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Chromium") {
		t.Fatalf("%s --version: %v\n%s", path, err, out)
	}
}
