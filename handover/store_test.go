package handover

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/sqlitedb"
)

type fixture struct {
	reg     *devices.Registry
	engine  *alerting.Engine
	monitor *alerting.Monitor
	entries *observations.Store
	store   *Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{}
	if f.reg, err = devices.Open(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.AddWard(ctx, devices.Ward{ID: "w1", Name: "Frailty East"}); err != nil {
		t.Fatal(err)
	}
	if err := f.reg.Admit(ctx, devices.Patient{ID: "p1", Ward: "w1", Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if f.engine, err = alerting.OpenEngine(ctx, db, alerting.Config{}, nil, log); err != nil {
		t.Fatal(err)
	}
	f.monitor = alerting.NewMonitor(news2.DefaultFreshness(), nil, f.engine, log)
	f.monitor.Admit(alerting.PatientInfo{ID: "p1", Ward: "w1", Name: "Ada"})
	if f.entries, err = observations.Open(ctx, db, f.reg); err != nil {
		t.Fatal(err)
	}
	if f.store, err = Open(ctx, db); err != nil {
		t.Fatal(err)
	}
	return f
}

// highAlert makes p1 score NEWS2 8 from a device and a telephone entry,
// and returns the alert raised.
func (f *fixture) highAlert(t *testing.T) alerting.Alert {
	t.Helper()
	ctx := devices.WithActor(context.Background(), "alice")
	e, err := f.entries.Enter(ctx, "p1", observations.Input{Source: "telephone",
		Readings: map[string]json.RawMessage{"respiratory_rate": json.RawMessage("22"), "consciousness": json.RawMessage(`"A"`)}})
	if err != nil {
		t.Fatal(err)
	}
	rs := e.Readings
	at := e.MeasuredAt
	for k, v := range map[vward.ReadingKind]float64{vward.SpO2: 93, vward.SupplementalOxygen: 0, vward.SystolicBP: 105, vward.HeartRate: 115, vward.Temperature: 38.3} {
		rs = append(rs, vward.Reading{Device: "ox-1", Patient: "p1", Ward: "w1", Kind: k, Value: v, At: at})
	}
	f.monitor.Observe(rs)
	as, err := f.engine.Alerts(context.Background(), alerting.Filter{State: "open", Patient: "p1"})
	if err != nil || len(as) != 1 || as[0].Risk != news2.High {
		t.Fatalf("alerts: %+v %v", as, err)
	}
	return as[0]
}

// From the command line there is no monitor: the set is the alert's
// evidence, and the people's values are named from their entries.
func TestHandoverFromTheAlertsEvidence(t *testing.T) {
	f := newFixture(t)
	al := f.highAlert(t)
	svc := NewService(Deps{Store: f.store, Alerts: StoredAlerts(f.engine.Store()), Registry: f.reg, Sets: NewAlertEvidence(f.entries, f.engine.Store())})
	h, err := svc.Handover(devices.WithActor(context.Background(), "cli:nurse"), al.ID, "urgent_community_response", "")
	if err != nil {
		t.Fatal(err)
	}
	if n := h.SBARD.Situation.News2; n == nil || n.Score != 8 || !n.Complete {
		t.Errorf("news2: %+v", n)
	}
	src := map[string]string{}
	for _, m := range h.SBARD.Assessment.Observations {
		src[m.Parameter] = m.Source
	}
	if src["respiratory_rate"] != "telephone, entered by alice (obs-1)" || src["spo2"] != "a device" {
		t.Errorf("sources: %v", src)
	}
	if h.By != "cli:nurse" || !strings.Contains(h.Text, "Handed over to: 2-hour urgent community response") {
		t.Errorf("handover by %s:\n%s", h.By, h.Text)
	}
}

// The step-up figures count the handovers made in the window, by
// destination, and their outcomes as recorded since.
func TestStepUp(t *testing.T) {
	f := newFixture(t)
	al := f.highAlert(t)
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	clock := now
	svc := NewService(Deps{Store: f.store, Alerts: f.engine, Registry: f.reg, Sets: NewLiveSets(f.monitor, f.entries, f.engine.Store()),
		Clock: func() time.Time { return clock }})
	ctx := devices.WithActor(context.Background(), "alice")
	made := []struct {
		ago     time.Duration
		to      string
		outcome string
	}{
		{10 * 24 * time.Hour, "999", "admitted"}, // before the window
		{3 * 24 * time.Hour, "999", "conveyed"},
		{2 * 24 * time.Hour, "gp", "no_further_action"},
		{24 * time.Hour, "urgent_community_response", "seen_at_home"},
		{time.Hour, "urgent_community_response", ""},
	}
	for _, m := range made {
		clock = now.Add(-m.ago)
		h, err := svc.Handover(ctx, al.ID, m.to, "")
		if err != nil {
			t.Fatal(err)
		}
		if m.outcome != "" {
			if _, err := svc.RecordOutcome(ctx, h.ID, m.outcome, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := svc.StepUp(context.Background(), "w1", now.Add(-7*24*time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	want := devices.StepUp{Handovers: 4, Awaiting: 1,
		ByDestination: map[string]int{"999": 1, "gp": 1, "urgent_community_response": 2},
		Outcomes:      map[string]int{"conveyed": 1, "no_further_action": 1, "seen_at_home": 1}}
	if b, w := mustJSON(got), mustJSON(want); b != w {
		t.Errorf("step-up %s, want %s", b, w)
	}
	if other, err := svc.StepUp(context.Background(), "w2", now.Add(-30*24*time.Hour), now); err != nil || other.Handovers != 0 {
		t.Errorf("another ward's step-up: %+v %v", other, err)
	}

	// A second outcome is refused, and the first kept.
	hs, err := svc.Handovers(context.Background(), al.ID)
	if err != nil || len(hs) != 5 {
		t.Fatalf("handovers: %d %v", len(hs), err)
	}
	_, err = svc.RecordOutcome(ctx, hs[0].ID, "conveyed", "")
	if !errors.Is(err, vward.ErrConflict) || !strings.Contains(err.Error(), "already has its outcome: admitted") {
		t.Errorf("second outcome: %v", err)
	}
	if h, _ := svc.Get(context.Background(), hs[0].ID); h.Outcome != Admitted {
		t.Errorf("the first outcome became %q", h.Outcome)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
