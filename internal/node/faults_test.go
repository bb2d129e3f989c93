//go:build linux

package node_test

// Fault tests for zero-loss ingest (docs/operator.md, "Ingest"): real
// Mosquitto, real InfluxDB, thousands of numbered messages from a small
// fleet, and a fault in the middle of the stream. Each test then proves that
// every msg_id is in InfluxDB exactly once. They assert outcomes, never
// timings: every wait has a deadline only so that a loss fails instead of
// hanging.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/mqttsource"
)

// The node's observer is the alert monitor: it must hear of devices
// (battery, status) as well as readings.
var _ ingest.DeviceObserver = (*alerting.Monitor)(nil)

const (
	faultMessages = 3000
	faultDevices  = 4
	// publishDeadline bounds how long one message may take to be
	// acknowledged by the broker, retries included, across a fault.
	publishDeadline = 120 * time.Second
	// storedDeadline bounds how long the last messages may take to reach
	// InfluxDB once everything is published.
	storedDeadline = 120 * time.Second
)

// fleet is a few devices, each bound to its own patient, that publish
// numbered messages: message i comes from device i mod n, has msg_id
// "<device>-<i>" and a measurement time of its own, so that no two messages
// share an InfluxDB point and a loss or a duplicate shows in a count.
type fleet struct {
	ward    vward.WardID
	devices []vward.DeviceID
	base    time.Time // measurement time of message 0
	total   int
}

func newFleet(total int) fleet {
	f := fleet{ward: "fw", total: total, base: time.Now().UTC().Add(-time.Hour).Truncate(time.Second)}
	for i := range faultDevices {
		f.devices = append(f.devices, vward.DeviceID(fmt.Sprintf("fd-%d", i+1)))
	}
	return f
}

func (f fleet) patientOf(d vward.DeviceID) vward.PatientID {
	return vward.PatientID("fp-" + strings.TrimPrefix(string(d), "fd-"))
}

func (f fleet) msgID(i int) string {
	return fmt.Sprintf("%s-%06d", f.devices[i%len(f.devices)], i)
}

func (f fleet) message(i int) (vward.DeviceID, []byte) {
	d := f.devices[i%len(f.devices)]
	at := f.base.Add(time.Duration(i) * 10 * time.Millisecond)
	return d, fmt.Appendf(nil, `{"msg_id":%q,"ts":%q,"readings":[{"type":"spo2","value":%d}],"battery":0.9}`,
		f.msgID(i), at.Format(time.RFC3339Nano), 90+i%10)
}

