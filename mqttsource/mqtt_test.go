package mqttsource

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vward/vward"
	"github.com/vward/vward/broker"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/testenv"
)

// runSource runs a pipeline and its MQTT source until the returned stop is
// called, or the test ends; stop waits for both to return, once.
func runSource(t *testing.T, r *rig, cfg Config) (*Source, func()) {
	t.Helper()
	src := NewSource(cfg, r.p, r.notices, r.broker, quietLog)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = r.p.Run(ctx); done <- struct{}{} }()
	go func() { _ = src.Run(ctx); done <- struct{}{} }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			for range 2 {
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					t.Error("pipeline or source did not stop within 20s")
					return
				}
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(20 * time.Second)
	for src.Check() != nil {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("source not connected and subscribed within 20s: %v", src.Check())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return src, stop
}

// A restarted process resumes its session, and the broker resends the
// messages the last run received and never acknowledged right after
// CONNACK, before the new process has subscribed. They must reach the
// pipeline (and be stored and acknowledged), not be dropped by the client
// for want of a route, which would strand them in the session; and once
// acknowledged, the broker must not resend them again.
//
// Both brokers vward runs with: Mosquitto, and the embedded broker of
// `vward demo`.
func TestSourceTakesResentMessagesBeforeSubscribing(t *testing.T) {
	t.Run("mosquitto", func(t *testing.T) {
		mosquitto := testenv.StartMosquitto(t)
		reg := registry(t, now.Add(-time.Hour), now.Add(time.Hour))
		device := mqtt.NewClientOptions().AddBroker(mosquitto.URL).SetClientID("ingest-resume-device")
		testResentBeforeSubscribing(t, reg, Config{URL: mosquitto.URL, ClientID: "vward-ingest-resume"}, device)
	})
	t.Run("embedded", func(t *testing.T) {
		reg := registry(t, now.Add(-time.Hour), now.Add(time.Hour))
		secret, err := reg.RotateSecret(context.Background(), "ox-1", "test")
		if err != nil {
			t.Fatal(err)
		}
		const user, password = "vward", "service-secret"
		b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", ServiceUser: user, ServicePassword: password, Devices: reg}, quietLog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		device := mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("ox-1").SetUsername("ox-1").SetPassword(secret)
		testResentBeforeSubscribing(t, reg, Config{URL: b.URL(), Username: user, Password: password, ClientID: "vward-ingest-resume"}, device)
	})
}

func testResentBeforeSubscribing(t *testing.T, reg *devices.Registry, cfg Config, device *mqtt.ClientOptions) {
	const n = 50

	// First run: receives n messages, cannot store them, stops without
	// acknowledging.
	first := newRig(t, ingest.Config{FlushTimeout: 100 * time.Millisecond}, reg)
	first.store.gate = make(chan struct{}) // never opens
	_, stopFirst := runSource(t, first, cfg)
	pub := mqtt.NewClient(device)
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	for i := range n {
		id := fmt.Sprintf("m%03d", i)
		tok := pub.Publish(vward.ReadingsTopic("ox-1"), 1, false, v1(id, now.Add(-time.Duration(i)*time.Second), vward.SpO2, 95))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", id, tok.Error())
		}
	}
	waitFor(t, "the first run to hold every message", func() bool { return first.p.InFlight() == n })
	stopFirst()
	if a := value(first.m.Acked); a != 0 {
		t.Fatalf("first run acknowledged %v messages it could not store", a)
	}

	// Second run, a new client as after a restart, slow to subscribe.
	slow := cfg
	slow.URL = slowSubscribe(t, cfg.URL, 500*time.Millisecond)
	second := newRig(t, ingest.Config{}, reg)
	_, stopSecond := runSource(t, second, slow)
	waitFor(t, fmt.Sprintf("the second run to store all %d resent messages", n), func() bool {
		return value(second.m.Acked) == n
	})
	stopSecond()
	if got := len(second.store.readings()); got != n {
		t.Errorf("second run stored %d readings, want %d", got, n)
	}
	if r := value(second.m.Redelivered); r != n {
		t.Errorf("redelivered = %v, want %d (the broker's DUP flag)", r, n)
	}

	// Third run: the second's acknowledgements reached the broker, which
	// has nothing left to resend.
	third := newRig(t, ingest.Config{}, reg)
	runSource(t, third, cfg)
	time.Sleep(time.Second)
	if got := value(third.broker.Delivered.WithLabelValues(cfg.ClientIDs()[0])); got != 0 {
		t.Errorf("third run was delivered %v messages; the second run's acknowledgements did not reach the broker", got)
	}
}

