package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/mqttsource"
	"github.com/vward/vward/web"
)

// started is a node running against real Mosquitto and InfluxDB.
type started struct {
	node   *node.Node
	broker *testenv.Mosquitto
	influx *testenv.Influx
	secret string
}

// The clinicians every started node has: a nurse of ward w1, a viewer of
// w1, and a nurse of another ward.
const (
	nurse, viewer, otherNurse = "nurse", "viewer", "other-nurse"
	password                  = "correct horse battery"
)

const (
	ward    vward.WardID    = "w1"
	patient vward.PatientID = "p1"
	device  vward.DeviceID  = "ox-1"
)

// start runs a node against real Mosquitto and InfluxDB with ward w1,
// patient p1 wearing device ox-1, and the test clinicians. configure, if
// given, adjusts the node's configuration first.
func start(t *testing.T, configure ...func(*node.Config)) *started {
	t.Helper()
	broker := testenv.StartMosquitto(t)
	influx := testenv.StartInflux(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := node.Config{
		DataDir:  t.TempDir(),
		HTTPAddr: "127.0.0.1:0",
		MQTT:     mqttsource.Config{URL: broker.URL, ClientID: "vward-test"},
		Influx:   &history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket},
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range configure {
		f(&cfg)
	}
	n, err := node.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open node: %v", err)
	}
	if err := n.Registry.AddWard(ctx, devices.Ward{ID: ward, Name: "Respiratory"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Registry.Admit(ctx, devices.Patient{ID: patient, Ward: ward, Name: "Test Patient"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []devices.Clinician{
		{Username: nurse, Role: "clinician", Wards: []vward.WardID{ward}},
		{Username: viewer, Role: "viewer", Wards: []vward.WardID{ward}},
		{Username: otherNurse, Role: "clinician", Wards: []vward.WardID{"w2"}},
	} {
		if err := n.Registry.AddClinician(ctx, c, password); err != nil {
			t.Fatal(err)
		}
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
	serveNode(t, n, ctx, cancel)
	return &started{node: n, broker: broker, influx: influx, secret: secret}
}

// serveNode runs n until the test ends, and waits until it is ready. The
// returned stop cancels it and checks that it stopped; it runs at cleanup
// too, and only once, so a test may stop the node early.
func serveNode(t *testing.T, n *node.Node, ctx context.Context, cancel context.CancelFunc) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("node run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("node did not stop within 30s of cancellation")
			}
			n.Close()
		})
	}
	t.Cleanup(stop)
	waitReady(t, n.URL())
	return stop
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

// session is a signed-in clinician's HTTP client.
type session struct {
	t      *testing.T
	base   string
	client *http.Client
	csrf   string
}

// signIn signs a clinician in over REST.
func signIn(t *testing.T, nodeURL, username string) *session {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, username, password)
	resp, err := c.Post(nodeURL+"/api/v1/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("sign in %s: %v", username, err)
	}
	defer resp.Body.Close()
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil || out.CSRF == "" {
		t.Fatalf("sign in %s: status %d", username, resp.StatusCode)
	}
	return &session{t: t, base: nodeURL, client: c, csrf: out.CSRF}
}

// do sends a request as the clinician, with the CSRF token on changes, and
// decodes a JSON answer into out when out is not nil.
func (s *session) do(method, path string, body any, out any) int {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, s.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	if method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", s.csrf)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil && resp.StatusCode < 300 {
			s.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

// dialBoard opens the board's stream as the signed-in clinician.
func (s *session) dialBoard() *websocket.Conn {
	s.t.Helper()
	u, _ := url.Parse(s.base)
	hdr := http.Header{}
	for _, c := range s.client.Jar.Cookies(u) {
		hdr.Add("Cookie", c.String())
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.base, "http")+"/api/v1/stream", hdr)
	if err != nil {
		s.t.Fatalf("dial board stream: %v", err)
	}
	s.t.Cleanup(func() { ws.Close() })
	return ws
}

type boardMessage struct {
	Type     string            `json:"type"`
	Storage  string            `json:"storage"`
	Patients []web.PatientView `json:"patients"`
	Patient  *web.PatientView  `json:"patient"`
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
	ws := signIn(t, s.node.URL(), nurse).dialBoard()
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
		|> filter(fn: (r) => r._measurement == %q and r._field == "spo2" and r.patient == %q)`,
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
	var hist struct {
		Readings []struct {
			Kind  string  `json:"kind"`
			Value float64 `json:"value"`
		} `json:"readings"`
	}
	if code := signIn(t, s.node.URL(), nurse).do("GET", "/api/v1/patients/"+string(patient)+"/readings", nil, &hist); code != http.StatusOK {
		t.Fatalf("history: status %d", code)
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
	rs, err := s.node.Dead.List(context.Background(), ingest.RejectionQuery{Device: device, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].MsgID != "bad-1" || string(rs[0].Payload) != payload {
		t.Fatalf("dead letters = %+v, want the one bad message with its payload", rs)
	}
}
