package registrysync_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vward "github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/registrysync"
	"github.com/vward/vward/sqlitedb"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// node is a registry and an alert engine on one SQLite file, as vward has.
type node struct {
	reg    *devices.Registry
	engine *alerting.Engine
	mon    *alerting.Monitor
	sync   *registrysync.Sync
}

// open opens path as a starting vward does: the engine loads what was open,
// and the first sync tells the monitor of every patient.
func open(t *testing.T, path string, clk *clock) *node {
	t.Helper()
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	e, err := alerting.OpenEngine(ctx, db, alerting.Config{Clock: clk.Now}, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ectx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- e.Run(ectx) }()
	t.Cleanup(func() { cancel(); <-done })
	mon := alerting.NewMonitor(news2.DefaultFreshness(), nil, e, quiet)
	n := &node{reg: reg, engine: e, mon: mon, sync: registrysync.New(reg, mon, quiet)}
	if err := n.sync.All(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *node) open(t *testing.T) []alerting.Alert {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // the engine's writer
	as, err := n.engine.Alerts(context.Background(), alerting.Filter{State: "open"})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// Changes made with the CLI while vward was down take effect when it
// starts: a patient paused meanwhile has their device alert withdrawn, one
// discharged meanwhile has theirs withdrawn too, each saying who did it.
func TestChangesWhileDownTakeEffectAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vward.db")
	clk := &clock{t: time.Now().Truncate(time.Second)}
	n := open(t, path, clk)
	ctx := devices.WithActor(context.Background(), "cli:ops")
	if err := n.reg.AddWard(ctx, devices.Ward{ID: "w1", Name: "One"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []vward.PatientID{"p-pause", "p-leave"} {
		if err := n.reg.Admit(ctx, devices.Patient{ID: p, Ward: "w1", Name: string(p)}); err != nil {
			t.Fatal(err)
		}
		if _, err := n.reg.AddDevice(ctx, vward.DeviceID("ox-"+p), "pulse oximeter"); err != nil {
			t.Fatal(err)
		}
		if err := n.reg.Assign(ctx, vward.DeviceID("ox-"+p), p, clk.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.sync.All(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []vward.PatientID{"p-pause", "p-leave"} {
		n.mon.ObserveDevice(vward.DeviceID("ox-"+p), p, "w1", nil, clk.Now())
	}
	clk.Add(2 * time.Hour)
	n.engine.Tick()
	if got := n.open(t); len(got) != 2 {
		t.Fatalf("open = %+v, want device_offline for both", got)
	}

	// vward stops; the CLI pauses one patient and discharges the other.
	if err := n.reg.Pause(ctx, "p-pause", "admitted to the Royal"); err != nil {
		t.Fatal(err)
	}
	if err := n.reg.Discharge(ctx, "p-leave", "recovered", "pathway complete", time.Time{}); err != nil {
		t.Fatal(err)
	}
	restarted := open(t, path, clk)
	if got := restarted.open(t); len(got) != 0 {
		t.Fatalf("open after the restart = %+v, want none", got)
	}
	as, err := restarted.engine.Alerts(context.Background(), alerting.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		want := "monitoring paused: patient.pause (admitted → paused) by cli:ops"
		if a.Patient == "p-leave" {
			want = "discharged: patient.discharge"
		}
		if !strings.Contains(a.Reason, want) {
			t.Errorf("%s %s: reason %q, want it to say %q", a.Patient, a.Condition, a.Reason, want)
		}
	}
	clk.Add(2 * time.Hour)
	restarted.engine.Tick()
	if got := restarted.open(t); len(got) != 0 {
		t.Fatalf("open two hours after the restart = %+v, want none: one paused, one discharged", got)
	}
}

func TestCause(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		e    devices.AuditEntry
		want string
	}{
		{devices.AuditEntry{Action: "patient.pause", Actor: "alice", At: at, Reason: "admitted"}, "patient.pause by alice at 2026-12-03T09:30:00Z: admitted"},
		{devices.AuditEntry{Action: "device.unassign", Actor: "cli:ops", At: at, Detail: "from patient p1"}, "device.unassign (from patient p1) by cli:ops at 2026-12-03T09:30:00Z"},
	} {
		if got := registrysync.Cause(tc.e); got != tc.want {
			t.Errorf("Cause(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
}
