package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/simulator"
)

// A compact JSON payload is kept readable; anything else byte for byte.
func TestRecordKeepsPayloadsExactly(t *testing.T) {
	for _, p := range []string{
		`{"msg_id":"a","ts":"2026-11-24T10:00:00Z","readings":[{"type":"spo2","value":95}]}`,
		`{"msg_id":"a", "ts":"2026-11-24T10:00:00Z"}`, // whitespace: compacting would change it
		`{"msg_id":"trunc`,
		"\xff\xfe not utf-8",
		``,
		`[1,2]`,
	} {
		r := simulator.NewRecord(1500*time.Millisecond, "vward/v1/devices/d/readings", []byte(p))
		line, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := simulator.ReadRecording(strings.NewReader(`{"vward_recording":1,"started":"2026-11-24T10:00:00Z"}` + "\n" + string(line) + "\n"))
		if err != nil {
			t.Fatalf("%q: %v\n%s", p, err, line)
		}
		if got := rec.Records[0].Bytes(); !bytes.Equal(got, []byte(p)) {
			t.Errorf("%q came back as %q", p, got)
		}
		if raw := bytes.Contains(line, []byte(`"payload":`)); raw != (p != "" && p[0] == '{' && !strings.Contains(p, " ") && json.Valid([]byte(p))) {
			t.Errorf("%q recorded as %s", p, line)
		}
	}
}

// Retiming moves every ts so that it keeps its place relative to the
// recording's start, from the replay's origin, compressed by the speed.
func TestRetime(t *testing.T) {
	started := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	src := fmt.Sprintf(`{"vward_recording":1,"started":%q}
{"offset_ms":60000,"topic":"vward/v1/devices/g/readings","payload":{"msg_id":"g-1","ts":"2026-11-20T10:01:00Z","readings":[{"type":"spo2","value":95,"ts":"2026-11-20T09:50:00Z"}]}}
`, started.Format(time.RFC3339))
	rec, err := simulator.ReadRecording(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	clock := simulator.Clock{Mode: simulator.RealClock, Speed: 10, Origin: origin}
	st, _ := rec.Streams(clock, true)[0].Steps.Next()
	var p simulator.Payload
	if err := json.Unmarshal(st.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if st.At != time.Minute || p.TS != origin.Add(6*time.Second).Format(time.RFC3339Nano) || p.Readings[0].TS != origin.Add(-time.Minute).Format(time.RFC3339Nano) {
		t.Errorf("retimed step at %v: ts %s, reading ts %s", st.At, p.TS, p.Readings[0].TS)
	}
}

// A live stream recorded from Mosquitto replays as the same messages, byte
// for byte, from the same devices.
func TestRecordAndReplay(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	sc, err := simulator.Parse([]byte(`{"name":"rec","seed":3,"duration":"3s","clock":"real",
	  "cohorts":[{"count":20,"prefix":"rec","patient":{"devices":[{"kind":"wearable","every":"1s","phase":"0s","faults":{"malformed_rate":0.3}}]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	ctx, stop := context.WithCancel(context.Background())
	recorded := make(chan error, 1)
	go func() {
		_, err := simulator.RecordStream(ctx, &file, simulator.RecordOptions{MQTTURL: broker.URL, Log: quietLog})
		recorded <- err
	}()
	time.Sleep(500 * time.Millisecond) // let the recorder subscribe
	rep, err := simulator.RunScenario(context.Background(), sc, simulator.RunOptions{MQTTURL: broker.URL, Log: quietLog})
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("run: %v %v", err, rep.Problems)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	if err := <-recorded; err != nil {
		t.Fatal(err)
	}
	rec, err := simulator.ReadRecording(&file)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Records) < 60 || len(rec.Devices()) != 20 {
		t.Fatalf("recorded %d messages from %d devices, want ≥ 60 from 20", len(rec.Records), len(rec.Devices()))
	}

	var mu sync.Mutex
	var got []string
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker.URL).SetClientID("replay-check"))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(vward.ReadingsFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		got = append(got, m.Topic()+" "+string(m.Payload()))
		mu.Unlock()
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	st, err := simulator.PlayRecording(context.Background(), rec, simulator.PlayOptions{MQTTURL: broker.URL, Speed: 4, Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if st.Acked.Load() != int64(len(rec.Records)) {
		t.Errorf("acked %d of %d", st.Acked.Load(), len(rec.Records))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(rec.Records) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]int{}
	for _, r := range rec.Records {
		want[r.Topic+" "+string(r.Bytes())]++
	}
	mu.Lock()
	defer mu.Unlock()
	for _, g := range got {
		want[g]--
	}
	for m, n := range want {
		if n != 0 {
			t.Errorf("replayed %d more of %.80q than recorded", -n, m)
		}
	}
}
