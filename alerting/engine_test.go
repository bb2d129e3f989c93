package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
)

// clock is the injectable clock of these tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// recorder is a Publisher that keeps the alert events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Publish(e Event) {
	if e.Type != "alert" {
		return
	}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) changes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, fmt.Sprintf("%d:%s:%s", e.Alert.ID, e.Change, e.Alert.Risk))
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is an engine on a SQLite file, fed through a real Monitor.
type rig struct {
	path    string
	clock   *clock
	pub     *recorder
	engine  *Engine
	monitor *Monitor
}

func newRig(t testing.TB, path string, clk *clock, cfg Config) *rig {
	t.Helper()
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg.Clock = clk.Now
	pub := &recorder{}
	e, err := OpenEngine(context.Background(), db, cfg, pub, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMonitor(news2.DefaultFreshness(), nil, e, quiet)
	m.now = clk.Now
	m.Admit(PatientInfo{ID: "p1", Ward: "w1", Name: "One"})
	return &rig{path: path, clock: clk, pub: pub, engine: e, monitor: m}
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "vward.db") }

// vitals is one observation round.
type vitals struct{ rr, spo2, o2, sbp, hr, acvpu, temp float64 }

var (
	normal = vitals{16, 97, 0, 120, 70, 0, 37.0}  // NEWS2 0
	mild   = vitals{16, 97, 0, 120, 95, 0, 38.2}  // 2, low, 4–6-hourly
	red    = vitals{16, 97, 0, 120, 70, 1, 37.0}  // 3 in consciousness: low-medium
	medium = vitals{22, 94, 0, 105, 95, 0, 37.0}  // 5
	high   = vitals{22, 93, 0, 105, 115, 0, 38.3} // 8
	worse  = vitals{26, 90, 0, 88, 135, 0, 39.5}  // 17
)

func (v vitals) readings(p vward.PatientID, at time.Time, msg string) []vward.Reading {
	kinds := []vward.ReadingKind{vward.RespiratoryRate, vward.SpO2, vward.SupplementalOxygen, vward.SystolicBP, vward.HeartRate, vward.Consciousness, vward.Temperature}
	vals := []float64{v.rr, v.spo2, v.o2, v.sbp, v.hr, v.acvpu, v.temp}
	rs := make([]vward.Reading, len(kinds))
	for i, k := range kinds {
		rs[i] = vward.Reading{Device: vward.DeviceID("dev-" + p), Patient: p, Ward: "w1", MsgID: msg, Kind: k, Value: vals[i], At: at}
	}
	return rs
}

// observe delivers one round measured at at, received at the clock's time.
func (r *rig) observe(v vitals, at time.Time) {
	r.monitor.Observe(v.readings("p1", at, at.Format(time.RFC3339Nano)))
}

func (r *rig) open(t *testing.T) []Alert { return r.list(t, Filter{State: "open"}) }

// clinical returns the open clinical alerts: a test whose device falls
// silent for hours also has a device_offline alert.
func (r *rig) clinical(t *testing.T) []Alert {
	return r.list(t, Filter{State: "open", Queue: Clinical})
}

