// Package deploy_test checks the production broker files in deploy/mosquitto
// against the real Mosquitto that the other tests use, so a typo or a too
// broad ACL is caught here rather than in a deployment.
package deploy_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward/internal/testenv"
)

const waitFor = 10 * time.Second

// production runs deploy/mosquitto/mosquitto.conf with only its container
// paths and ports rewritten, so Mosquitto itself validates every other line,
// with devices' accounts on the devices' listener and service's on vward's.
// It returns the two listeners' URLs and the broker's log.
func production(t *testing.T, devices, service map[string]string) (deviceURL, serviceURL string, brokerLog func() string) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
	}
	if _, err := os.Stat(bin); err != nil {
		// StartMosquitto applies the skip-or-fail rule for us.
		testenv.StartMosquitto(t)
	}
	src, err := os.ReadFile("mosquitto/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	acl, err := filepath.Abs("mosquitto/acl")
	if err != nil {
		t.Fatal(err)
	}
	devicePort, servicePort := testenv.FreePort(t), testenv.FreePort(t)
	conf := string(src)
	for old, repl := range map[string]string{
		"listener 1883\n":                                  fmt.Sprintf("listener %d 127.0.0.1\n", devicePort),
		"listener 1884\n":                                  fmt.Sprintf("listener %d 127.0.0.1\n", servicePort),
		"/mosquitto/data/":                                 dir + "/",
		"password_file /mosquitto/config/passwd\n":         "password_file " + testenv.PasswordFile(t, devices) + "\n",
		"password_file /mosquitto/config/passwd.service\n": "password_file " + testenv.PasswordFile(t, service) + "\n",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("mosquitto.conf no longer contains %q; update this test", old)
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	conf = strings.ReplaceAll(conf, "acl_file /mosquitto/config/acl\n", "acl_file "+acl+"\n")
	if strings.Contains(stripComments(conf), " /mosquitto/") {
		t.Fatalf("mosquitto.conf has a container path this test does not rewrite:\n%s", conf)
	}
	if os.Geteuid() == 0 {
		conf += "user root\n" // see internal/testenv: Mosquitto drops root otherwise
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A file, not a buffer: failure messages read it while the broker
	// may still be writing.
	logPath := filepath.Join(dir, "mosquitto.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	brokerLog = func() string {
		b, _ := os.ReadFile(logPath)
		return string(b)
	}
	cmd := exec.Command(bin, "-c", confPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	for _, port := range []int{devicePort, servicePort} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("mosquitto exited with %v on the production config:\n%s", err, brokerLog())
			case <-ctx.Done():
				t.Fatalf("mosquitto not listening on %s with the production config after 30s:\n%s", addr, brokerLog())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", devicePort), fmt.Sprintf("tcp://127.0.0.1:%d", servicePort), brokerLog
}

// connectTo connects with the given client id and a persistent session,
// calling lost if the broker drops the connection; err is the refusal.
func connectTo(url, clientID, user, pass string, lost func()) (mqtt.Client, error) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetUsername(user).SetPassword(pass).SetCleanSession(false).SetAutoReconnect(false).
		SetConnectionLostHandler(func(mqtt.Client, error) {
			if lost != nil {
				lost()
			}
		}))
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return nil, fmt.Errorf("connect as %s: timed out", user)
	}
	return c, tok.Error()
}

// The production config starts, answers MQTT, and keeps each account on its
// listener: vward on its own, devices on theirs.
func TestMosquittoConfStarts(t *testing.T) {
	deviceURL, serviceURL, brokerLog := production(t, map[string]string{"ox-1": "one"}, map[string]string{"vward": "pw"})
	for _, tc := range []struct {
		what, url, user, pass string
		ok                    bool
	}{
		{"vward on its listener", serviceURL, "vward", "pw", true},
		{"a device on its listener", deviceURL, "ox-1", "one", true},
		{"vward on the devices' listener", deviceURL, "vward", "pw", false},
		{"a device on vward's listener", serviceURL, "ox-1", "one", false},
		{"anonymous", deviceURL, "", "", false},
	} {
		c, err := connectTo(tc.url, "vward-conf-check", tc.user, tc.pass, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%s: connect error %v, want ok %v\nbroker output:\n%s", tc.what, err, tc.ok, brokerLog())
		}
		if err == nil {
			c.Disconnect(100)
		}
	}
}

