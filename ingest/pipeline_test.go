package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/devices/devicestest"
	"github.com/vward/vward/history"
	"github.com/vward/vward/sqlitedb"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// value reads a counter's or gauge's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// gatedStore fails while failing is set and blocks while gate is closed.
type gatedStore struct {
	mem     *history.Memory
	failing atomic.Bool
	gate    chan struct{} // nil: never blocks
	writes  atomic.Int64
	mu      sync.Mutex
	stored  []vward.Reading
}

func newGatedStore() *gatedStore { return &gatedStore{mem: history.NewMemory(100000)} }

func (s *gatedStore) WriteReadings(ctx context.Context, rs []vward.Reading) error {
	s.writes.Add(1)
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.failing.Load() {
		return errors.New("influxdb is down")
	}
	s.mu.Lock()
	s.stored = append(s.stored, rs...)
	s.mu.Unlock()
	return s.mem.WriteReadings(ctx, rs)
}

func (s *gatedStore) readings() []vward.Reading {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.stored)
}

// deadList keeps dead letters in memory.
type deadList struct {
	mu sync.Mutex
	rs []Rejection
}

func (d *deadList) Keep(_ context.Context, rs []Rejection) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rs = append(d.rs, rs...)
	return nil
}

func (d *deadList) list() []Rejection {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.rs)
}

// observed counts what the observer saw.
type observed struct {
	mu       sync.Mutex
	rs       []vward.Reading
	devices  []string // ObserveDevice calls
	statuses []string // DeviceStatus calls
	asked    []vward.Answered
}

func (o *observed) ObserveDevice(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, battery *float64, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := "none"
	if battery != nil {
		b = fmt.Sprint(*battery)
	}
	o.devices = append(o.devices, fmt.Sprintf("%s %s %s battery=%s at=%s", device, patient, ward, b, at.Format(time.RFC3339)))
}

func (o *observed) DeviceStatus(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, online bool, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.statuses = append(o.statuses, fmt.Sprintf("%s %s %s online=%v at=%s", device, patient, ward, online, at.Format(time.RFC3339)))
}

func (o *observed) calls() ([]string, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.devices), slices.Clone(o.statuses)
}

func (o *observed) Observe(rs []vward.Reading) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rs = append(o.rs, rs...)
}

func (o *observed) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.rs)
}

// acks records acknowledgements in order.
type acks struct {
	mu  sync.Mutex
	ids []string
}

func (a *acks) ack(id string) func() {
	return func() {
		a.mu.Lock()
		a.ids = append(a.ids, id)
		a.mu.Unlock()
	}
}

func (a *acks) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ids)
}

// registry is devicestest.TwoStays: ox-1 bound to p1 from bound1 and to
// p2 from bound2, ox-idle never bound.
func registry(t *testing.T, bound1, bound2 time.Time) *devices.Registry {
	return devicestest.TwoStays(t, bound1, bound2)
}

type rig struct {
	p       *Pipeline
	store   *gatedStore
	dead    *deadList
	answers *answerList
	obs     *observed
	acks    *acks
	m       *Metrics
	done    chan error
	stop    context.CancelFunc
}

func newRig(t *testing.T, cfg Config, reg Registry) *rig {
	t.Helper()
	r := &rig{store: newGatedStore(), dead: &deadList{}, answers: &answerList{}, obs: &observed{}, acks: &acks{}, m: NewMetrics(nil)}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = time.Millisecond
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = time.Millisecond, 10*time.Millisecond
	}
	r.p = NewPipeline(cfg, r.store, reg, r.obs, r.dead, r.answers, nil, r.m, quietLog)
	r.p.now = func() time.Time { return now }
	return r
}

func (r *rig) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.p.Run(ctx) }()
	t.Cleanup(func() { r.shutdown(t) })
}

// shutdown cancels Run and waits for it, at most 20 s.
func (r *rig) shutdown(t *testing.T) {
	t.Helper()
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return within 20s of cancellation")
	}
}