func (r *rig) list(t *testing.T, f Filter) []Alert {
	t.Helper()
	as, err := r.engine.Alerts(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func (r *rig) audit(t *testing.T, id int64) (Alert, []string) {
	t.Helper()
	a, audit, err := r.engine.Alert(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, e := range audit {
		acts = append(acts, e.Action)
	}
	return a, acts
}

func TestAlertBurstOfReadingsRaisesOneAlert(t *testing.T) {
	clk := &clock{t: t0}
	// The burst's readings come from one device milliseconds apart, a
	// stream; this test is of the dedup, not of the hold on a stream's
	// raise (TestStreamConfirm), whose confirmation by the ticking clock
	// would race the second burst.
	r := newRig(t, dbPath(t), clk, Config{QueueSize: 4, Policy: Policy{StreamConfirm: NoStreamConfirm}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.engine.Run(ctx) }()

	burst := func(v vitals, from time.Time) {
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 100 {
					at := from.Add(time.Duration(i*8+g) * time.Millisecond)
					r.observe(v, at)
					r.observe(v, at) // and each delivered twice
				}
			})
		}
		wg.Wait()
	}
	burst(medium, t0)
	clk.Set(t0.Add(time.Minute))
	burst(high, t0.Add(time.Minute))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	open := r.open(t)
	if len(open) != 1 || open[0].Risk != news2.High || open[0].State != Raised {
		t.Fatalf("open alerts after the burst = %+v, want one high", open)
	}
	_, acts := r.audit(t, open[0].ID)
	if !slices.Equal(acts, []string{ActRaised, ActUpgraded}) {
		t.Errorf("audit = %v, want raised then upgraded", acts)
	}
	if got := r.pub.changes(); !slices.Equal(got, []string{"1:raised:medium", "1:upgraded:high"}) {
		t.Errorf("board events = %v", got)
	}
	if n := r.engine.Stats.Assessed.Load(); n < 100 {
		t.Errorf("assessed %d sets, want the burst's", n)
	}
}

func TestAlertRedeliveredReadingsDoNotReraise(t *testing.T) {
	clk := &clock{t: t0}
	path := dbPath(t)
	cfg := Config{Policy: Policy{ClearPeriod: 10 * time.Minute}}
	r := newRig(t, path, clk, cfg)
	r.observe(high, t0)
	r.observe(high, t0) // redelivered
	open := r.open(t)
	if len(open) != 1 {
		t.Fatalf("open = %+v", open)
	}
	id := open[0].ID
	if _, err := r.engine.Acknowledge(context.Background(), id, "alice", ""); err != nil {
		t.Fatal(err)
	}
	for _, m := range []time.Duration{5, 10, 16} {
		clk.Set(t0.Add(m * time.Minute))
		r.observe(normal, t0.Add(m*time.Minute))
	}
	if a, _ := r.audit(t, id); a.State != Resolved {
		t.Fatalf("after three better sets over 11 minutes: %s", a.State)
	}
	// The old high message, redelivered after the resolution.
	r.observe(high, t0)
	// And again after a restart, when the monitor has forgotten the sets.
	clk.Set(t0.Add(20 * time.Minute))
	r2 := newRig(t, path, clk, cfg)
	r2.observe(high, t0)
	if open := r2.open(t); len(open) != 0 {
		t.Fatalf("redelivered readings re-raised: %+v", open)
	}
	// A new set that is high is a new alert.
	r2.observe(high, t0.Add(20*time.Minute))
	if open := r2.open(t); len(open) != 1 || open[0].ID == id {
		t.Fatalf("a new high set: open = %+v, want a new alert", open)
	}
}

func TestAlertRestartMidUnacknowledgedHigh(t *testing.T) {
	clk := &clock{t: t0}
	path := dbPath(t)
	r := newRig(t, path, clk, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.engine.Run(ctx) }()
	r.observe(high, t0)
	clk.Set(t0.Add(3 * time.Minute))
	r.engine.Tick()
	cancel() // vward stops three minutes in, nobody having acknowledged
	<-done

	// Twelve minutes in, a new engine on the same file.
	clk.Set(t0.Add(12 * time.Minute))
	r2 := newRig(t, path, clk, Config{})
	open := r2.open(t)
	if len(open) != 1 {
		t.Fatalf("open after restart = %+v", open)
	}
	a := open[0]
	if a.State != Raised || a.Risk != news2.High || a.Tier != 0 || !a.EscalateAt.Equal(t0.Add(10*time.Minute)) || !a.RemindAt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("alert after restart = %+v", a)
	}
	// The same patient still high: no duplicate.
	r2.observe(high, t0.Add(12*time.Minute))
	// The escalation due at 10 minutes fires at once.
	r2.engine.Tick()
	a, acts := r2.audit(t, a.ID)
	if a.Tier != 1 || !slices.Equal(acts, []string{ActRaised, ActEscalated}) {
		t.Fatalf("after the first tick: tier %d, audit %v", a.Tier, acts)
	}
	if !a.EscalateAt.Equal(t0.Add(20*time.Minute)) || !a.RemindAt.Equal(t0.Add(17*time.Minute)) {
		t.Errorf("next deadlines: escalate %s, remind %s", a.EscalateAt, a.RemindAt)
	}
	clk.Set(t0.Add(17 * time.Minute))
	r2.engine.Tick()
	clk.Set(t0.Add(20 * time.Minute))
	r2.engine.Tick()
	a, acts = r2.audit(t, a.ID)
	if a.Tier != 2 || !slices.Equal(acts, []string{ActRaised, ActEscalated, ActReminded, ActEscalated}) {
		t.Fatalf("at 20 minutes: tier %d, audit %v", a.Tier, acts)
	}
	if got := r2.pub.changes(); len(got) != 3 {
		t.Errorf("events of the new engine = %v, want escalated, reminded, escalated", got)
	}
	if n := len(r2.open(t)); n != 1 {
		t.Errorf("%d open alerts, want still one", n)
	}
}

