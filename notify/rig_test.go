package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/notify"
	"github.com/vward/vward/sqlitedb"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is the engine's and the dispatcher's injected clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rig is a registry, an alert engine and a monitor on one SQLite file, with
// an inbox for the engine's events and the notify store.
type rig struct {
	db       *sqlitePair
	clock    *clock
	registry *devices.Registry
	engine   *alerting.Engine
	monitor  *alerting.Monitor
	inbox    *notify.Inbox
	store    *notify.Store
}

type sqlitePair struct{ path string }

func newRig(t *testing.T) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vward.db")
	return openRig(t, path, &clock{t: time.Now().UTC().Truncate(time.Second)})
}

func openRig(t *testing.T, path string, clk *clock) *rig {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Ward(ctx, "w1"); err != nil {
		if err := reg.AddWard(ctx, devices.Ward{ID: "w1", Name: "Ward one"}); err != nil {
			t.Fatal(err)
		}
		if err := reg.Admit(ctx, devices.Patient{ID: "p1", Ward: "w1", Name: "Ada Lovelace"}); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"alice", "bob", "carol"} {
			if err := reg.AddClinician(ctx, devices.Clinician{Username: u, Role: "clinician", Wards: []vward.WardID{"w1"}}, "password-"+u); err != nil {
				t.Fatal(err)
			}
		}
	}
	inbox := notify.NewInbox(0)
	e, err := alerting.OpenEngine(ctx, db, alerting.Config{Clock: clk.Now}, inbox, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, e, quiet)
	m.Admit(alerting.PatientInfo{ID: "p1", Ward: "w1", Name: "Ada Lovelace"})
	st, err := notify.OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{db: &sqlitePair{path}, clock: clk, registry: reg, engine: e, monitor: m, inbox: inbox, store: st}
}

// dispatch runs a dispatcher until the test ends.
func (r *rig) dispatch(t *testing.T, cfg notify.Config) *notify.Dispatcher {
	t.Helper()
	return r.dispatchWith(t, cfg, nil)
}

func (r *rig) dispatchWith(t *testing.T, cfg notify.Config, rep notify.ChannelReporter) *notify.Dispatcher {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = r.clock.Now
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 10 * time.Millisecond
	}
	d := notify.NewDispatcher(cfg, r.inbox, r.store, r.engine.Store(), r.registry, rep, nil, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return d
}

// high delivers a NEWS2 8 set (high risk) for p1, measured now.
func (r *rig) high() {
	at := r.clock.Now()
	kinds := []vward.ReadingKind{vward.RespiratoryRate, vward.SpO2, vward.SupplementalOxygen, vward.SystolicBP, vward.HeartRate, vward.Consciousness, vward.Temperature}
	vals := []float64{22, 93, 0, 105, 115, 0, 38.3}
	rs := make([]vward.Reading, len(kinds))
	for i, k := range kinds {
		rs[i] = vward.Reading{Device: "dev-p1", Patient: "p1", Ward: "w1", MsgID: at.String(), Kind: k, Value: vals[i], At: at}
	}
	r.monitor.Observe(rs)
}

func (r *rig) openAlert(t *testing.T) alerting.Alert {
	t.Helper()
	as, err := r.engine.Alerts(context.Background(), alerting.Filter{State: "open", Queue: alerting.Clinical})
	if err != nil || len(as) != 1 {
		t.Fatalf("open clinical alerts: %v, %v", as, err)
	}
	return as[0]
}

const secret = "a-webhook-secret-of-enough-length"

func (r *rig) webhook(t *testing.T, name, url string) {
	t.Helper()
	if err := r.store.PutChannel(context.Background(), notify.ChannelConfig{Name: name, Kind: notify.KindWebhook, URL: url, Secret: secret}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) route(t *testing.T, rt notify.Route) {
	t.Helper()
	if rt.Ward == "" {
		rt.Ward = "w1"
	}
	if rt.Queue == "" {
		rt.Queue = alerting.Clinical
	}
	if _, err := r.store.AddRoute(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
}

// waitDeliveries waits until the alert's delivery log satisfies ok.
func (r *rig) waitDeliveries(t *testing.T, alert int64, what string, ok func([]notify.Delivery) bool) []notify.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := r.store.Deliveries(context.Background(), alert)
		if err != nil {
			t.Fatal(err)
		}
		if ok(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(ds, "", "  ")
			t.Fatalf("delivery log of alert %d never showed %s:\n%s", alert, what, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func count(ds []notify.Delivery, recipient, result string) int {
	n := 0
	for _, d := range ds {
		if d.Recipient == recipient && d.Result == result {
			n++
		}
	}
	return n
}

// receiver is a real HTTP server that records each request, verifies its
// signature the documented way, and answers with the status fail chooses.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []received
	fail func(n int) int // status for the nth request (1-based); 0 is 200
}

type received struct {
	n          notify.Notification
	key        string
	ts, sig    string
	body       []byte
	verifyErr  error
	answeredAt time.Time
}

func newReceiver(t *testing.T, fail func(n int) int) *receiver {
	rc := &receiver{fail: fail}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		ts, sig := req.Header.Get(notify.HeaderTimestamp), req.Header.Get(notify.HeaderSignature)
		g := received{key: req.Header.Get(notify.HeaderIdempotency), ts: ts, sig: sig, body: body,
			verifyErr: notify.VerifySignature([]byte(secret), ts, sig, body, time.Now(), notify.ReplayWindow), answeredAt: time.Now()}
		_ = json.Unmarshal(body, &g.n)
		rc.mu.Lock()
		rc.got = append(rc.got, g)
		n := len(rc.got)
		rc.mu.Unlock()
		status := 0
		if rc.fail != nil {
			status = rc.fail(n)
		}
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) waitFor(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := rc.requests(); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d requests, want %d", len(rc.requests()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
