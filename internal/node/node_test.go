package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/internal/testenv"
)

// started is a node running against real Mosquitto and InfluxDB.
type started struct {
	node   *node.Node
	broker *testenv.Mosquitto
	influx *testenv.Influx
	secret string
}

const (
	ward    vward.WardID    = "w1"
	patient vward.PatientID = "p1"
	device  vward.DeviceID  = "ox-1"
)

func start(t *testing.T) *started {
	t.Helper()
	broker := testenv.StartMosquitto(t)
	influx := testenv.StartInflux(t)
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.Open(ctx, node.Config{
		DataDir:  t.TempDir(),
		HTTPAddr: "127.0.0.1:0",
		MQTT:     ingest.MQTTConfig{URL: broker.URL, ClientID: "vward-test"},
		Influx:   &history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket},
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("open node: %v", err)
	}
	if err := n.Registry.AddWard(ctx, devices.Ward{ID: ward, Name: "Respiratory"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Registry.Admit(ctx, devices.Patient{ID: patient, Ward: ward, Name: "Test Patient"}); err != nil {
		t.Fatal(err)
	}
	secret, err := n.Registry.AddDevice(ctx, device, "pulse oximeter")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Registry.Assign(ctx, device, patient, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := n.LoadPatients(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("node did not stop within 20s of cancellation")
		}
		n.Close()
	})
	waitReady(t, n.URL())
	return &started{node: n, broker: broker, influx: influx, secret: secret}
}

// waitReady polls /readyz until the node reports broker and history up.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("node not ready within 20s: %s", last)
}

func publish(t *testing.T, brokerURL, clientID string, topic string, payload []byte) {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device publish: %v", tok.Error())
	}
}

func dialBoard(t *testing.T, nodeURL string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(nodeURL, "http")+"/api/v1/stream", nil)
	if err != nil {
		t.Fatalf("dial board stream: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

type boardMessage struct {
	Type     string                 `json:"type"`
	Storage  string                 `json:"storage"`
	Patients []alerting.PatientView `json:"patients"`
	Patient  *alerting.PatientView  `json:"patient"`
}

func readBoard(t *testing.T, ws *websocket.Conn) boardMessage {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	var m boardMessage
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("read board stream: %v", err)
	}
	return m
}

// A reading published by a device to Mosquitto is stored in InfluxDB and
// reaches a board client over the websocket with its NEWS2 score.
func TestReadingReachesStoreAndBoard(t *testing.T) {
	s := start(t)
	ws := dialBoard(t, s.node.URL())
	snap := readBoard(t, ws)
	if snap.Type != "snapshot" || len(snap.Patients) != 1 || snap.Patients[0].Patient != patient {
		t.Fatalf("snapshot = %+v, want one row for %s", snap, patient)
	}
	if !strings.Contains(snap.Storage, "InfluxDB") {
		t.Errorf("snapshot storage = %q, want it to name InfluxDB", snap.Storage)
	}

	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	payload := fmt.Sprintf(`{"msg_id":"ox-1-000001","ts":%q,"readings":[
		{"type":"respiratory_rate","value":22},
		{"type":"spo2","value":93},
		{"type":"supplemental_oxygen","value":false},
		{"type":"systolic_bp","value":105},
		{"type":"heart_rate","value":115},
		{"type":"consciousness","value":"A"},
		{"type":"temperature","value":38.3}],"battery":0.8}`, at.Format(time.RFC3339))
	publish(t, s.broker.URL, "ox-1-client", vward.ReadingsTopic(device), []byte(payload))

	// RR 22 → 2, SpO2 93 → 2, air → 0, SBP 105 → 1, HR 115 → 2, A → 0,
	// 38.3 °C → 1: NEWS2 8, high.
	m := readBoard(t, ws)
	if m.Type != "patient" || m.Patient == nil || m.Patient.Patient != patient {
		t.Fatalf("board message = %+v, want a patient update for %s", m, patient)
	}
	n := m.Patient.News2
	if n == nil || n.Score != 8 || n.Risk != "high" || !n.Complete {
		t.Fatalf("board NEWS2 = %+v, want complete 8 high", n)
	}
	if got := m.Patient.Vitals["spo2"]; got.Value != 93 || !got.At.Equal(at) {
		t.Errorf("board spo2 = %+v, want 93 at %s", got, at)
	}

	// The reading is in InfluxDB, at its measurement time, exactly once.
	flux := fmt.Sprintf(`from(bucket: %q) |> range(start: -1h)
		|> filter(fn: (r) => r._measurement == %q and r._field == "value" and r.patient == %q and r.kind == "spo2")`,
		s.influx.Bucket, history.Measurement, patient)
	var rows []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if rows = s.influx.Query(t, flux); len(rows) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rows) != 1 {
		t.Fatalf("influx spo2 rows = %v, want exactly one", rows)
	}
	if v, _ := rows[0]["_value"].(float64); v != 93 {
		t.Errorf("stored spo2 = %v, want 93", rows[0]["_value"])
	}
	if ts, _ := rows[0]["_time"].(time.Time); !ts.Equal(at) {
		t.Errorf("stored time = %v, want measurement time %v", rows[0]["_time"], at)
	}

	// The board's history endpoint reads it back from InfluxDB.
	resp, err := http.Get(s.node.URL() + "/api/v1/patients/" + string(patient) + "/readings")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hist struct {
		Readings []struct {
			Kind  string  `json:"kind"`
			Value float64 `json:"value"`
		} `json:"readings"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&hist); err != nil {
		t.Fatal(err)
	}
	if len(hist.Readings) != 7 {
		t.Errorf("history has %d readings, want the 7 published: %+v", len(hist.Readings), hist.Readings)
	}
}

// A malformed message is acknowledged only once its dead letter is kept,
// and the reason is published to the device's rejected topic.
func TestRejectedMessageIsKeptAndExplained(t *testing.T) {
	s := start(t)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(s.broker.URL).SetClientID("ox-1-client"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	notices := make(chan []byte, 4)
	if tok := c.Subscribe(vward.RejectedTopic(device), 1, func(_ mqtt.Client, m mqtt.Message) { notices <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe rejected: %v", tok.Error())
	}
	payload := `{"msg_id":"bad-1","ts":"` + time.Now().UTC().Format(time.RFC3339) + `","readings":[{"type":"spo2","value":"ninety"}]}`
	if tok := c.Publish(vward.ReadingsTopic(device), 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case b := <-notices:
		var n struct{ MsgID, Code, Reason string }
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatalf("notice %s: %v", b, err)
		}
		if n.Code != ingest.RejectReadings || !strings.Contains(n.Reason, `readings[0] (spo2): value "ninety" is not a number`) {
			t.Errorf("notice = %+v, want bad_readings naming readings[0]", n)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no rejection notice within 15s")
	}
	rs, err := s.node.Dead.List(context.Background(), device, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].MsgID != "bad-1" || string(rs[0].Payload) != payload {
		t.Fatalf("dead letters = %+v, want the one bad message with its payload", rs)
	}
}