// A start with thousands of patients writes a watch row (the overdue
// baseline) for each. The writer stores them many to a transaction, so
// ingest is not held up an fsync per patient, and after a restart every
// one is read back; alerts written among them keep their order.
func TestAlertManyPatientsWatchRowsSurviveRestart(t *testing.T) {
	clk := &clock{t: t0}
	path := dbPath(t)
	r := newRig(t, path, clk, Config{QueueSize: 64})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.engine.Run(ctx) }()
	const n = 3000
	for i := range n {
		v := mild
		if i%1000 == 0 {
			v = high
		}
		r.monitor.Observe(v.readings(vward.PatientID(fmt.Sprintf("p%04d", i)), t0, fmt.Sprintf("m%d", i)))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r2 := newRig(t, path, clk, Config{})
	if got := len(r2.engine.saved); got != n {
		t.Errorf("%d watch rows read back after a restart, want %d", got, n)
	}
	if got := r.pub.changes(); !slices.Equal(got, []string{"1:raised:high", "2:raised:high", "3:raised:high"}) {
		t.Errorf("board events = %v, want three raised in order", got)
	}
	if open := r2.open(t); len(open) != 3 {
		t.Errorf("%d open alerts after the restart, want 3", len(open))
	}
}

func TestAlertOverdue(t *testing.T) {
	clk := &clock{t: t0}
	path := dbPath(t)
	r := newRig(t, path, clk, Config{})
	r.observe(mild, t0) // NEWS2 2: 4–6-hourly, so due within 4 hours
	clk.Set(t0.Add(4 * time.Hour))
	r.engine.Tick()
	if open := r.clinical(t); len(open) != 0 {
		t.Fatalf("overdue at exactly 4h: %+v", open)
	}

	// Restarted meanwhile: the baseline survives.
	clk.Set(t0.Add(4*time.Hour + time.Second))
	r = newRig(t, path, clk, Config{})
	r.engine.Tick()
	open := r.clinical(t)
	if len(open) != 1 || open[0].Condition != Overdue || open[0].Queue != Clinical || open[0].Risk != news2.Low {
		t.Fatalf("open = %+v, want one overdue alert", open)
	}
	id := open[0].ID
	if !open[0].EscalateAt.Equal(t0.Add(8*time.Hour + time.Second)) {
		t.Errorf("overdue escalates at %s", open[0].EscalateAt)
	}
	r.engine.Tick() // still overdue: no duplicate, no change
	// A partial set does not end it; a complete one does.
	clk.Set(t0.Add(4*time.Hour + 10*time.Minute))
	r.monitor.Observe(high.readings("p1", clk.Now(), "partial")[:2])
	if a, _ := r.audit(t, id); a.State != Raised {
		t.Fatalf("after a partial set: %s", a.State)
	}
	r.observe(mild, clk.Now())
	a, acts := r.audit(t, id)
	if a.State != Cleared || !slices.Equal(acts, []string{ActRaised, ActCleared}) {
		t.Fatalf("after a complete set: %s, %v", a.State, acts)
	}
	if _, err := r.engine.Acknowledge(context.Background(), id, "alice", "device was off"); err != nil {
		t.Fatal(err)
	}
	if a, _ := r.audit(t, id); a.State != Resolved {
		t.Fatalf("acknowledged cleared overdue: %s", a.State)
	}
}