// seed registers the fleet's ward, patients and devices in reg.
func (f fleet) seed(t *testing.T, reg *devices.Registry) {
	t.Helper()
	ctx := context.Background()
	if err := reg.AddWard(ctx, devices.Ward{ID: f.ward, Name: "Fault ward"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range f.devices {
		p := f.patientOf(d)
		if err := reg.Admit(ctx, devices.Patient{ID: p, Ward: f.ward, Name: "Patient " + string(p), Admitted: f.base.Add(-24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.AddDevice(ctx, d, "pulse oximeter"); err != nil {
			t.Fatal(err)
		}
		if err := reg.Assign(ctx, d, p, f.base.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
}

// publishing is the fleet publishing in the background, one paho client
// per device with a persistent session, each message retried until the
// broker acknowledged it, so that the publishers' side loses nothing.
type publishing struct {
	sent atomic.Int64 // messages acknowledged by the broker
	done chan error
}

// publish starts the fleet at about rate messages a second in all.
func (f fleet) publish(t *testing.T, brokerURL string, rate float64) *publishing {
	t.Helper()
	return f.publishRange(t, brokerURL, rate, 0, f.total)
}

// publishRange publishes messages from up to (not including) to.
func (f fleet) publishRange(t *testing.T, brokerURL string, rate float64, from, to int) *publishing {
	t.Helper()
	p := &publishing{done: make(chan error, len(f.devices))}
	every := time.Duration(float64(time.Second) * float64(len(f.devices)) / rate)
	var wg sync.WaitGroup
	for di, d := range f.devices {
		c := mqtt.NewClient(mqtt.NewClientOptions().
			AddBroker(brokerURL).
			SetClientID("pub-" + string(d)).
			SetCleanSession(false).
			SetAutoReconnect(true).
			SetConnectRetry(true).
			SetConnectRetryInterval(200 * time.Millisecond).
			SetMaxReconnectInterval(time.Second).
			SetWriteTimeout(5 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
			t.Fatalf("publisher %s: connect: %v", d, tok.Error())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Disconnect(250)
			tick := time.NewTicker(every)
			defer tick.Stop()
			first := from + (di-from%len(f.devices)+len(f.devices))%len(f.devices)
			for i := first; i < to; i += len(f.devices) {
				<-tick.C
				_, payload := f.message(i)
				if err := publishUntilAcked(c, vward.ReadingsTopic(d), payload); err != nil {
					p.done <- fmt.Errorf("publisher %s, message %d: %w", d, i, err)
					return
				}
				p.sent.Add(1)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(p.done)
	}()
	return p
}

// publishUntilAcked publishes at QoS 1 until the broker's PUBACK arrives.
// A retry may deliver the message twice, which vward must absorb.
func publishUntilAcked(c mqtt.Client, topic string, payload []byte) error {
	deadline := time.Now().Add(publishDeadline)
	for {
		tok := c.Publish(topic, 1, false, payload)
		if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PUBACK within %v (last error: %v)", publishDeadline, tok.Error())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitSent blocks until n messages are acknowledged by the broker.
func (p *publishing) waitSent(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(publishDeadline)
	for p.sent.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages published within %v", p.sent.Load(), n, publishDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait blocks until every publisher is done.
func (p *publishing) wait(t *testing.T) {
	t.Helper()
	timeout := time.After(publishDeadline + faultMessages*time.Second/50)
	for {
		select {
		case err, ok := <-p.done:
			if !ok {
				return
			}
			t.Fatal(err)
		case <-timeout:
			t.Fatalf("publishers still running; %d messages acknowledged", p.sent.Load())
		}
	}
}

// storedMsgIDs returns how many times each msg_id is stored in InfluxDB.
func (f fleet) storedMsgIDs(ctx context.Context, influx *testenv.Influx) (map[string]int, error) {
	flux := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field == "msg_id" and r.ward == %q)
  |> keep(columns: ["_value"])`,
		influx.Bucket, f.base.Add(-time.Minute).Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		history.Measurement, f.ward)
	rows, err := influx.QueryContext(ctx, flux)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]int, len(rows))
	for _, r := range rows {
		id, _ := r["_value"].(string)
		ids[id]++
	}
	return ids, nil
}

// requireEveryMessageOnce waits until InfluxDB holds as many distinct
// msg_ids as were published, then checks that it holds exactly the
// published ones, each once, naming any missing, duplicated or unexpected.
func (f fleet) requireEveryMessageOnce(t *testing.T, influx *testenv.Influx) {
	t.Helper()
	deadline := time.Now().Add(storedDeadline)
	var ids map[string]int
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := f.storedMsgIDs(ctx, influx)
		cancel()
		if err == nil {
			ids = got
			if len(ids) >= f.total {
				break
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if ids == nil {
		t.Fatalf("could not read msg_ids from InfluxDB: %v", lastErr)
	}
	var missing, dups, unexpected []string
	want := make(map[string]bool, f.total)
	for i := range f.total {
		id := f.msgID(i)
		want[id] = true
		switch n := ids[id]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			dups = append(dups, fmt.Sprintf("%s×%d", id, n))
		}
	}
	for id := range ids {
		if !want[id] {
			unexpected = append(unexpected, id)
		}
	}
	if len(missing)+len(dups)+len(unexpected) > 0 {
		t.Fatalf("InfluxDB holds %d distinct msg_ids of %d published:\n  missing (%d): %s\n  duplicated (%d): %s\n  unexpected (%d): %s",
			len(ids), f.total, len(missing), clipList(missing), len(dups), clipList(dups), len(unexpected), clipList(unexpected))
	}
	t.Logf("all %d messages are in InfluxDB exactly once", f.total)
}

func clipList(s []string) string {
	slices.Sort(s)
	if len(s) > 20 {
		return strings.Join(s[:20], " ") + fmt.Sprintf(" … and %d more", len(s)-20)
	}
	return strings.Join(s, " ")
}

// runNode opens and runs a node in this process against the given broker
// and InfluxDB, after seeding the fleet; it stops when the test ends.
// configure, if given, adjusts the node's configuration first.
func runNode(t *testing.T, f fleet, broker *testenv.Mosquitto, influx *testenv.Influx, mqttCfg mqttsource.Config, ingestCfg ingest.Config, configure ...func(*node.Config)) *node.Node {
	t.Helper()
	n, stop := startNode(t, f, t.TempDir(), true, broker, influx, mqttCfg, ingestCfg, configure...)
	t.Cleanup(stop)
	return n
}

// startNode opens a node on dataDir (seeding the fleet if seed), runs it
// and waits until it is ready. stop cancels it, waits for a clean exit and
// closes it. configure, if given, adjusts the node's configuration first.
func startNode(t *testing.T, f fleet, dataDir string, seed bool, broker *testenv.Mosquitto, influx *testenv.Influx, mqttCfg mqttsource.Config, ingestCfg ingest.Config, configure ...func(*node.Config)) (*node.Node, func()) {
	t.Helper()
	mqttCfg.URL = broker.URL
	ctx, cancel := context.WithCancel(context.Background())
	cfg := node.Config{
		DataDir:  dataDir,
		HTTPAddr: "127.0.0.1:0",
		MQTT:     mqttCfg,
		Influx:   &history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket},
		Ingest:   ingestCfg,
		Log:      testLog(t),
	}
	for _, c := range configure {
		c(&cfg)
	}
	n, err := node.Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("open node: %v", err)
	}
	if seed {
		f.seed(t, n.Registry)
		if err := n.LoadPatients(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return n, serveNode(t, n, ctx, cancel)
}

// testLog keeps the node's warnings and errors, shown only if the test fails.
func testLog(t *testing.T) *slog.Logger {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vward.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(path)
			t.Logf("vward log:\n%s", tail(string(b), 16<<10))
		}
	})
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, url string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// waitReadyz polls /readyz until ok reports true of its answer.
func waitReadyz(t *testing.T, url, what string, ok func(status int, body map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := readyz(t, url)
		if ok(status, body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never showed %s within 30s; last: %d %v", what, status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// InfluxDB stops for 30 s mid-stream while devices keep publishing: vward
// holds its acknowledgements, keeps at most MaxInFlight messages, lets the
// broker hold the rest, and stores everything once InfluxDB is back.
func TestFaultInfluxDown30s(t *testing.T) {
	t.Parallel()
	began := time.Now()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(faultMessages)
	const maxInFlight = 200
	n := runNode(t, f, broker, influx, mqttsource.Config{ClientID: "vward-fault-influx"},
		ingest.Config{MaxInFlight: maxInFlight, RetryMax: 2 * time.Second})

	var peak atomic.Int64
	sampling, stopSampling := context.WithCancel(context.Background())
	defer stopSampling()
	go func() {
		for sampling.Err() == nil {
			peak.Store(max(peak.Load(), int64(n.Pipeline.InFlight())))
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// 3,000 messages at ~65/s: publishing goes on through the outage.
	pub := f.publish(t, broker.URL, 65)
	pub.waitSent(t, 300)
	influx.Stop(t)
	t.Logf("influxd stopped with %d messages published", pub.sent.Load())
	body := waitReadyz(t, n.URL(), "history down, broker up", func(status int, b map[string]string) bool {
		return status == http.StatusServiceUnavailable && b["history"] != "ok" && b["history"] != "" && b["broker"] == "ok"
	})
	t.Logf("/readyz during the outage: %v", body)
	time.Sleep(30 * time.Second)
	atRestart := pub.sent.Load()
	influx.Start(t)
	t.Logf("influxd restarted with %d messages published (%d during the outage); vward held %d in flight at most",
		atRestart, atRestart-300, peak.Load())

	pub.wait(t)
	f.requireEveryMessageOnce(t, influx)
	stopSampling()
	if p := peak.Load(); p > maxInFlight {
		t.Errorf("vward held %d messages in flight, more than MaxInFlight %d", p, maxInFlight)
	}
	if p := peak.Load(); p < maxInFlight/2 {
		t.Errorf("vward held at most %d messages in flight during a 30 s outage: the outage did not back up as expected", p)
	}
	waitReadyz(t, n.URL(), "everything up again", func(status int, _ map[string]string) bool { return status == http.StatusOK })
	t.Logf("done in %v", time.Since(began).Round(time.Second))
}

// Mosquitto restarts mid-stream (a clean stop, so its persistence file is
// written) while it holds a backlog for vward: InfluxDB is paused first, so
// vward withholds its acknowledgements, fills its in-flight window and
// leaves the rest queued at the broker. The publishers and vward reconnect
// to their persistent sessions; the broker redelivers what vward had not
// acknowledged and delivers the backlog it kept on disk. Nothing published
// before, during or after is lost.
func TestFaultBrokerRestart(t *testing.T) {
	t.Parallel()
	began := time.Now()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(faultMessages)
	const maxInFlight = 100
	n := runNode(t, f, broker, influx, mqttsource.Config{ClientID: "vward-fault-broker"},
		ingest.Config{MaxInFlight: maxInFlight, RetryMax: time.Second})

	pub := f.publish(t, broker.URL, 200)
	pub.waitSent(t, faultMessages/3)
	influx.Stop(t)
	paused := pub.sent.Load()
	// The backlog: vward's window full, and more queued at the broker.
	pub.waitSent(t, paused+maxInFlight+300)
	if got := n.Pipeline.InFlight(); got != maxInFlight {
		t.Fatalf("vward holds %d messages in flight with InfluxDB down, want its window of %d", got, maxInFlight)
	}
	broker.Stop(t)
	t.Logf("mosquitto stopped with %d messages published, %d of them after InfluxDB stopped", pub.sent.Load(), pub.sent.Load()-paused)
	influx.Start(t)
	body := waitReadyz(t, n.URL(), "broker down, history up", func(status int, b map[string]string) bool {
		return status == http.StatusServiceUnavailable && b["broker"] != "ok" && b["broker"] != "" && b["history"] == "ok"
	})
	t.Logf("/readyz while the broker is down: %v", body)
	broker.Start(t)

	pub.wait(t)
	f.requireEveryMessageOnce(t, influx)
	waitReadyz(t, n.URL(), "everything up again", func(status int, _ map[string]string) bool { return status == http.StatusOK })
	t.Logf("done in %v", time.Since(began).Round(time.Second))
}

// Two subscriber connections share the devices' messages through a shared
// subscription: every message is stored once and delivered to vward once,
// and each connection carries a share.
func TestSharedSubscriptionDeliversOnce(t *testing.T) {
	t.Parallel()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(2000)
	n := runNode(t, f, broker, influx, mqttsource.Config{ClientID: "vward-shared", Connections: 2}, ingest.Config{})
	pub := f.publish(t, broker.URL, 400)
	pub.wait(t)
	f.requireEveryMessageOnce(t, influx)

	m := n.Source.Metrics()
	var total float64
	for _, id := range []string{"vward-shared-1", "vward-shared-2"} {
		got := counterValue(t, m.Delivered.WithLabelValues(id))
		t.Logf("%s received %v messages", id, got)
		if got == 0 {
			t.Errorf("%s received nothing: the subscription is not shared", id)
		}
		total += got
	}
	// A retried publish may reach vward twice; a subscription that is not
	// shared would deliver every message to both connections.
	if total < float64(f.total) || total >= float64(2*f.total) {
		t.Errorf("vward received %v deliveries for %d messages, want each message delivered to one connection", total, f.total)
	}
}

// A restarted vward drains what its session holds: the messages its last
// run received and could not acknowledge (InfluxDB was down when it
// stopped), which the broker resends right after CONNACK, possibly before
// the new process has subscribed; and the messages queued while it was
// down.
// Every one must be stored, once. What the first run stored and
// acknowledged before InfluxDB went down is not redelivered.
func TestRestartDrainsSessionBacklog(t *testing.T) {
	t.Parallel()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(1500)
	dataDir := t.TempDir()
	cfg := mqttsource.Config{ClientID: "vward-restart"}
	tune := ingest.Config{FlushTimeout: time.Second, RetryMax: time.Second}

	first, stopFirst := startNode(t, f, dataDir, true, broker, influx, cfg, tune)
	f.publishRange(t, broker.URL, 500, 0, 500).wait(t)
	deadline := time.Now().Add(storedDeadline)
	for {
		ids, err := f.storedMsgIDs(context.Background(), influx)
		if err == nil && len(ids) == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first run stored %d of 500 (%v)", len(ids), err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// InfluxDB down: the first run receives 500 more and holds them.
	influx.Stop(t)
	f.publishRange(t, broker.URL, 500, 500, 1000).wait(t)
	for deadline := time.Now().Add(30 * time.Second); first.Pipeline.InFlight() < 500; {
		if time.Now().After(deadline) {
			t.Fatalf("first run holds %d in flight, want 500", first.Pipeline.InFlight())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopFirst()
	// vward is down: the broker queues 500 more in its session.
	f.publishRange(t, broker.URL, 500, 1000, 1500).wait(t)
	influx.Start(t)

	second, stopSecond := startNode(t, f, dataDir, false, broker, influx, cfg, tune)
	defer stopSecond()
	f.requireEveryMessageOnce(t, influx)
	m := second.Pipeline.Metrics()
	received := counterValue(t, m.Received.WithLabelValues(string(ingest.FormatV1)))
	redelivered := counterValue(t, m.Redelivered)
	t.Logf("second run received %v messages, %v of them marked redelivered", received, redelivered)
	if redelivered < 500 || received < 1000 {
		t.Errorf("second run received %v messages (%v redelivered), want the 500 held and the 500 queued", received, redelivered)
	}
}

// Going from one subscriber connection to two changes the client ids; the
// old session keeps its subscription and what was queued in it while vward
// was down. Retiring it drains that backlog into InfluxDB and deletes the
// session, so it collects nothing more.
func TestRetireSessionAfterChangingConnections(t *testing.T) {
	t.Parallel()
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(1000)
	dataDir := t.TempDir()
	_, stopFirst := startNode(t, f, dataDir, true, broker, influx, mqttsource.Config{ClientID: "vward-mig"}, ingest.Config{})
	stopFirst()
	f.publishRange(t, broker.URL, 500, 0, 500).wait(t) // queued in session vward-mig

	n, stop := startNode(t, f, dataDir, false, broker, influx,
		mqttsource.Config{ClientID: "vward-mig", Connections: 2, Retire: []string{"vward-mig"}}, ingest.Config{})
	defer stop()
	for deadline := time.Now().Add(60 * time.Second); !slices.Contains(n.Source.RetiredSessions(), "vward-mig"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("session vward-mig not retired within 60s")
		}
	}
	m := n.Source.Metrics()
	drained := counterValue(t, m.Delivered.WithLabelValues("vward-mig"))
	f.publishRange(t, broker.URL, 500, 500, 1000).wait(t)
	f.requireEveryMessageOnce(t, influx)
	if after := counterValue(t, m.Delivered.WithLabelValues("vward-mig")); drained < 500 || after != drained {
		t.Errorf("retired session delivered %v before retirement and %v after, want the 500 queued and nothing more", drained, after)
	}

	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("vward-mig").SetCleanSession(false))
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	if tok.(*mqtt.ConnectToken).SessionPresent() {
		t.Error("the broker still holds session vward-mig after retirement")
	}
}

// vward, without its journal, is killed with SIGKILL mid-stream and
// started again with the same client id: what it received and had not
// acknowledged is redelivered by the broker, so nothing is lost. Then a
// clean stop acknowledges everything it stored: a restart receives no
// redelivery.
func TestFaultVwardKilled(t *testing.T) {
	t.Parallel()
	began := time.Now()
	bin := buildVward(t)
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	f := newFleet(faultMessages)

	dataDir := seededDataDir(t, f)
	v := newVwardProcess(t, bin, dataDir, broker, influx, "vward-fault-kill")
	// What the broker redelivers is what vward holds unacknowledged, which
	// takes acknowledging only once InfluxDB has it (TestJournalVwardKilled
	// kills vward with its journal).
	v.args = append(v.args, "--no-journal")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(v.log)
			t.Logf("vward log:\n%s", tail(string(b), 16<<10))
		}
		v.stop(t, syscall.SIGKILL)
	})
	v.start(t)

	pub := f.publish(t, broker.URL, 200)
	pub.waitSent(t, faultMessages/3)
	v.stop(t, syscall.SIGKILL)
	t.Logf("vward killed with %d messages published", pub.sent.Load())
	v.start(t)

	// Killed again while InfluxDB is down, holding hundreds of messages it
	// cannot acknowledge: the broker resends them all the moment the next
	// process connects, before it has subscribed.
	pub.waitSent(t, 2*faultMessages/3)
	influx.Stop(t)
	held := v.waitMetric(t, "vward_ingest_messages_in_flight", 200)
	v.stop(t, syscall.SIGKILL)
	t.Logf("vward killed holding %v unacknowledged messages, %d published", held, pub.sent.Load())
	influx.Start(t)
	v.start(t)
	pub.wait(t)
	f.requireEveryMessageOnce(t, influx)

	// A refused message is kept where `vward devices rejected` finds it,
	// while vward runs.
	_, bad := f.message(0)
	bad = []byte(strings.Replace(string(bad), `"spo2"`, `"glucose"`, 1))
	bad = []byte(strings.Replace(string(bad), f.msgID(0), "bad-1", 1))
	if err := publishOnce(broker.URL, vward.ReadingsTopic(f.devices[0]), bad); err != nil {
		t.Fatal(err)
	}
	var listed []map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for len(listed) == 0 && time.Now().Before(deadline) {
		out := runVward(t, bin, "devices", "rejected", "--data-dir", dataDir, "--device", string(f.devices[0]), "--json")
		if err := json.Unmarshal(out, &listed); err != nil {
			t.Fatalf("vward devices rejected --json: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(listed) != 1 || listed[0]["msg_id"] != "bad-1" || listed[0]["code"] != ingest.RejectReadings || listed[0]["payload"] != string(bad) {
		t.Fatalf("vward devices rejected --json = %v, want the one bad message", listed)
	}
	table := string(runVward(t, bin, "devices", "rejected", "--data-dir", dataDir))
	if !strings.Contains(table, "MSG_ID") || !strings.Contains(table, "bad-1") || !strings.Contains(table, `unknown reading type "glucose"`) {
		t.Errorf("vward devices rejected table:\n%s", table)
	}

	// A clean stop acknowledges what was stored before it disconnects; the
	// broker then has nothing to redeliver.
	v.stop(t, syscall.SIGTERM)
	v.start(t)
	time.Sleep(time.Second)
	if got := v.metric(t, "vward_ingest_messages_received_total"); got != 0 {
		t.Errorf("after a clean stop and a restart vward received %v messages; the clean stop left them unacknowledged", got)
	}
	t.Logf("done in %v", time.Since(began).Round(time.Second))
}

// buildVward builds cmd/vward into the test's temp dir; the build cache
// makes every build after the first a link.
func buildVward(t *testing.T) string {
	t.Helper()
	began := time.Now()
	bin := filepath.Join(t.TempDir(), "vward")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/vward/vward/cmd/vward").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/vward: %v\n%s", err, out)
	}
	t.Logf("vward binary built in %v", time.Since(began).Round(time.Millisecond))
	return bin
}

// runVward runs a short vward command and returns its stdout.
func runVward(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = vwardEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vward %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// vwardEnv drops VWARD_* variables so a developer's shell cannot change
// what the test runs.
func vwardEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VWARD_") {
			env = append(env, kv)
		}
	}
	return env
}

// newVwardProcess is `vward serve` on dataDir, broker and InfluxDB, with
// a free HTTP port and a log file, not yet started.
func newVwardProcess(t *testing.T, bin, dataDir string, broker *testenv.Mosquitto, influx *testenv.Influx, clientID string) *vwardProcess {
	v := &vwardProcess{
		bin: bin,
		url: fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t)),
		log: filepath.Join(t.TempDir(), "vward.log"),
	}
	v.args = []string{"serve",
		"--http-addr", strings.TrimPrefix(v.url, "http://"),
		"--data-dir", dataDir,
		"--mqtt-url", broker.URL,
		"--mqtt-client-id", clientID,
		"--influx-url", influx.URL,
		"--influx-bucket", influx.Bucket,
	}
	return v
}

// vwardProcess is `vward serve` run as a separate process.
type vwardProcess struct {
	bin, url, log string
	args          []string
	cmd           *exec.Cmd
	done          chan error
}

func (v *vwardProcess) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(v.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- %s: vward %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(v.args, " "))
	cmd := exec.Command(v.bin, v.args...)
	cmd.Env = vwardEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies, so does vward.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vward: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	v.cmd, v.done = cmd, done
	waitReady(t, v.url)
}

// stop sends sig and waits for the process to exit; after SIGTERM it must
// exit cleanly.
func (v *vwardProcess) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if v.cmd == nil {
		return
	}
	cmd := v.cmd
	v.cmd = nil
	_ = cmd.Process.Signal(sig)
	select {
	case err := <-v.done:
		if sig == syscall.SIGTERM && err != nil {
			t.Errorf("vward exited with %v after SIGTERM, want a clean exit", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("vward did not exit within 30s of %v", sig)
	}
}

// metric sums the samples of one metric on vward's /metrics.
// waitMetric polls the metric until it is at least want, for up to 30 s,
// and returns it.
func (v *vwardProcess) waitMetric(t *testing.T, name string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := v.metric(t, name)
		if got >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after 30 s, want %v or more", name, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (v *vwardProcess) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(v.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		fields := strings.Fields(line)
		x, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += x
		found = true
	}
	if !found {
		t.Fatalf("/metrics has no %s", name)
	}
	return sum
}

// publishOnce publishes one message at QoS 1 from a throwaway client.
func publishOnce(brokerURL, topic string, payload []byte) error {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("pub-once"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	return publishUntilAcked(c, topic, payload)
}

// counterValue reads a counter of the node's metrics.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// A SenML pack published on the device's senml topic is stored like a v1
// message; a refused one is listed by GET /api/v1/rejections for admins
// only, and counted on /metrics by its code.
func TestSenMLRejectionsAndMetricsEndToEnd(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	if err := s.node.Registry.AddClinician(ctx, devices.Clinician{Username: "ops-admin", Role: "admin"}, password); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	good := fmt.Sprintf(`[{"bn":"urn:dev:ox-1:","bt":%.3f,"n":"heart_rate","u":"beat/min","v":77},{"n":"msg_id","vs":"senml-1"}]`,
		float64(at.UnixMilli())/1000)
	publish(t, s.broker.URL, "ox-1-client", vward.SenMLTopic(device), []byte(good))
	bad := `[{"bt":1e9,"n":"heart_rate","u":"Hz","v":1.3},{"n":"msg_id","vs":"senml-bad"}]`
	publish(t, s.broker.URL, "ox-1-client", vward.SenMLTopic(device), []byte(bad))

	flux := fmt.Sprintf(`from(bucket: %q) |> range(start: -1h)
		|> filter(fn: (r) => r._measurement == %q and r._field == "heart_rate")`, s.influx.Bucket, history.Measurement)
	var rows []map[string]any
	for deadline := time.Now().Add(15 * time.Second); len(rows) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rows = s.influx.Query(t, flux)
	}
	if len(rows) != 1 || rows[0]["_value"] != 77.0 || !rows[0]["_time"].(time.Time).Equal(at) || rows[0]["patient"] != string(patient) {
		t.Fatalf("stored SenML heart rate = %v, want 77 for %s at %s", rows, patient, at)
	}

	admin := signIn(t, s.node.URL(), "ops-admin")
	var raw struct {
		Rejections []map[string]any `json:"rejections"`
	}
	for deadline := time.Now().Add(15 * time.Second); len(raw.Rejections) == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if st := admin.do(http.MethodGet, "/api/v1/rejections?device=ox-1&limit=5", nil, &raw); st != http.StatusOK {
			t.Fatalf("GET /api/v1/rejections as admin: %d", st)
		}
	}
	if len(raw.Rejections) != 1 || raw.Rejections[0]["msg_id"] != "senml-bad" || raw.Rejections[0]["code"] != ingest.RejectTime ||
		raw.Rejections[0]["payload"] != bad || !strings.Contains(raw.Rejections[0]["reason"].(string), "older than") {
		t.Errorf("rejections = %v, want the refused SenML pack with its payload", raw.Rejections)
	}
	if st := admin.do(http.MethodGet, "/api/v1/rejections?limit=0", nil, nil); st != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", st)
	}
	if st := signIn(t, s.node.URL(), nurse).do(http.MethodGet, "/api/v1/rejections", nil, nil); st != http.StatusForbidden {
		t.Errorf("GET /api/v1/rejections as a clinician: %d, want 403", st)
	}
	if resp, err := http.Get(s.node.URL() + "/api/v1/rejections"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/rejections without a session: %v %v, want 401", resp.Status, err)
	}

	resp, err := http.Get(s.node.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`vward_ingest_messages_received_total{format="senml"} 2`,
		`vward_ingest_messages_rejected_total{code="bad_time"} 1`,
		`vward_ingest_messages_stored_total 1`,
		`vward_ingest_broker_connections_up 1`,
		`vward_ingest_store_write_duration_seconds_count`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
