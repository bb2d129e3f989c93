package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/broker"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/sqlitedb"
)

const (
	serviceUser     = "vward"
	servicePassword = "service-password"
	waitFor         = 10 * time.Second
)

type fixture struct {
	broker  *broker.Broker
	reg     *devices.Registry
	dbPath  string
	secrets map[vward.DeviceID]string
}

// start runs the embedded broker against a real registry with devices a
// and b registered.
func start(t *testing.T, svcPassword string) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vward.db")
	reg := openRegistry(t, path)
	f := &fixture{reg: reg, dbPath: path, secrets: map[vward.DeviceID]string{}}
	for _, id := range []vward.DeviceID{"dev-a", "dev-b"} {
		s, err := reg.AddDevice(context.Background(), id, "oximeter")
		if err != nil {
			t.Fatal(err)
		}
		f.secrets[id] = s
	}
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", ServiceUser: serviceUser, ServicePassword: svcPassword, Devices: reg},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	f.broker = b
	return f
}

func openRegistry(t *testing.T, path string) *devices.Registry {
	t.Helper()
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

var clientSeq atomic.Int64

// connect connects as user; it never reconnects on its own, so a
// connection the broker drops stays dropped.
func connect(url, user, pass string) (mqtt.Client, error) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("%s-%d", user, clientSeq.Add(1))).
		SetUsername(user).SetPassword(pass).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(waitFor))
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return nil, fmt.Errorf("connect as %s: timed out", user)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

func mustConnect(t *testing.T, url, user, pass string) mqtt.Client {
	t.Helper()
	c, err := connect(url, user, pass)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

type message struct {
	topic, payload string
	retained       bool // sent from the broker's retained store, not live
}

// listen subscribes c to filter and returns what arrives, in order.
func listen(t *testing.T, c mqtt.Client, filter string) <-chan message {
	t.Helper()
	ch := make(chan message, 64)
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) { ch <- message{m.Topic(), string(m.Payload()), m.Retained()} })
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	if granted := tok.(*mqtt.SubscribeToken).Result()[filter]; granted >= 0x80 {
		t.Fatalf("subscribe %s refused (0x%x)", filter, granted)
	}
	return ch
}

// subscribeGranted reports whether the broker granted a subscription.
func subscribeGranted(t *testing.T, c mqtt.Client, filter string) bool {
	t.Helper()
	tok := c.Subscribe(filter, 1, func(mqtt.Client, mqtt.Message) {})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return tok.(*mqtt.SubscribeToken).Result()[filter] < 0x80
}

// publish sends a QoS 1 message; the error is the broker's refusal, if any
// (MQTT 3.1.1 has no negative PUBACK: the broker drops the connection).
func publish(c mqtt.Client, topic, payload string) error {
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitFor) {
		return fmt.Errorf("publish %s: no PUBACK", topic)
	}
	return tok.Error()
}