// slowSubscribe is a proxy to the broker at brokerURL that passes each
// SUBSCRIBE its client sends on only after delay, as if the client had
// sent it then: what the client sends meanwhile (its acknowledgements)
// goes first. It widens the window in which a resumed session's messages
// arrive before the subscription. It returns the proxy's URL.
func slowSubscribe(t *testing.T, brokerURL string, delay time.Duration) string {
	t.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			upstream, err := net.Dial("tcp", u.Host)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, upstream)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(client, upstream)
				client.Close()
			})
			wg.Go(func() {
				defer upstream.Close()
				var wmu sync.Mutex // one packet at a time
				send := func(p []byte) error {
					wmu.Lock()
					defer wmu.Unlock()
					_, err := upstream.Write(p)
					return err
				}
				r := bufio.NewReader(client)
				for {
					p, err := readPacket(r)
					if err != nil {
						return
					}
					if p[0]>>4 == packets.Subscribe {
						wg.Go(func() {
							time.Sleep(delay)
							_ = send(p)
						})
						continue
					}
					if err := send(p); err != nil {
						return
					}
				}
			})
		}
	})
	return "tcp://" + ln.Addr().String()
}

// readPacket reads one MQTT packet, as sent.
func readPacket(r *bufio.Reader) ([]byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	p := []byte{first}
	n, _, err := packets.DecodeLength(byteRecorder{r, &p})
	if err != nil {
		return nil, err
	}
	head := len(p)
	p = append(p, make([]byte, n)...)
	_, err = io.ReadFull(r, p[head:])
	return p, err
}

// byteRecorder is a byte reader that keeps what it read.
type byteRecorder struct {
	r    io.ByteReader
	read *[]byte
}

func (b byteRecorder) ReadByte() (byte, error) {
	c, err := b.r.ReadByte()
	if err == nil {
		*b.read = append(*b.read, c)
	}
	return c, err
}

// The broker marks a status it replays on subscribing as retained, and a
// status published while vward listens as not: with no ts, the first is
// old news to alerting (at zero), the second is the device heard from now.
func TestSourceTellsReplayedStatusFromLive(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	r := newRig(t, ingest.Config{}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	dev := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("ingest-status-device"))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer dev.Disconnect(100)
	publish := func(payload string) {
		t.Helper()
		if tok := dev.Publish(vward.StatusTopic("ox-1"), 1, true, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish status: %v", tok.Error())
		}
	}
	publish("offline") // retained before vward subscribes
	_, stop := runSource(t, r, Config{URL: broker.URL, ClientID: "vward-ingest-status"})
	defer stop()
	waitFor(t, "the replayed status", func() bool { _, st := r.obs.calls(); return len(st) == 1 })
	publish("online")
	waitFor(t, "the live status", func() bool { _, st := r.obs.calls(); return len(st) == 2 })
	_, st := r.obs.calls()
	if st[0] != "ox-1 p1 w1 online=false at=0001-01-01T00:00:00Z" {
		t.Errorf("replayed status reached alerting as %q, want at zero (time unknown)", st[0])
	}
	if !strings.HasPrefix(st[1], "ox-1 p1 w1 online=true at=") || strings.HasSuffix(st[1], "at=0001-01-01T00:00:00Z") {
		t.Errorf("live status reached alerting as %q, want its receipt time", st[1])
	}
}

