package mqttsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/sqlitedb"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// now is when the test binary started. The pipeline reads the real clock
// (a source's messages arrive in real time), so the tests' readings are
// dated around it.
var now = time.Now().UTC().Truncate(time.Second)

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

// gatedStore blocks while gate is closed.
type gatedStore struct {
	mem    *history.Memory
	gate   chan struct{} // nil: never blocks
	mu     sync.Mutex
	stored []vward.Reading
}

func (s *gatedStore) WriteReadings(ctx context.Context, rs []vward.Reading) error {
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
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
	rs []ingest.Rejection
}

func (d *deadList) Keep(_ context.Context, rs []ingest.Rejection) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rs = append(d.rs, rs...)
	return nil
}

// observed records the device statuses the observer heard of.
type observed struct {
	mu       sync.Mutex
	statuses []string // DeviceStatus calls
}

func (o *observed) Observe([]vward.Reading) {}

func (o *observed) ObserveDevice(vward.DeviceID, vward.PatientID, vward.WardID, *float64, time.Time) {
}

func (o *observed) DeviceStatus(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, online bool, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.statuses = append(o.statuses, fmt.Sprintf("%s %s %s online=%v at=%s", device, patient, ward, online, at.Format(time.RFC3339)))
}

func (o *observed) calls() ([]string, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return nil, slices.Clone(o.statuses)
}

// registry opens a real registry in a temp SQLite file with device ox-1
// bound to p1 from bound1 and to p2 from bound2, and ox-idle registered but
// never bound.
func registry(t *testing.T, bound1, bound2 time.Time) *devices.Registry {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	admitted := bound1.Add(-24 * time.Hour)
	steps := []error{
		reg.AddWard(ctx, devices.Ward{ID: "w1", Name: "Respiratory"}),
		reg.Admit(ctx, devices.Patient{ID: "p1", Ward: "w1", Name: "First Patient", Admitted: admitted}),
		reg.Admit(ctx, devices.Patient{ID: "p2", Ward: "w1", Name: "Second Patient", Admitted: admitted}),
	}
	for _, id := range []vward.DeviceID{"ox-1", "ox-idle"} {
		_, err := reg.AddDevice(ctx, id, "pulse oximeter")
		steps = append(steps, err)
	}
	steps = append(steps, reg.Assign(ctx, "ox-1", "p1", bound1), reg.Assign(ctx, "ox-1", "p2", bound2))
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	return reg
}

// rig is a pipeline over an in-memory store, for a source to feed.
type rig struct {
	p     *ingest.Pipeline
	store *gatedStore
	obs   *observed
	m     *ingest.Metrics
	// broker is the metrics of the source that feeds the pipeline.
	broker *Metrics
	// notices carries the pipeline's rejections to the source.
	notices chan ingest.Rejection
}

func newRig(t *testing.T, cfg ingest.Config, reg ingest.Registry) *rig {
	t.Helper()
	r := &rig{store: &gatedStore{mem: history.NewMemory(100000)}, obs: &observed{}, m: ingest.NewMetrics(nil), broker: NewMetrics(nil),
		notices: make(chan ingest.Rejection, 16)}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = time.Millisecond
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = time.Millisecond, 10*time.Millisecond
	}
	r.p = ingest.NewPipeline(cfg, r.store, reg, r.obs, &deadList{}, r.notices, r.m, quietLog)
	return r
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