// The monitor keeps each admitted patient's watch and hands it back with
// every assessment. A watch the engine dropped (Unwatch: a discharge that
// raced the admission, or readings after it) must not be updated in the
// patient's place, or the patient would go unwatched: here, never overdue.
func TestAlertKeptWatchDroppedIsFoundAgain(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{}) // admits p1: the monitor keeps its watch
	r.engine.Unwatch("p1", "test")
	r.observe(mild, t0) // NEWS2 2: due within 4 hours
	clk.Set(t0.Add(4*time.Hour + time.Second))
	r.engine.Tick()
	if open := r.clinical(t); len(open) != 1 || open[0].Condition != Overdue {
		t.Fatalf("open = %+v, want p1 overdue: watched again from its reading", open)
	}
}

// The monitor keeps the engine's record of the device a patient's last
// message came from. A patient may use several devices; each message must
// count for its own, or a device in use would read as silent.
func TestAlertEachOfAPatientsDevicesIsHeard(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	silence := DefaultPolicy().DeviceSilence
	for _, d := range []vward.DeviceID{"ox-1", "bp-1"} {
		r.engine.DeviceStatus(d, "p1", "w1", true, t0) // both watched from the start
	}
	for at := t0; !at.After(t0.Add(2 * silence)); at = at.Add(silence / 4) {
		clk.Set(at)
		r.monitor.ObserveDevice("ox-1", "p1", "w1", nil, at)
		r.monitor.ObserveDevice("bp-1", "p1", "w1", nil, at)
		r.engine.Tick()
	}
	if off := r.offline(t); len(off) != 0 {
		t.Fatalf("offline alerts for %v, but both devices were heard every %s", off, silence/4)
	}
	clk.Set(t0.Add(3*silence + time.Minute)) // ox-1 last heard at 2 × silence
	r.monitor.ObserveDevice("bp-1", "p1", "w1", nil, clk.Now())
	r.engine.Tick()
	if off := r.offline(t); len(off) != 1 || off["ox-1"] == nil {
		t.Fatalf("offline alerts for %v, want ox-1's alone", off)
	}
}