// A device may publish only under its own id: device A's message on device
// B's topic never reaches the service account (so never reaches ingest),
// while A's own message does.
func TestBrokerDeviceSpeaksOnlyForItself(t *testing.T) {
	f := start(t, servicePassword)
	url := f.broker.URL()
	svc := mustConnect(t, url, serviceUser, servicePassword)
	readings := listen(t, svc, vward.ReadingsFilter)

	forger, err := connect(url, "dev-a", f.secrets["dev-a"])
	if err != nil {
		t.Fatal(err)
	}
	_ = publish(forger, vward.ReadingsTopic("dev-b"), "forged by dev-a")
	forger.Disconnect(100)
	if forger.IsConnectionOpen() {
		// mochi drops an MQTT 3.1.1 client whose QoS 1 publish its ACL
		// refuses; a broker that let it stay would be fine too, as long as
		// the message goes nowhere (checked below).
		t.Log("broker kept the forging client connected")
	}

	a := mustConnect(t, url, "dev-a", f.secrets["dev-a"])
	if err := publish(a, vward.ReadingsTopic("dev-a"), "own reading"); err != nil {
		t.Fatalf("dev-a publishing its own reading: %v", err)
	}
	// Messages from one broker to one subscriber arrive in order, so once
	// A's own message is here, the forged one would have been before it.
	select {
	case m := <-readings:
		if m.topic != vward.ReadingsTopic("dev-a") || m.payload != "own reading" {
			t.Fatalf("service account received %q on %s first; want only dev-a's own reading", m.payload, m.topic)
		}
	case <-time.After(waitFor):
		t.Fatal("dev-a's own reading never reached the service account")
	}
	select {
	case m := <-readings:
		t.Fatalf("service account also received %q on %s", m.payload, m.topic)
	default:
	}

	// Likewise a device answers questionnaires only on its own topic.
	answers := listen(t, svc, vward.QuestionnaireFilter)
	forger = mustConnect(t, url, "dev-a", f.secrets["dev-a"])
	_ = publish(forger, vward.QuestionnaireTopic("dev-b"), "answered for dev-b by dev-a")
	forger.Disconnect(100)
	a = mustConnect(t, url, "dev-a", f.secrets["dev-a"])
	if err := publish(a, vward.QuestionnaireTopic("dev-a"), "own answers"); err != nil {
		t.Fatalf("dev-a publishing its own questionnaire: %v", err)
	}
	select {
	case m := <-answers:
		if m.topic != vward.QuestionnaireTopic("dev-a") || m.payload != "own answers" {
			t.Fatalf("service account received %q on %s first; want only dev-a's own answers", m.payload, m.topic)
		}
	case <-time.After(waitFor):
		t.Fatal("dev-a's own questionnaire never reached the service account")
	}

	// A device reads only its own rejected topic, and may not write it.
	if subscribeGranted(t, a, vward.RejectedTopic("dev-b")) {
		t.Error("dev-a may subscribe to dev-b's rejected topic")
	}
	if subscribeGranted(t, a, vward.ReadingsFilter) {
		t.Error("dev-a may subscribe to every device's readings")
	}
	if subscribeGranted(t, a, "#") {
		t.Error("dev-a may subscribe to #")
	}
	notices := listen(t, a, vward.RejectedTopic("dev-a"))
	// The service account writes it.
	if err := publish(svc, vward.RejectedTopic("dev-a"), `{"code":"bad_readings"}`); err != nil {
		t.Fatalf("service account publishing a rejection: %v", err)
	}
	select {
	case m := <-notices:
		if m.payload != `{"code":"bad_readings"}` {
			t.Errorf("notice = %q", m.payload)
		}
	case <-time.After(waitFor):
		t.Fatal("dev-a never received its rejection notice")
	}
	// dev-a itself forges a notice; the broker refuses it (mochi drops the
	// connection), and had it not, dev-a would receive it on its own
	// subscription. A second connection cannot be used for this: a
	// device's connections share its client id, so the second would take
	// over the first.
	_ = publish(a, vward.RejectedTopic("dev-a"), "forged notice")
	select {
	case m := <-notices:
		t.Fatalf("dev-a received %q after forging a notice", m.payload)
	case <-time.After(time.Second):
	}
	again := mustConnect(t, url, "dev-a", f.secrets["dev-a"])
	notices = listen(t, again, vward.RejectedTopic("dev-a"))
	if err := publish(svc, vward.RejectedTopic("dev-a"), "real notice"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-notices:
		if m.payload != "real notice" {
			t.Errorf("dev-a received %q, want only the service account's notice", m.payload)
		}
	case <-time.After(waitFor):
		t.Fatal("dev-a never received the second notice")
	}
}

func TestBrokerRefusesWrongCredentials(t *testing.T) {
	f := start(t, servicePassword)
	url := f.broker.URL()
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong secret", "dev-a", "not-the-secret"},
		{"another device's secret", "dev-a", f.secrets["dev-b"]},
		{"unregistered device", "dev-z", f.secrets["dev-a"]},
		{"no username", "", f.secrets["dev-a"]},
		{"service account, wrong password", serviceUser, "guess"},
		{"service account, a device's secret", serviceUser, f.secrets["dev-a"]},
	} {
		if c, err := connect(url, tc.user, tc.pass); err == nil {
			c.Disconnect(100)
			t.Errorf("%s: connected, want refused", tc.name)
		}
	}
	mustConnect(t, url, "dev-a", f.secrets["dev-a"])
	mustConnect(t, url, serviceUser, servicePassword)
}

