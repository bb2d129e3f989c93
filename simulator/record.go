package simulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
)

// A recording is a JSON lines file: a header line, then one line per
// message in the order it arrived:
//
//	{"vward_recording":1,"started":"2026-11-24T02:00:00.123Z","broker":"tcp://…","topics":["vward/v1/devices/+/readings"]}
//	{"offset_ms":1234,"topic":"vward/v1/devices/ox-1/readings","payload":{"msg_id":…}}
//	{"offset_ms":1301,"topic":"vward/v1/devices/ox-2/readings","payload_b64":"eyJtc2dfaWQi…"}
//
// offset_ms is milliseconds since the recording started. A payload that is
// compact JSON is kept as is ("payload"), so the file is readable and jq can
// query it; anything else (a malformed message, JSON with whitespace) is
// kept byte for byte in base64 ("payload_b64").

// RecordingHeader is the first line of a recording.
type RecordingHeader struct {
	Version int       `json:"vward_recording"`
	Started time.Time `json:"started"`
	Broker  string    `json:"broker,omitempty"`
	Topics  []string  `json:"topics,omitempty"`
}

// Record is one recorded message.
type Record struct {
	OffsetMS   int64           `json:"offset_ms"`
	Topic      string          `json:"topic"`
	Payload    json.RawMessage `json:"payload,omitempty"`
	PayloadB64 *[]byte         `json:"payload_b64,omitempty"`
}

// Bytes returns the message exactly as it was published.
func (r Record) Bytes() []byte {
	if r.PayloadB64 != nil {
		return *r.PayloadB64
	}
	return r.Payload
}

// NewRecord keeps payload raw when that loses nothing.
func NewRecord(offset time.Duration, topic string, payload []byte) Record {
	r := Record{OffsetMS: offset.Milliseconds(), Topic: topic}
	var buf bytes.Buffer
	if json.Valid(payload) && json.Compact(&buf, payload) == nil && bytes.Equal(buf.Bytes(), payload) && len(payload) > 0 && payload[0] == '{' {
		r.Payload = slices.Clone(payload)
	} else {
		b := slices.Clone(payload)
		if b == nil {
			b = []byte{}
		}
		r.PayloadB64 = &b
	}
	return r
}

// RecordOptions say what to record from where.
type RecordOptions struct {
	MQTTURL string
	// Username and Password are a service account allowed to read the
	// topics (vward's own account, for one).
	Username, Password string
	// ClientID defaults to "vward-recorder-<pid>"; the session is clean, so
	// recording never holds messages back from vward.
	ClientID string
	// Topics default to every device's readings.
	Topics []string
	// Duration stops the recording; 0 records until ctx ends.
	Duration time.Duration
	Log      *slog.Logger
}

// RecordStream subscribes and writes a recording to w until the duration
// passes or ctx ends, and returns how many messages it wrote.
func RecordStream(ctx context.Context, w io.Writer, o RecordOptions) (int, error) {
	if len(o.Topics) == 0 {
		o.Topics = []string{vward.ReadingsFilter}
	}
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("vward-recorder-%d", os.Getpid())
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var (
		mu      sync.Mutex
		n       int
		werr    error
		started time.Time
	)
	opts := mqtt.NewClientOptions().AddBroker(o.MQTTURL).SetClientID(o.ClientID).
		SetUsername(o.Username).SetPassword(o.Password).SetCleanSession(true).
		SetOrderMatters(true).SetAutoReconnect(true).SetConnectTimeout(10 * time.Second)
	handler := func(_ mqtt.Client, m mqtt.Message) {
		at := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if werr != nil || started.IsZero() {
			return
		}
		if err := enc.Encode(NewRecord(at.Sub(started), m.Topic(), m.Payload())); err != nil {
			werr = err
			return
		}
		n++
	}
	filters := map[string]byte{}
	for _, t := range o.Topics {
		filters[t] = 1
	}
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		if tok := c.SubscribeMultiple(filters, handler); tok.WaitTimeout(10*time.Second) && tok.Error() != nil {
			o.Log.Error("subscribe for recording", "err", tok.Error())
		}
	})
	c := mqtt.NewClient(opts)
	mu.Lock()
	started = time.Now().UTC()
	if err := enc.Encode(RecordingHeader{Version: 1, Started: started, Broker: o.MQTTURL, Topics: o.Topics}); err != nil {
		mu.Unlock()
		return 0, fmt.Errorf("write recording: %w", err)
	}
	mu.Unlock()
	if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return 0, fmt.Errorf("connect to %s to record: %v", o.MQTTURL, tok.Error())
	}
	var stop <-chan time.Time
	if o.Duration > 0 {
		t := time.NewTimer(o.Duration)
		defer t.Stop()
		stop = t.C
	}
	select {
	case <-ctx.Done():
	case <-stop:
	}
	c.Disconnect(500)
	mu.Lock()
	defer mu.Unlock()
	if werr == nil {
		werr = bw.Flush()
	}
	started = time.Time{} // late deliveries are dropped
	if werr != nil {
		return n, fmt.Errorf("write recording: %w", werr)
	}
	return n, nil
}

// Recording is a loaded recording.
type Recording struct {
	Header  RecordingHeader
	Records []Record
}

// LoadRecording reads a recording file.
func LoadRecording(file string) (*Recording, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	return ReadRecording(f)
}