func (r *rig) submit(t *testing.T, ctx context.Context, device vward.DeviceID, msgID, payload string) error {
	t.Helper()
	return r.p.Submit(ctx, Delivery{Topic: vward.ReadingsTopic(device), Payload: []byte(payload), Ack: r.acks.ack(msgID)})
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func v1(msgID string, at time.Time, kind vward.ReadingKind, value float64) string {
	return fmt.Sprintf(`{"msg_id":%q,"ts":%q,"readings":[{"type":%q,"value":%g}]}`, msgID, at.Format(time.RFC3339Nano), kind, value)
}

// A reading belongs to the patient its device was bound to when it was
// measured, not when it arrived; an unregistered device, or a reading from
// before any binding, is refused with its own code and kept.
func TestPipelineAttributesAtMeasurementTime(t *testing.T) {
	bound1, bound2 := now.Add(-2*time.Hour), now.Add(-time.Hour)
	r := newRig(t, Config{}, registry(t, bound1, bound2))
	r.run(t)
	ctx := context.Background()
	msgs := []struct {
		device vward.DeviceID
		id     string
		at     time.Time
	}{
		{"ox-1", "before-any-binding", bound1.Add(-time.Minute)},
		{"ox-1", "while-on-p1", bound2.Add(-time.Second)},
		{"ox-1", "while-on-p2", bound2},
		{"ox-unknown", "unknown-device", now},
		{"ox-idle", "never-bound", now},
	}
	for _, m := range msgs {
		if err := r.submit(t, ctx, m.device, m.id, v1(m.id, m.at, vward.SpO2, 95)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every message acknowledged", func() bool { return len(r.acks.list()) == len(msgs) })

	got := map[string]vward.PatientID{}
	for _, rd := range r.store.readings() {
		got[rd.MsgID] = rd.Patient
	}
	want := map[string]vward.PatientID{"while-on-p1": "p1", "while-on-p2": "p2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored readings' patients = %v, want %v", got, want)
	}
	codes := map[string]string{}
	for _, rj := range r.dead.list() {
		codes[rj.MsgID] = rj.Code
		if rj.Reason == "" || len(rj.Payload) == 0 {
			t.Errorf("dead letter %+v lacks its reason or payload", rj)
		}
	}
	wantCodes := map[string]string{
		"before-any-binding": RejectUnassigned,
		"unknown-device":     RejectDevice,
		"never-bound":        RejectUnassigned,
	}
	if fmt.Sprint(codes) != fmt.Sprint(wantCodes) {
		t.Errorf("dead letters = %v, want %v", codes, wantCodes)
	}
	if r.obs.count() != 2 {
		t.Errorf("observer saw %d readings, want the 2 attributed", r.obs.count())
	}
	if got := value(r.m.Rejected.WithLabelValues(RejectUnassigned)); got != 2 {
		t.Errorf("rejected{code=unassigned_device} = %v, want 2", got)
	}
}

// A message's readings may each have their own time, and each belongs to
// the patient its device was bound to then: one message can straddle a
// change of binding, or begin before the device was bound at all.
func TestPipelineAttributesEachReadingAtItsTime(t *testing.T) {
	bound1, bound2 := now.Add(-2*time.Hour), now.Add(-time.Hour)
	r := newRig(t, Config{}, registry(t, bound1, bound2))
	r.run(t)
	ts := func(at time.Time) string { return at.Format(time.RFC3339Nano) }
	payload := fmt.Sprintf(`{"msg_id":"straddles","ts":%q,"readings":[
		{"type":"heart_rate","value":70,"ts":%q},
		{"type":"spo2","value":95,"ts":%q},
		{"type":"respiratory_rate","value":16,"ts":%q},
		{"type":"temperature","value":37.2}]}`,
		ts(bound2), ts(bound1.Add(-time.Minute)), ts(bound2.Add(-time.Second)), ts(bound2.Add(-time.Second)))
	if err := r.submit(t, context.Background(), "ox-1", "straddles", payload); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message acknowledged", func() bool { return len(r.acks.list()) == 1 })

	got := map[vward.ReadingKind]vward.PatientID{}
	for _, rd := range r.store.readings() {
		got[rd.Kind] = rd.Patient
	}
	want := map[vward.ReadingKind]vward.PatientID{vward.SpO2: "p1", vward.RespiratoryRate: "p1", vward.Temperature: "p2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored readings' patients = %v, want %v", got, want)
	}
	dead := r.dead.list()
	if len(dead) != 1 || dead[0].Code != RejectUnassigned || !strings.Contains(dead[0].Reason, "heart_rate at") ||
		strings.Contains(dead[0].Reason, "spo2") {
		t.Errorf("dead letters = %+v, want the heart rate alone refused as unassigned", dead)
	}
}

// Nothing is acknowledged while the store fails; once a write succeeds,
// every message is acknowledged, in the order it arrived.
func TestPipelineAcksOnlyAfterStore(t *testing.T) {
	r := newRig(t, Config{BatchSize: 3}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	r.store.failing.Store(true)
	r.run(t)
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("m%02d", i)
		ids = append(ids, id)
		if err := r.submit(t, context.Background(), "ox-1", id, v1(id, now.Add(time.Duration(i)*time.Second-time.Minute), vward.HeartRate, 70)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "several failed writes", func() bool { return r.store.writes.Load() >= 5 })
	if a := r.acks.list(); len(a) != 0 {
		t.Fatalf("acknowledged %v while the store was failing", a)
	}
	if r.p.StoreError() == nil || value(r.m.StoreUp) != 0 {
		t.Error("store failing, but StoreError is nil or store_up is not 0")
	}
	if r.p.InFlight() != 10 {
		t.Errorf("in flight = %d, want 10", r.p.InFlight())
	}
	r.store.failing.Store(false)
	waitFor(t, "every message acknowledged", func() bool { return len(r.acks.list()) == 10 })
	if got := r.acks.list(); !slices.Equal(got, ids) {
		t.Errorf("acks in order %v, want %v", got, ids)
	}
	if n := len(r.store.readings()); n != 10 {
		t.Errorf("stored %d readings, want 10", n)
	}
	if r.p.InFlight() != 0 || r.p.InFlightBytes() != 0 || r.p.StoreError() != nil {
		t.Errorf("after recovery: in flight %d (%d bytes), store error %v", r.p.InFlight(), r.p.InFlightBytes(), r.p.StoreError())
	}
	if value(r.m.WriteFailures.WithLabelValues(storeHistory)) < 5 {
		t.Error("write failures not counted")
	}
}

// MaxInFlight bounds what the pipeline holds: once reached, Submit blocks
// (and so would the broker connection) until a write frees room.
func TestPipelineBoundsMessagesInFlight(t *testing.T) {
	r := newRig(t, Config{MaxInFlight: 5, BatchSize: 2}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	r.store.gate = make(chan struct{})
	r.run(t)
	for i := range 5 {
		id := fmt.Sprintf("m%d", i)
		if err := r.submit(t, context.Background(), "ox-1", id, v1(id, now.Add(time.Duration(-i)*time.Second), vward.SpO2, 95)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := r.submit(t, ctx, "ox-1", "m5", v1("m5", now.Add(-10*time.Second), vward.SpO2, 95))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("6th Submit with 5 in flight = %v, want it to block until its deadline", err)
	}
	if r.p.InFlight() != 5 || value(r.m.InFlight) != 5 {
		t.Errorf("in flight = %d (gauge %v), want 5", r.p.InFlight(), value(r.m.InFlight))
	}

	// A blocked Submit proceeds as soon as a write frees room.
	blocked := make(chan error, 1)
	go func() {
		blocked <- r.submit(t, context.Background(), "ox-1", "m5", v1("m5", now.Add(-10*time.Second), vward.SpO2, 95))
	}()
	close(r.store.gate)
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Submit still blocked 10s after the store recovered")
	}
	waitFor(t, "all six acknowledged", func() bool { return len(r.acks.list()) == 6 })
}

// MaxInFlightBytes bounds the payload bytes held, whatever MaxInFlight says.
func TestPipelineBoundsBytesInFlight(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxPayload = 1024
	r := newRig(t, Config{Limits: lim, MaxInFlight: 1000, MaxInFlightBytes: 4 * (1024 + perMessageOverhead)}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	r.store.gate = make(chan struct{})
	r.run(t)
	big := func(id string) string { // ~1000 bytes: a valid message padded with an ignored field
		m := v1(id, now.Add(-time.Minute), vward.SpO2, 95)
		return m[:len(m)-1] + `,"pad":"` + strings.Repeat("x", 1000-len(m)-10) + `"}`
	}
	held := 0
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := r.submit(t, ctx, "ox-1", fmt.Sprint(i), big(fmt.Sprint(i)))
		cancel()
		if err != nil {
			break
		}
		held++
	}
	if held != 4 || r.p.InFlightBytes() > r.p.Config().MaxInFlightBytes {
		t.Errorf("held %d messages, %d bytes; want 4 within %d bytes", held, r.p.InFlightBytes(), r.p.Config().MaxInFlightBytes)
	}
	close(r.store.gate)
	waitFor(t, "the held messages acknowledged", func() bool { return len(r.acks.list()) == held })
	if r.p.InFlight() != 0 || r.p.InFlightBytes() != 0 {
		t.Errorf("after the writes: %d in flight, %d bytes", r.p.InFlight(), r.p.InFlightBytes())
	}
}

// A redelivered message (same device, msg_id and payload) is stored and
// acknowledged again but reaches alerting once; a reused msg_id with other
// content is new data and is scored.
func TestPipelineDuplicatesReachAlertingOnce(t *testing.T) {
	r := newRig(t, Config{}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	r.run(t)
	ctx := context.Background()
	first := v1("m1", now.Add(-time.Minute), vward.SpO2, 95)
	for range 3 {
		if err := r.p.Submit(ctx, Delivery{Topic: vward.ReadingsTopic("ox-1"), Payload: []byte(first), Ack: r.acks.ack("m1"), Redelivered: true}); err != nil {
			t.Fatal(err)
		}
	}
	reused := v1("m1", now.Add(-30*time.Second), vward.SpO2, 91)
	if err := r.submit(t, ctx, "ox-1", "m1-reused", reused); err != nil {
		t.Fatal(err)
	}
	// The same msg_id from another device is another message.
	if err := r.submit(t, ctx, "ox-unknown", "other-device", first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every delivery acknowledged", func() bool { return len(r.acks.list()) == 5 })
	if n := r.obs.count(); n != 2 {
		t.Errorf("observer saw %d readings, want 2 (the first copy and the reused id)", n)
	}
	if n := len(r.store.readings()); n != 4 {
		t.Errorf("stored %d readings, want every copy (4): a rewrite is harmless", n)
	}
	if d := value(r.m.Duplicates); d != 2 {
		t.Errorf("duplicates = %v, want 2", d)
	}
	if d := value(r.m.Redelivered); d != 3 {
		t.Errorf("redelivered = %v, want 3", d)
	}
}

// The dedup window is bounded: the oldest message is forgotten first.
func TestRecentMessagesIsBounded(t *testing.T) {
	rm := newRecentMessages(3)
	for _, id := range []string{"a", "b", "c", "d"} {
		if v := rm.check("ox-1", id, []byte(id)); v != firstSeen {
			t.Fatalf("%s: verdict %d on first sight", id, v)
		}
	}
	if len(rm.seen) != 3 {
		t.Errorf("remembers %d, want 3", len(rm.seen))
	}
	if rm.check("ox-1", "d", []byte("d")) != duplicate || rm.check("ox-1", "b", []byte("b")) != duplicate {
		t.Error("recent messages not recognised")
	}
	if rm.check("ox-1", "a", []byte("a")) != firstSeen {
		t.Error("the oldest message was not forgotten")
	}
	if rm.check("ox-1", "d", []byte("other")) != reused {
		t.Error("a reused msg_id with another payload is not flagged")
	}
}

// Shutdown stores and acknowledges what was queued; later deliveries are
// refused and stay unacknowledged for the broker to redeliver.
func TestPipelineShutdownFlushes(t *testing.T) {
	r := newRig(t, Config{BatchWait: time.Hour, BatchSize: 1000}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	r.run(t)
	for i := range 20 {
		id := fmt.Sprint(i)
		if err := r.submit(t, context.Background(), "ox-1", id, v1(id, now.Add(time.Duration(-i)*time.Second), vward.SpO2, 95)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.acks.list()); n != 0 {
		t.Fatalf("%d acknowledged before the batch was written", n)
	}
	r.shutdown(t)
	if n := len(r.acks.list()); n != 20 {
		t.Errorf("acknowledged %d at shutdown, want 20", n)
	}
	if n := len(r.store.readings()); n != 20 {
		t.Errorf("stored %d at shutdown, want 20", n)
	}
	if err := r.submit(t, context.Background(), "ox-1", "late", v1("late", now, vward.SpO2, 95)); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after shutdown = %v, want ErrClosed", err)
	}
}

// A shutdown that cannot store leaves everything unacknowledged.
func TestPipelineShutdownWithStoreDownAcksNothing(t *testing.T) {
	r := newRig(t, Config{FlushTimeout: 100 * time.Millisecond}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	r.store.failing.Store(true)
	r.run(t)
	for i := range 5 {
		id := fmt.Sprint(i)
		if err := r.submit(t, context.Background(), "ox-1", id, v1(id, now.Add(time.Duration(-i)*time.Second), vward.SpO2, 95)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a failed write", func() bool { return r.store.writes.Load() > 0 })
	r.shutdown(t)
	if a := r.acks.list(); len(a) != 0 {
		t.Errorf("acknowledged %v though nothing was stored", a)
	}
}

// SenML arrives on its own topic and takes the same path.
func TestPipelineTakesSenML(t *testing.T) {
	r := newRig(t, Config{}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	r.run(t)
	payload := fmt.Sprintf(`[{"bt":%d,"n":"heart_rate","u":"beat/min","v":72},{"n":"msg_id","vs":"s1"}]`, now.Add(-time.Minute).Unix())
	if err := r.p.Submit(context.Background(), Delivery{Topic: vward.SenMLTopic("ox-1"), Payload: []byte(payload), Ack: r.acks.ack("s1")}); err != nil {
		t.Fatal(err)
	}
	if err := r.p.Submit(context.Background(), Delivery{Topic: vward.TopicPrefix + "ox-1/cbor", Payload: []byte{0xa1}, Ack: r.acks.ack("cbor")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both acknowledged", func() bool { return len(r.acks.list()) == 2 })
	rs := r.store.readings()
	if len(rs) != 1 || rs[0].Patient != "p1" || rs[0].MsgID != "s1" || rs[0].Value != 72 {
		t.Errorf("stored %+v, want heart_rate 72 of p1 as s1", rs)
	}
	if dl := r.dead.list(); len(dl) != 1 || dl[0].Code != RejectTopic || dl[0].Device != "ox-1" {
		t.Errorf("dead letters = %+v, want one bad_topic for ox-1", dl)
	}
	if got := value(r.m.Received.WithLabelValues("senml")); got != 1 {
		t.Errorf("received{format=senml} = %v, want 1", got)
	}
}

// Operators read a text payload as text and any other as base64.
func TestRejectionJSON(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		payload []byte
		want    string
	}{
		{[]byte(`{"msg_id":"x"}`), `"payload":"{\"msg_id\":\"x\"}"`},
		{[]byte{0xff, 0x00}, `"payload_base64":"/wA="`},
	} {
		b, err := json.Marshal(Rejection{ID: 7, Device: "ox-1", Topic: "t", Code: RejectJSON, Reason: "r", Payload: tc.payload, Received: at})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), `"received_at":"2026-11-23T10:00:00Z"`) {
			t.Errorf("JSON %s, want it to contain %s", b, tc.want)
		}
	}
}

// openDeadLetters opens a dead-letter store on a SQLite file of its own.
func openDeadLetters(t *testing.T) *DeadLetterStore {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := OpenDeadLetters(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The dead-letter store lists newest first, by device, within a limit.
func TestDeadLetterStoreList(t *testing.T) {
	ctx := context.Background()
	s := openDeadLetters(t)
	var rs []Rejection
	for i := range 5 {
		dev := vward.DeviceID("ox-1")
		if i%2 == 1 {
			dev = "ox-2"
		}
		rs = append(rs, Rejection{Device: dev, Topic: vward.ReadingsTopic(dev), MsgID: fmt.Sprint(i), Code: RejectJSON, Reason: "r", Payload: []byte("p"), Received: now})
	}
	if err := s.Keep(ctx, rs); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, RejectionQuery{Device: "ox-1", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].MsgID != "4" || got[1].MsgID != "2" || !got[0].Received.Equal(now) {
		t.Errorf("List(ox-1, 2) = %+v, want msg 4 then 2", got)
	}
	all, _ := s.List(ctx, RejectionQuery{})
	if len(all) != 5 {
		t.Errorf("List all = %d, want 5", len(all))
	}
	next, _ := s.List(ctx, RejectionQuery{Device: "ox-1", Before: got[1].ID})
	if len(next) != 1 || next[0].MsgID != "0" {
		t.Errorf("the page after msg 2 = %+v, want msg 0", next)
	}
}

// A rejected payload is kept as a bounded prefix, cut between characters,
// with the whole payload's size and SHA-256; the store keeps rejections for
// DeadLetterRetention and within its byte bound, the oldest going first.
func TestDeadLettersBounded(t *testing.T) {
	ctx := context.Background()
	s := openDeadLetters(t)
	huge := []byte(strings.Repeat("é", 5<<20)) // 10 MB of two-byte characters
	sum := sha256.Sum256(huge)
	if err := s.Keep(ctx, []Rejection{{Device: "ox-1", Topic: "t", Code: RejectTooLarge, Reason: "r", Payload: huge, Received: now}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, RejectionQuery{})
	if err != nil || len(got) != 1 {
		t.Fatalf("List = %v, %v", got, err)
	}
	r := got[0]
	if len(r.Payload) > MaxKeptPayload || !utf8.Valid(r.Payload) || r.Size != len(huge) || r.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("kept %d bytes (valid UTF-8 %v), size %d, sha %s; want at most %d bytes of text, size %d, its SHA-256",
			len(r.Payload), utf8.Valid(r.Payload), r.Size, r.SHA256, MaxKeptPayload, len(huge))
	}
	b, _ := json.Marshal(r)
	var j map[string]any
	_ = json.Unmarshal(b, &j)
	if j["payload_truncated"] != true || j["payload_bytes"] != float64(len(huge)) {
		t.Errorf("JSON = %s, want payload_truncated and payload_bytes", b[:200])
	}

	// Age: a rejection older than the retention goes at the next sweep.
	if err := s.Sweep(ctx, now.Add(DeadLetterRetention+time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.List(ctx, RejectionQuery{}); len(got) != 0 {
		t.Fatalf("after the retention: %d kept, want 0", len(got))
	}
	// Size: with room for about ten, the newest ten stay.
	s.maxBytes = 10 * (MaxKeptPayload + 300)
	var rs []Rejection
	for i := range 50 {
		rs = append(rs, Rejection{Device: "ox-1", Topic: "t", MsgID: fmt.Sprint(i), Code: RejectTooLarge, Reason: "r", Payload: huge[:MaxKeptPayload], Received: now})
	}
	if err := s.Keep(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(ctx, now); err != nil {
		t.Fatal(err)
	}
	got, _ = s.List(ctx, RejectionQuery{Limit: 1000})
	if len(got) < 8 || len(got) > 11 || got[0].MsgID != "49" {
		t.Fatalf("after the size bound: %d kept, newest %q; want the newest ten or so", len(got), got[0].MsgID)
	}
}

// Alerting hears of each accepted message's device and battery once, and
// of devices' status messages; status messages are acknowledged in their
// turn, a malformed one is kept as a dead letter, and one from a device
// with no patient is dropped.
func TestPipelineTellsAlertingOfDevices(t *testing.T) {
	r := newRig(t, Config{}, registry(t, now.Add(-time.Hour), now.Add(time.Hour)))
	r.run(t)
	ctx := context.Background()
	at := now.Add(-time.Minute)
	msg := fmt.Sprintf(`{"msg_id":"m1","ts":%q,"readings":[{"type":"spo2","value":95},{"type":"heart_rate","value":70,"ts":%q}],"battery":0.15}`,
		at.Format(time.RFC3339), at.Add(30*time.Second).Format(time.RFC3339))
	for _, d := range []struct {
		topic, payload, id string
		retained           bool
	}{
		{vward.ReadingsTopic("ox-1"), msg, "m1", false},
		{vward.ReadingsTopic("ox-1"), msg, "m1 again", false},
		{vward.StatusTopic("ox-1"), "offline", "status offline", false},
		{vward.StatusTopic("ox-1"), fmt.Sprintf(`{"online":true,"ts":%q}`, now.Add(-5*time.Second).Format(time.RFC3339)), "status online", false},
		{vward.StatusTopic("ox-1"), `{"up":1}`, "status malformed", false},
		{vward.StatusTopic("ox-idle"), "online", "status unbound", false},
		// Replayed by the broker on subscribing: with no ts, its time is unknown.
		{vward.StatusTopic("ox-1"), "online", "status retained", true},
		{vward.StatusTopic("ox-1"), fmt.Sprintf(`{"online":true,"ts":%q}`, now.Add(-time.Hour).Format(time.RFC3339)), "status retained stamped", true},
	} {
		if err := r.p.Submit(ctx, Delivery{Topic: d.topic, Payload: []byte(d.payload), Ack: r.acks.ack(d.id), Retained: d.retained}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every message acknowledged", func() bool { return len(r.acks.list()) == 8 })
	want := []string{"m1", "m1 again", "status offline", "status online", "status malformed", "status unbound", "status retained", "status retained stamped"}
	if got := r.acks.list(); !slices.Equal(got, want) {
		t.Errorf("acks %v, want in arrival order %v", got, want)
	}
	devs, statuses := r.obs.calls()
	wantDevs := []string{"ox-1 p1 w1 battery=0.15 at=2026-11-23T10:15:00Z"}
	wantStatuses := []string{"ox-1 p1 w1 online=false at=2026-11-23T10:15:30Z", "ox-1 p1 w1 online=true at=2026-11-23T10:15:25Z",
		"ox-1 p1 w1 online=true at=0001-01-01T00:00:00Z", "ox-1 p1 w1 online=true at=2026-11-23T09:15:30Z"}
	if !slices.Equal(devs, wantDevs) || !slices.Equal(statuses, wantStatuses) {
		t.Errorf("ObserveDevice %q\nwant          %q\nDeviceStatus %q\nwant         %q", devs, wantDevs, statuses, wantStatuses)
	}
	if dl := r.dead.list(); len(dl) != 1 || dl[0].Code != RejectEnvelope || !strings.Contains(dl[0].Reason, "no online field") {
		t.Errorf("dead letters = %+v, want the malformed status", dl)
	}
	if got := value(r.m.Received.WithLabelValues("status")); got != 6 {
		t.Errorf("received{format=status} = %v, want 6", got)
	}
}

func TestDecodeStatus(t *testing.T) {
	for payload, want := range map[string]string{
		"online":     "online at 2026-11-23T10:15:30Z",
		" OFFLINE\n": "offline at 2026-11-23T10:15:30Z",
		`{"online":false,"ts":"2026-11-20T08:00:00Z"}`: "offline at 2026-11-20T08:00:00Z",
		`{"online":true}`:                             "online at 2026-11-23T10:15:30Z",
		`{"online":"yes"}`:                            "bad_json",
		`{"ts":"2026-11-20T08:00:00Z"}`:               "bad_envelope",
		`{"online":true,"ts":"yesterday"}`:            "bad_time",
		`{"online":true,"ts":"2027-01-01T00:00:00Z"}`: "bad_time",
		"up":                      "bad_json",
		strings.Repeat(" ", 2000): "too_large",
	} {
		st, err := DecodeStatus([]byte(payload), now, DefaultLimits())
		got := st.String()
		var re *RejectError
		if errors.As(err, &re) {
			got = re.Code
		} else if err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("DecodeStatus(%q) = %s, want %s", payload, got, want)
		}
	}
}
