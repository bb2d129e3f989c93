package mqttsource

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/devices/devicestest"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
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

// registry is devicestest.TwoStays: ox-1 bound to p1 from bound1 and to
// p2 from bound2, ox-idle never bound.
func registry(t *testing.T, bound1, bound2 time.Time) *devices.Registry {
	return devicestest.TwoStays(t, bound1, bound2)
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
	r.p = ingest.NewPipeline(cfg, r.store, reg, r.obs, &deadList{}, nil, r.notices, r.m, quietLog)
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