func TestAlertTechnicalQueue(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	e := r.engine
	bat := func(v float64) *float64 { return &v }
	e.ObserveDevice("ox-1", "p1", "w1", bat(0.15), t0)
	e.ObserveDevice("ox-1", "p1", "w1", bat(0.12), t0) // no duplicate
	open := r.open(t)
	if len(open) != 1 || open[0].Condition != BatteryLow || open[0].Queue != Technical || open[0].Device != "ox-1" {
		t.Fatalf("open = %+v, want battery_low", open)
	}
	if ev := r.pub.events[0]; ev.Page || ev.Alert.Queue != Technical {
		t.Errorf("technical event pages: %+v", ev)
	}
	// A technical alert is never escalated or reminded.
	clk.Set(t0.Add(24 * time.Hour))
	e.ObserveDevice("ox-1", "p1", "w1", bat(0.25), clk.Now()) // between the thresholds
	e.Tick()
	if _, acts := r.audit(t, open[0].ID); !slices.Equal(acts, []string{ActRaised}) {
		t.Fatalf("battery audit after a day = %v", acts)
	}
	e.ObserveDevice("ox-1", "p1", "w1", bat(0.35), clk.Now())
	if a, acts := r.audit(t, open[0].ID); a.State != Resolved || a.ResolvedBy != System || !slices.Equal(acts, []string{ActRaised, ActResolved}) {
		t.Fatalf("battery recovered: %s, %v", a.State, acts)
	}

	// Silent for the ward's DeviceSilence: offline; heard again: resolved.
	clk.Set(t0.Add(25 * time.Hour))
	e.Tick()
	off := r.openOf(t, DeviceOffline)
	if off == nil {
		t.Fatal("no device_offline after an hour's silence")
	}
	e.ObserveDevice("ox-1", "p1", "w1", nil, clk.Now())
	if a, _ := r.audit(t, off.ID); a.State != Resolved {
		t.Fatalf("offline device heard again: %s", a.State)
	}
	// Its will says offline: an alert only if it stays away the grace.
	e.DeviceStatus("ox-1", "p1", "w1", false, clk.Now())
	clk.Set(t0.Add(25*time.Hour + 4*time.Minute))
	e.Tick()
	if r.openOf(t, DeviceOffline) != nil {
		t.Fatal("offline alert within the grace")
	}
	clk.Set(t0.Add(25*time.Hour + 5*time.Minute))
	e.Tick()
	if r.openOf(t, DeviceOffline) == nil {
		t.Fatal("no offline alert after the grace")
	}
}

// A device's status counts as hearing from it at the status's own time. A
// retained status that vward's (re)subscription replays, with no ts, is
// old news: it must not reset the device's silence, nor should an old ts.
func TestAlertDeviceStatusIsHeardAtItsOwnTime(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	e := r.engine
	silence := DefaultPolicy().DeviceSilence
	e.ObserveDevice("ox-1", "p1", "w1", nil, t0)

	// vward reconnects 40 minutes on: the retained "online" (no ts) and a
	// stamped one from before t0 are replayed. Neither is a sign of life.
	clk.Set(t0.Add(40 * time.Minute))
	e.DeviceStatus("ox-1", "p1", "w1", true, time.Time{})
	e.DeviceStatus("ox-1", "p1", "w1", true, t0.Add(-3*time.Hour))
	clk.Set(t0.Add(silence))
	e.Tick()
	off := r.openOf(t, DeviceOffline)
	if off == nil {
		t.Fatal("replayed statuses hid an hour's silence")
	}
	if want := "not heard from since " + t0.Format(time.RFC3339); !strings.Contains(off.Reason, want) {
		t.Errorf("reason %q, want it to say %q", off.Reason, want)
	}
	// A status newer than t0 but itself over an hour old does not resolve
	// it either; a fresh one does.
	clk.Set(t0.Add(silence + 10*time.Minute))
	e.DeviceStatus("ox-1", "p1", "w1", true, t0.Add(5*time.Minute))
	if a, _ := r.audit(t, off.ID); a.State != Raised {
		t.Fatalf("an old status resolved the offline alert: %s", a.State)
	}
	e.DeviceStatus("ox-1", "p1", "w1", true, clk.Now().Add(-time.Second))
	if a, _ := r.audit(t, off.ID); a.State != Resolved {
		t.Fatalf("a fresh online status: %s, want resolved", a.State)
	}

	// vward starts and is told, by a retained status, that a device it has
	// not heard from came online three hours ago: it is watched from now,
	// not alarmed at once.
	e.DeviceStatus("ox-2", "p2", "w1", true, clk.Now().Add(-3*time.Hour))
	e.Tick()
	if a := r.openOf(t, DeviceOffline); a != nil {
		t.Fatalf("alarm at the first tick for a device just watched: %+v", a)
	}
	start := clk.Now()
	clk.Set(start.Add(silence))
	e.Tick()
	if a := r.offline(t)["ox-2"]; a == nil || !strings.Contains(a.Reason, "since vward began listening") {
		t.Fatalf("ox-2's offline alert = %+v, want it silent an hour after watching began", a)
	}

	// A will that said offline two hours ago is offline since then: past
	// the grace already. An offline older than the device's last message
	// is stale and ignored.
	e.DeviceStatus("ox-3", "p3", "w1", false, clk.Now().Add(-2*time.Hour))
	e.ObserveDevice("ox-4", "p4", "w1", nil, clk.Now())
	e.DeviceStatus("ox-4", "p4", "w1", false, clk.Now().Add(-time.Minute))
	clk.Set(clk.Now().Add(time.Second))
	e.Tick()
	devs := slices.Sorted(maps.Keys(r.offline(t)))
	// (ox-1 has been silent again for an hour since its fresh status.)
	if want := []vward.DeviceID{"ox-1", "ox-2", "ox-3"}; !slices.Equal(devs, want) {
		t.Errorf("offline alerts for %v, want %v", devs, want)
	}
}