// A broker configured without a service password lets no one in as the
// service account.
func TestBrokerEmptyServicePasswordRefused(t *testing.T) {
	f := start(t, "")
	if c, err := connect(f.broker.URL(), serviceUser, ""); err == nil {
		c.Disconnect(100)
		t.Error("service account with an empty password connected")
	}
}

// A secret rotated by another process (the CLI, on the same SQLite file)
// takes effect in the running broker: the new one is accepted, the old one
// refused.
func TestBrokerRotatedSecret(t *testing.T) {
	f := start(t, servicePassword)
	url := f.broker.URL()
	old := f.secrets["dev-a"]
	mustConnect(t, url, "dev-a", old)

	cli := openRegistry(t, f.dbPath)
	fresh, err := cli.RotateSecret(context.Background(), "dev-a", "device reported lost")
	if err != nil {
		t.Fatal(err)
	}
	// The first refusal of the new secret makes the registry look for
	// changes (at most once a second), so it is accepted within a second or two.
	deadline := time.Now().Add(waitFor)
	for {
		c, err := connect(url, "dev-a", fresh)
		if err == nil {
			c.Disconnect(100)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotated secret still refused after %v: %v", waitFor, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c, err := connect(url, "dev-a", old); err == nil {
		c.Disconnect(100)
		t.Error("old secret still accepted after rotation")
	}

	// Rotated in the broker's own process, it applies at once.
	again, err := f.reg.RotateSecret(context.Background(), "dev-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := connect(url, "dev-a", fresh); err == nil {
		c.Disconnect(100)
		t.Error("secret replaced in-process still accepted")
	}
	mustConnect(t, url, "dev-a", again)
}

// connectAs connects with the given client id and session; it never
// reconnects on its own.
func connectAs(t *testing.T, url, clientID, user, pass string, clean bool, lost func()) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetUsername(user).SetPassword(pass).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(waitFor).
		SetConnectionLostHandler(func(mqtt.Client, error) {
			if lost != nil {
				lost()
			}
		}))
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connect as %s with client id %s: %v", user, clientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// A client id belongs to its account. A device that connects with vward's
// client id, or another device's, gets its own device id instead: vward
// keeps its connection and its session, and every reading reaches it.
func TestBrokerClientIDTakeover(t *testing.T) {
	f := start(t, servicePassword)
	url := f.broker.URL()
	var svcLost, aLost atomic.Bool
	svc := connectAs(t, url, "vward-ingest", serviceUser, servicePassword, false, func() { svcLost.Store(true) })
	got := listen(t, svc, vward.ReadingsFilter)
	a := connectAs(t, url, "dev-a-client", "dev-a", f.secrets["dev-a"], true, func() { aLost.Store(true) })

	const n = 20
	for i := range n {
		if i == n/2 {
			// dev-b poses as vward, then as dev-a.
			connectAs(t, url, "vward-ingest", "dev-b", f.secrets["dev-b"], false, nil)
			connectAs(t, url, "dev-a-client", "dev-b", f.secrets["dev-b"], false, nil)
		}
		if err := publish(a, vward.ReadingsTopic("dev-a"), fmt.Sprint(i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	for i := range n {
		select {
		case m := <-got:
			if m.payload != fmt.Sprint(i) {
				t.Fatalf("message %d: got %q", i, m.payload)
			}
		case <-time.After(waitFor):
			t.Fatalf("vward received %d of %d acknowledged readings", i, n)
		}
	}
	if svcLost.Load() || aLost.Load() {
		t.Errorf("connections lost: vward %v, dev-a %v; a device may not take over another's client id", svcLost.Load(), aLost.Load())
	}
}

// vward's own client ids begin with vward.ServiceIDPrefix: the service
// account with any other is refused.
func TestBrokerServiceClientIDPrefix(t *testing.T) {
	f := start(t, servicePassword)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(f.broker.URL()).SetClientID("ingest").
		SetUsername(serviceUser).SetPassword(servicePassword).SetAutoReconnect(false).SetConnectTimeout(waitFor))
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() == nil {
		c.Disconnect(100)
		t.Fatal("the service account connected with client id \"ingest\"")
	}
}

// Before sign-in a client can neither make the broker reserve memory it
// only claims, nor hold a connection open without sending its CONNECT.
func TestBrokerRefusesHugeAndSilentConnects(t *testing.T) {
	f := start(t, servicePassword)
	addr := f.broker.Addr()
	closedWithin := func(t *testing.T, what string, send []byte, within time.Duration) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		_ = c.SetReadDeadline(began.Add(within))
		_, err = c.Read(make([]byte, 16))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: the connection still open after %s", what, within)
		}
	}
	// CONNECT claiming 256 MB: fixed header 0x10, remaining length 0x0FFFFFFF.
	closedWithin(t, "a 256 MB CONNECT", []byte{0x10, 0xff, 0xff, 0xff, 0x7f, 0x00}, 2*time.Second)
	closedWithin(t, "no CONNECT", nil, broker.ConnectTimeout+3*time.Second)
	// Half a CONNECT: a header promising 100 bytes, then nothing.
	closedWithin(t, "half a CONNECT", []byte{0x10, 100, 0x00, 0x04, 'M', 'Q'}, broker.ConnectTimeout+3*time.Second)
}

