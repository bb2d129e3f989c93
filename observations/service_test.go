package observations_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/sqlitedb"
)

// A restart rebuilds the set from the history's device readings and the
// entries not in error: the history's newest entered reading may be one
// marked in error, and it must not come back.
func TestRestoreLeavesOutEntriesInError(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.AddWard(ctx, devices.Ward{ID: "w1", Name: "w1"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Admit(ctx, devices.Patient{ID: "p1", Ward: "w1", Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	store, err := observations.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	hist := history.NewMemory(100)
	mon := alerting.NewMonitor(news2.DefaultFreshness(), nil, nil, log)
	mon.Admit(alerting.PatientInfo{ID: "p1", Ward: "w1"})
	svc := observations.NewService(store, hist, mon, log)
	enter := func(source, at string, rr string) observations.Entry {
		t.Helper()
		e, err := svc.Enter(devices.WithActor(ctx, "nurse"), "p1", observations.Input{Source: source, MeasuredAt: at,
			Readings: map[string]json.RawMessage{"respiratory_rate": json.RawMessage(rr)}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	good := enter("telephone", time.Now().Add(-10*time.Minute).UTC().Format(time.RFC3339), "18")
	bad := enter("telephone", "", "35")
	if !good.Stored || !bad.Stored {
		t.Fatalf("entries not stored: %+v %+v", good, bad)
	}
	if _, err := svc.MarkEnteredInError(devices.WithActor(ctx, "nurse"), bad.ID, "wrong patient"); err != nil {
		t.Fatal(err)
	}
	if row, _ := mon.Patient("p1"); row.Vitals[vward.RespiratoryRate.Index()].Value != 18 {
		t.Fatalf("after the mark, the live set holds %+v, want 18", row.Vitals[vward.RespiratoryRate.Index()])
	}

	from := time.Now().Add(-24 * time.Hour)
	latest, err := hist.Latest(ctx, from, time.Now().Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	restarted := alerting.NewMonitor(news2.DefaultFreshness(), nil, nil, log)
	restarted.Admit(alerting.PatientInfo{ID: "p1", Ward: "w1"})
	restarted.Restore(svc.Restore(ctx, latest, from))
	row, _ := restarted.Patient("p1")
	if v := row.Vitals[vward.RespiratoryRate.Index()]; v.Value != 18 || v.MsgID != good.Name() {
		t.Errorf("after a restart, respiratory rate %+v; want %s's 18, not the 35 in error", v, good.Name())
	}
}