// offline returns the open device_offline alerts by device.
func (r *rig) offline(t *testing.T) map[vward.DeviceID]*Alert {
	t.Helper()
	m := map[vward.DeviceID]*Alert{}
	for _, a := range r.open(t) {
		if a.Condition == DeviceOffline {
			m[a.Device] = &a
		}
	}
	return m
}

func (r *rig) openOf(t *testing.T, c Condition) *Alert {
	t.Helper()
	for _, a := range r.open(t) {
		if a.Condition == c {
			return &a
		}
	}
	return nil
}

func TestAlertResolveWhileConditionHolds(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	r.observe(high, t0)
	id := r.open(t)[0].ID
	a, err := r.engine.Resolve(context.Background(), id, "alice", "transferred to ED")
	if err != nil || a.State != Resolved {
		t.Fatalf("resolve: %v, %+v", err, a)
	}
	_, audit, _ := r.engine.Alert(context.Background(), id)
	if last := audit[len(audit)-1]; last.Actor != "alice" || last.Note != "transferred to ED" || len(last.Observations) == 0 {
		t.Errorf("resolution audit = %+v", last)
	}
	// The set the clinician saw does not raise again; a newer high one does.
	w := r.engine.patients["p1"]
	r.engine.Assess(PatientInfo{ID: "p1", Ward: "w1"}, 0, w.set, w.res)
	if n := len(r.open(t)); n != 0 {
		t.Fatalf("the resolved set raised again: %d open", n)
	}
	r.observe(worse, t0.Add(time.Minute))
	if open := r.open(t); len(open) != 1 || open[0].ID == id || open[0].Risk != news2.High {
		t.Fatalf("a newer high set: %+v", open)
	}
	if _, err := r.engine.Acknowledge(context.Background(), id, "bob", ""); err == nil {
		t.Error("acknowledged a resolved alert")
	}
}