// The pipeline's rejections reach the device on its rejected topic,
// through the source's connection.
func TestSourceTellsDevicesWhyTheirMessagesWereRefused(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	r := newRig(t, ingest.Config{}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	_, stop := runSource(t, r, Config{URL: broker.URL, ClientID: "vward-ingest-notices"})
	defer stop()
	dev := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("ingest-notices-device"))
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer dev.Disconnect(100)
	notices := make(chan []byte, 4)
	if tok := dev.Subscribe(vward.RejectedTopic("ox-1"), 1, func(_ mqtt.Client, m mqtt.Message) { notices <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe to the rejected topic: %v", tok.Error())
	}
	payload := `{"msg_id":"bad-1","ts":"` + now.Format(time.RFC3339) + `","readings":[{"type":"spo2","value":"ninety"}]}`
	if tok := dev.Publish(vward.ReadingsTopic("ox-1"), 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case b := <-notices:
		var n struct {
			MsgID        string `json:"msg_id"`
			Code, Reason string
		}
		if err := json.Unmarshal(b, &n); err != nil || n.MsgID != "bad-1" || n.Code != ingest.RejectReadings || n.Reason == "" {
			t.Errorf("notice %s (%v), want bad-1's bad_readings and why", b, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no rejection notice within 15s")
	}
}

// paho's client can be told that a packet was sent and received
// (keepaliveClock): the subscriber reads its messages and writes their
// acknowledgements without paho, and without it paho would ping every
// keepalive period. A paho upgrade that drops it fails here.
func TestPahoClientHasAKeepaliveClock(t *testing.T) {
	if _, ok := mqtt.NewClient(mqtt.NewClientOptions()).(keepaliveClock); !ok {
		t.Fatal("paho's client has no UpdateLastSent or UpdateLastReceived")
	}
}

// A broker that refuses vward's credentials is a configuration error: the
// source stops at once with an error that says so, rather than retrying in
// silence; an unreachable broker is weather: the source keeps trying and
// /readyz says why.
func TestSourceSaysWhyItCannotConnect(t *testing.T) {
	passwd := testenv.PasswordFile(t, map[string]string{"vward": "right"})
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{PasswordFile: passwd})
	r := newRig(t, ingest.Config{}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	src := NewSource(Config{URL: broker.URL, Username: "vward", Password: "wrong", ClientID: "vward-refused"}, r.p, nil, r.broker, quietLog)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := src.Run(ctx)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "refused vward's connection") || !strings.Contains(err.Error(), "not Authorized") {
		t.Fatalf("Run with a wrong password = %v, want it to stop and say the broker refused the credentials", err)
	}

	closed := fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))
	src = NewSource(Config{URL: closed, Username: "vward", Password: "right", ClientID: "vward-unreachable"}, r.p, nil, r.broker, quietLog)
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _ = r.p.Run(ctx) }() // the source waits for it to drain
	go func() { done <- src.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if e := src.Check(); e != nil && strings.Contains(e.Error(), "connection refused") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Check with the broker unreachable = %v, want the reason", src.Check())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after a cancel with the broker unreachable = %v, want nil", err)
	}
}

func TestMQTTConfigValidate(t *testing.T) {
	for _, tc := range []struct{ url, id, want string }{
		{"tcp://127.0.0.1:1883", "vward-ingest", ""},
		{"ssl://broker:8883", "vward-x", ""},
		{"http://127.0.0.1:1883", "vward-ingest", `scheme "http" is not an MQTT one`},
		{"127.0.0.1:1883", "vward-ingest", `MQTT broker URL "127.0.0.1:1883"`},
		{"localhost:1883", "vward-ingest", `scheme "localhost" is not an MQTT one`},
		{"tcp://broker", "vward-ingest", "give the host and port"},
		{"tcp://broker:1883", "ingest", `must begin with "vward"`},
	} {
		err := Config{URL: tc.url, ClientID: tc.id}.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%s, %s) = %v, want %q", tc.url, tc.id, err, tc.want)
		}
	}
}