// An MQTT 3.1.1 client refused at sign-in gets a 3.1.1 return code (5,
// not authorized), not an MQTT 5 reason code it cannot read.
func TestBrokerRefusesV311WithV311Code(t *testing.T) {
	f := start(t, servicePassword)
	c, err := net.Dial("tcp", f.broker.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var body []byte
	body = append(body, mqttString("MQTT")...)
	body = append(body, 4, 0xC2, 0, 30) // 3.1.1; username, password, clean session; keepalive 30 s
	body = append(body, mqttString("dev-a")...)
	body = append(body, mqttString("dev-a")...)
	body = append(body, mqttString("wrong secret")...)
	if _, err := c.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	if ack[0] != 0x20 || ack[1] != 2 || ack[3] != 5 {
		t.Errorf("CONNACK % x, want 20 02 00 05 (3.1.1: not authorized)", ack)
	}
}

// A device may publish only the protocol's topics: anything else under its
// own id (a typo, an empty level, a long junk topic) is refused, and an
// MQTT 3.1.1 device learns it by losing its connection, never by a PUBACK
// of a message that then goes nowhere.
func TestBrokerOnlyTheProtocolsTopics(t *testing.T) {
	f := start(t, servicePassword)
	url := f.broker.URL()
	svc := mustConnect(t, url, serviceUser, servicePassword)
	all := listen(t, svc, "vward/v1/devices/#")
	for _, topic := range []string{
		vward.ReadingsTopic("dev-a") + "/extra",
		"vward/v1/devices/dev-a//readings",
		"vward/v1/devices/dev-a/" + strings.Repeat("x", 60000),
		"vward/v1/devices/dev-a/reading",
	} {
		c, err := connect(url, "dev-a", f.secrets["dev-a"])
		if err != nil {
			t.Fatal(err)
		}
		err = publish(c, topic, "typo")
		if err == nil && c.IsConnectionOpen() {
			t.Errorf("publish to %.60s: acknowledged and still connected; want it refused", topic)
		}
		c.Disconnect(100)
	}
	a := mustConnect(t, url, "dev-a", f.secrets["dev-a"])
	if err := publish(a, vward.ReadingsTopic("dev-a"), "own"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-all:
		if m.topic != vward.ReadingsTopic("dev-a") {
			t.Fatalf("vward received %.60s first, want only dev-a's readings", m.topic)
		}
	case <-time.After(waitFor):
		t.Fatal("dev-a's reading never arrived")
	}
}

// Only a device's status is retained: a reading published with the retain
// flag is delivered but not kept for later subscribers. A message may also
// reach the new subscriber live (the broker acknowledges a publish before
// it fans it out), so only what comes with the retain flag counts.
func TestBrokerRetainsOnlyStatus(t *testing.T) {
	f := start(t, servicePassword)
	url := f.broker.URL()
	a := mustConnect(t, url, "dev-a", f.secrets["dev-a"])
	for _, topic := range []string{vward.ReadingsTopic("dev-a"), vward.StatusTopic("dev-a")} {
		if tok := a.Publish(topic, 1, true, "retained?"); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("publish retained to %s: %v", topic, tok.Error())
		}
	}
	svc := mustConnect(t, url, serviceUser, servicePassword)
	got := listen(t, svc, "vward/v1/devices/+/+")
	var retained []string
	deadline := time.After(waitFor)
	settle := time.After(500 * time.Millisecond)
	for quiet := false; !quiet; {
		select {
		case m := <-got:
			if m.retained {
				retained = append(retained, m.topic)
			}
		case <-settle:
			quiet = len(retained) > 0
			settle = time.After(500 * time.Millisecond)
		case <-deadline:
			t.Fatal("the retained status was not kept")
		}
	}
	if len(retained) != 1 || retained[0] != vward.StatusTopic("dev-a") {
		t.Fatalf("retained for a new subscriber: %v, want only %s", retained, vward.StatusTopic("dev-a"))
	}
}