func TestAlertAuditKeepsTheScoredSet(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	r.observe(red, t0)
	open := r.open(t)
	if len(open) != 1 || open[0].Risk != news2.LowMedium || open[0].Score != 3 {
		t.Fatalf("red score: %+v", open)
	}
	_, audit, err := r.engine.Alert(context.Background(), open[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		At     time.Time `json:"at"`
		News2  Score     `json:"news2"`
		Values map[string]struct {
			Value float64   `json:"value"`
			At    time.Time `json:"at"`
		} `json:"values"`
	}
	if err := json.Unmarshal(audit[0].Observations, &ev); err != nil {
		t.Fatalf("observations %s: %v", audit[0].Observations, err)
	}
	if !ev.At.Equal(t0) || ev.News2.Score != 3 || !ev.News2.RedScore || ev.Values["consciousness"].Value != 1 || len(ev.Values) != 7 {
		t.Errorf("stored set = %+v", ev)
	}
	if audit[0].Reason == "" || audit[0].Actor != System {
		t.Errorf("raise audit = %+v", audit[0])
	}
}

func TestAlertResponseTimes(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	e := r.engine
	ctx := context.Background()
	raiseFor := func(p vward.PatientID, w vward.WardID, v vitals, ackAfter time.Duration) {
		r.monitor.Admit(PatientInfo{ID: p, Ward: w})
		clk.Set(t0)
		rs := v.readings(p, t0, string(p))
		for i := range rs {
			rs[i].Ward = w
		}
		r.monitor.Observe(rs)
		as, _ := e.Alerts(ctx, Filter{Patient: p, State: "open"})
		clk.Set(t0.Add(ackAfter))
		if _, err := e.Acknowledge(ctx, as[0].ID, "alice", ""); err != nil {
			t.Fatal(err)
		}
	}
	raiseFor("p1", "w1", high, 60*time.Second)
	raiseFor("p2", "w1", high, 120*time.Second)
	raiseFor("p3", "w1", medium, 600*time.Second)
	raiseFor("p4", "w2", high, 30*time.Second)
	e.ObserveDevice("ox-9", "p4", "w2", func() *float64 { v := 0.1; return &v }(), t0)
	tech, _ := e.Alerts(ctx, Filter{Queue: Technical})
	if _, err := e.Acknowledge(ctx, tech[0].ID, "alice", ""); err != nil {
		t.Fatal(err)
	}

	rows, err := e.ResponseTimes(ctx, []vward.WardID{"w1"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []ResponseTime{
		{Ward: "w1", Risk: news2.High, Count: 2, MeanSeconds: 90, MedianSeconds: 90, P90Seconds: 114, MaxSeconds: 120},
		{Ward: "w1", Risk: news2.Medium, Count: 1, MeanSeconds: 600, MedianSeconds: 600, P90Seconds: 600, MaxSeconds: 600},
	}
	if !slices.Equal(rows, want) {
		t.Errorf("w1 response times = %+v, want %+v", rows, want)
	}
	all, _ := e.ResponseTimes(ctx, nil, time.Time{})
	if len(all) != 3 {
		t.Errorf("all wards = %+v, want three rows (technical alerts do not count)", all)
	}
	if later, _ := e.ResponseTimes(ctx, nil, t0.Add(time.Hour)); len(later) != 0 {
		t.Errorf("since an hour later = %+v", later)
	}

	// Filters of the list.
	for _, tc := range []struct {
		f    Filter
		want int
	}{
		{Filter{}, 5}, {Filter{State: "open"}, 5}, {Filter{State: "acknowledged"}, 5}, {Filter{State: "resolved"}, 0},
		{Filter{Wards: []vward.WardID{"w2"}}, 2}, {Filter{Wards: []vward.WardID{}}, 0}, {Filter{Patient: "p3"}, 1},
		{Filter{Condition: News2}, 4}, {Filter{Queue: Clinical}, 4},
	} {
		got, err := e.Alerts(ctx, tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("Alerts(%+v) = %d alerts, %v; want %d", tc.f, len(got), err, tc.want)
		}
	}
}

func TestAlertWardPolicyOverrides(t *testing.T) {
	cfg := Config{
		Policy: Policy{AckTimeout: PerRisk{High: 20 * time.Minute}},
		Wards:  map[vward.WardID]Policy{"w2": {AckTimeout: PerRisk{High: 5 * time.Minute}, Tiers: []string{"ward", "SPA"}}},
	}.withDefaults()
	if got := cfg.PolicyFor("w1").AckTimeout.High; got != 20*time.Minute {
		t.Errorf("w1 high ack timeout = %s", got)
	}
	w2 := cfg.PolicyFor("w2")
	if w2.AckTimeout.High != 5*time.Minute || w2.AckTimeout.Medium != 30*time.Minute || len(w2.Tiers) != 2 || w2.ClearSets != 3 {
		t.Errorf("w2 policy = %+v", w2)
	}
}