// ReadRecording reads a recording.
func ReadRecording(r io.Reader) (*Recording, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	rec := &Recording{}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if line == 1 {
			if err := json.Unmarshal(b, &rec.Header); err != nil || rec.Header.Version != 1 {
				return nil, fmt.Errorf("line 1 is not a vward recording header (want {\"vward_recording\":1,…})")
			}
			continue
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("recording line %d: %w", line, err)
		}
		if r.Payload == nil && r.PayloadB64 == nil {
			return nil, fmt.Errorf("recording line %d has neither payload nor payload_b64", line)
		}
		if _, err := deviceOfTopic(r.Topic); err != nil {
			return nil, fmt.Errorf("recording line %d: %w", line, err)
		}
		rec.Records = append(rec.Records, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read recording: %w", err)
	}
	if line == 0 {
		return nil, errors.New("the recording is empty")
	}
	return rec, nil
}

// IsRecording reports whether a file starts like a recording rather than a
// scenario.
func IsRecording(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [64]byte
	n, _ := io.ReadFull(f, b[:])
	return bytes.Contains(b[:n], []byte(`"vward_recording"`))
}

func deviceOfTopic(topic string) (vward.DeviceID, error) {
	rest, ok := strings.CutPrefix(topic, vward.TopicPrefix)
	dev, _, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || dev == "" {
		return "", fmt.Errorf("topic %q is not a device topic under %s", topic, vward.TopicPrefix)
	}
	return vward.DeviceID(dev), nil
}

// Devices lists the recording's devices in order of first appearance.
func (r *Recording) Devices() []vward.DeviceID {
	var out []vward.DeviceID
	seen := map[vward.DeviceID]bool{}
	for _, x := range r.Records {
		d, _ := deviceOfTopic(x.Topic)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// Streams turns the recording into one step list per device, at the
// recorded offsets (scenario time = recorded real time, so a clock at speed
// 10 plays it ten times faster). With retime, every ts in a JSON payload
// moves so that it keeps its place relative to the recording's start,
// counted from the clock's origin and compressed by its speed — readings
// then look current to vward; the rewritten payloads' keys come out sorted.
func (r *Recording) Streams(clock Clock, retime bool) []DeviceSteps {
	byDev := map[vward.DeviceID]*listSteps{}
	var out []DeviceSteps
	for _, x := range r.Records {
		d, _ := deviceOfTopic(x.Topic)
		l := byDev[d]
		if l == nil {
			l = &listSteps{}
			byDev[d] = l
			out = append(out, DeviceSteps{Device: d, Steps: l})
		}
		payload := x.Bytes()
		if retime && x.Payload != nil {
			payload = retimePayload(payload, r.Header.Started, clock)
		}
		l.steps = append(l.steps, Step{At: time.Duration(x.OffsetMS) * time.Millisecond, Op: Publish, Device: d, Topic: x.Topic, Payload: payload})
	}
	return out
}

func retimePayload(b []byte, started time.Time, clock Clock) []byte {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return b
	}
	shift := func(v any) any {
		s, ok := v.(string)
		if !ok {
			return v
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return v
		}
		return clock.Origin.Add(time.Duration(float64(t.Sub(started)) / clock.Speed)).UTC().Format(time.RFC3339Nano)
	}
	if ts, ok := m["ts"]; ok {
		m["ts"] = shift(ts)
	}
	if rs, ok := m["readings"].([]any); ok {
		for _, r := range rs {
			if rm, ok := r.(map[string]any); ok {
				if ts, ok := rm["ts"]; ok {
					rm["ts"] = shift(ts)
				}
			}
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return b
	}
	return out
}

type listSteps struct {
	steps []Step
	i     int
}

func (l *listSteps) Next() (Step, bool) {
	if l.i >= len(l.steps) {
		return Step{}, false
	}
	l.i++
	return l.steps[l.i-1], true
}

// Span is the recording's length.
func (r *Recording) Span() time.Duration {
	if len(r.Records) == 0 {
		return 0
	}
	return time.Duration(r.Records[len(r.Records)-1].OffsetMS) * time.Millisecond
}

// PlayOptions say where and how fast to replay a recording.
type PlayOptions struct {
	MQTTURL     string
	Credentials map[vward.DeviceID]string
	Speed       float64
	Retime      bool
	Ramp        time.Duration
	Rate        float64
	Progress    io.Writer
	Log         *slog.Logger
}

// PlayRecording publishes a recording as its devices, at its original pace
// divided by Speed, and returns the fleet's counts.
func PlayRecording(ctx context.Context, rec *Recording, o PlayOptions) (*FleetStats, error) {
	if o.Speed <= 0 {
		o.Speed = 1
	}
	var ids []Identity
	for _, d := range rec.Devices() {
		ids = append(ids, Identity{Device: d, Password: o.Credentials[d]})
	}
	fleet, err := NewFleet(FleetConfig{BrokerURL: o.MQTTURL, Ramp: o.Ramp, Rate: o.Rate, Log: o.Log}, ids)
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	if err := fleet.Connect(ctx); err != nil {
		return &fleet.Stats, err
	}
	clock := Clock{Mode: RealClock, Speed: o.Speed, Origin: time.Now(), Span: rec.Span()}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if o.Progress != nil {
			(&Progress{W: o.Progress, Fleet: fleet}).Run(pctx)
		}
	}()
	err = fleet.Play(ctx, clock, rec.Streams(clock, o.Retime))
	unacked, _ := fleet.Drain(ctx, 30*time.Second)
	stop()
	<-done
	if err == nil && unacked > 0 {
		err = fmt.Errorf("%d messages were never acknowledged", unacked)
	}
	return &fleet.Stats, err
}