// A device that connects with vward's client id, or another device's, is
// given its own device id: vward keeps its connection and its persistent
// session, and every acknowledged reading reaches it.
func TestMosquittoClientIDTakeover(t *testing.T) {
	deviceURL, serviceURL, brokerLog := production(t,
		map[string]string{"ox-1": "one", "ox-2": "two"}, map[string]string{"vward": "svc"})
	var svcLost, oxLost atomic.Bool
	got := make(chan string, 64)
	svc, err := connectTo(serviceURL, "vward-ingest", "vward", "svc", func() { svcLost.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Disconnect(100)
	if tok := svc.Subscribe("vward/v1/devices/+/readings", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	ox1, err := connectTo(deviceURL, "ox-1", "ox-1", "one", func() { oxLost.Store(true) })
	if err != nil {
		t.Fatal(err)
	}
	defer ox1.Disconnect(100)
	const n = 20
	for i := range n {
		if i == n/2 {
			for _, id := range []string{"vward-ingest", "ox-1"} {
				c, err := connectTo(deviceURL, id, "ox-2", "two", nil)
				if err != nil {
					t.Fatalf("ox-2 with client id %s: %v", id, err)
				}
				defer c.Disconnect(100)
			}
		}
		if tok := ox1.Publish("vward/v1/devices/ox-1/readings", 1, false, fmt.Sprint(i)); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	for i := range n {
		select {
		case p := <-got:
			if p != fmt.Sprint(i) {
				t.Fatalf("reading %d: got %q", i, p)
			}
		case <-time.After(waitFor):
			t.Fatalf("vward received %d of %d acknowledged readings\nbroker log:\n%s", i, n, brokerLog())
		}
	}
	if svcLost.Load() || oxLost.Load() {
		t.Errorf("connections lost: vward %v, ox-1 %v; a device may not take over another's client id", svcLost.Load(), oxLost.Load())
	}
}

// TestMosquittoACL checks deploy/mosquitto/acl: vward reads every device's
// readings and writes rejections; a device writes only under its own id and
// reads only its own rejections.
func TestMosquittoACL(t *testing.T) {
	passwd := testenv.PasswordFile(t, map[string]string{"vward": "svc", "ox-1": "one", "ox-2": "two"})
	broker := testenv.StartMosquitto(t, testenv.MosquittoOptions{PasswordFile: passwd, ACLFile: "mosquitto/acl"})

	svc, svcGot := client(t, broker, "vward", "svc")
	sub(t, svc, "vward/v1/devices/+/readings")
	ox1, ox1Got := client(t, broker, "ox-1", "one")
	sub(t, ox1, "vward/v1/devices/ox-1/rejected")
	ox2, ox2Got := client(t, broker, "ox-2", "two")

	// Mosquitto acknowledges a refused QoS 1 publish and drops it, so a
	// refusal is visible only as absence. Each check publishes the refused
	// message first and an allowed one after it on the same connection:
	// delivery is in order, so if the allowed one arrives first the refused
	// one was dropped.
	pub(t, ox1, "vward/v1/devices/ox-2/readings", "ox-1 posing as ox-2")
	pub(t, ox1, "vward/v1/devices/ox-1/readings", "ox-1 own")
	expect(t, svcGot, "vward/v1/devices/ox-1/readings", "ox-1 own", broker)

	// A device may not subscribe to another device's rejections.
	sub(t, ox2, "vward/v1/devices/ox-1/rejected")
	pub(t, svc, "vward/v1/devices/ox-1/rejected", "bad msg_id")
	expect(t, ox1Got, "vward/v1/devices/ox-1/rejected", "bad msg_id", broker)
	sub(t, ox2, "vward/v1/devices/ox-2/rejected")
	pub(t, svc, "vward/v1/devices/ox-2/rejected", "for ox-2")
	expect(t, ox2Got, "vward/v1/devices/ox-2/rejected", "for ox-2", broker)

	// Nor read other devices' readings through a wildcard.
	sub(t, ox2, "vward/v1/devices/+/readings")
	pub(t, ox1, "vward/v1/devices/ox-1/readings", "not for ox-2")
	expect(t, svcGot, "vward/v1/devices/ox-1/readings", "not for ox-2", broker)
	pub(t, svc, "vward/v1/devices/ox-2/rejected", "control")
	expect(t, ox2Got, "vward/v1/devices/ox-2/rejected", "control", broker)

	// A device answers questionnaires on its own topic only.
	sub(t, svc, "vward/v1/devices/+/questionnaire")
	pub(t, ox1, "vward/v1/devices/ox-2/questionnaire", "ox-1 answering for ox-2")
	pub(t, ox1, "vward/v1/devices/ox-1/questionnaire", "ox-1 own answers")
	expect(t, svcGot, "vward/v1/devices/ox-1/questionnaire", "ox-1 own answers", broker)
	// Nor reads another device's answers.
	sub(t, ox2, "vward/v1/devices/ox-1/questionnaire")
	pub(t, ox1, "vward/v1/devices/ox-1/questionnaire", "not for ox-2")
	expect(t, svcGot, "vward/v1/devices/ox-1/questionnaire", "not for ox-2", broker)
	pub(t, svc, "vward/v1/devices/ox-2/rejected", "control again")
	expect(t, ox2Got, "vward/v1/devices/ox-2/rejected", "control again", broker)
}

type msg struct{ topic, payload string }

func client(t *testing.T, broker *testenv.Mosquitto, user, pass string) (mqtt.Client, chan msg) {
	t.Helper()
	got := make(chan msg, 16)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).
		SetClientID("acl-" + user).SetUsername(user).SetPassword(pass).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { got <- msg{m.Topic(), string(m.Payload())} }))
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("connect %s: %v\nbroker log:\n%s", user, tok.Error(), broker.Log())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, got
}

func sub(t *testing.T, c mqtt.Client, topic string) {
	t.Helper()
	if tok := c.Subscribe(topic, 1, nil); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
}

func pub(t *testing.T, c mqtt.Client, topic, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// expect fails unless the next message on got is exactly topic/payload.
func expect(t *testing.T, got <-chan msg, topic, payload string, broker *testenv.Mosquitto) {
	t.Helper()
	select {
	case m := <-got:
		if m.topic != topic || m.payload != payload {
			t.Fatalf("got %q on %s, want %q on %s (the ACL let an earlier message through)", m.payload, m.topic, payload, topic)
		}
	case <-time.After(waitFor):
		t.Fatalf("no %q on %s within %v; broker log:\n%s", payload, topic, waitFor, broker.Log())
	}
}

func stripComments(conf string) string {
	var b strings.Builder
	for line := range strings.Lines(conf) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}