// mqttString is an MQTT length-prefixed string.
func mqttString(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// Close ends every connection and returns, whatever state the connection
// is in: one that has sent nothing, one halfway through its CONNECT, and a
// signed-in client with no keepalive that has stopped reading while the
// broker has more to send it than a socket holds.
func TestBrokerCloseEndsEveryConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vward.db")
	reg := openRegistry(t, path)
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", ServiceUser: serviceUser, ServicePassword: servicePassword, Devices: reg},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(send []byte) net.Conn {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
		return c
	}
	silent := dial(nil)
	half := dial([]byte{0x10, 100, 0x00, 0x04, 'M', 'Q'})

	var hello []byte
	hello = append(hello, mqttString("MQTT")...)
	hello = append(hello, 4, 0xC2, 0, 0) // 3.1.1; username, password, clean session; no keepalive
	hello = append(hello, mqttString(vward.ServiceIDPrefix+"-stalled")...)
	hello = append(hello, mqttString(serviceUser)...)
	hello = append(hello, mqttString(servicePassword)...)
	stalled := dial(append([]byte{0x10, byte(len(hello))}, hello...))
	_ = stalled.SetReadDeadline(time.Now().Add(waitFor))
	if _, err := io.ReadFull(stalled, make([]byte, 4)); err != nil {
		t.Fatalf("read CONNACK: %v", err)
	}
	sub := append([]byte{0, 1}, mqttString(vward.ReadingsTopic("dev-a"))...)
	sub = append(sub, 0)
	if _, err := stalled.Write(append([]byte{0x82, byte(len(sub))}, sub...)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(stalled, make([]byte, 5)); err != nil {
		t.Fatalf("read SUBACK: %v", err)
	}
	// From here the stalled client reads nothing more.
	pub, err := connect(b.URL(), serviceUser, servicePassword)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 100<<10)
	for range 300 { // 30 MB, more than loopback's socket buffers hold
		if tok := pub.Publish(vward.ReadingsTopic("dev-a"), 0, false, big); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	pub.Disconnect(100)

	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close has not returned after 30 s")
	}
	for name, c := range map[string]net.Conn{"silent": silent, "half a CONNECT": half, "stalled": stalled} {
		_ = c.SetReadDeadline(time.Now().Add(waitFor))
		var err error
		for err == nil { // the stalled client has data to drain before the close
			_, err = c.Read(make([]byte, 64<<10))
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: still open after Close", name)
		}
	}
	if c, err := net.DialTimeout("tcp", b.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the broker still accepts connections after Close")
	}
}
