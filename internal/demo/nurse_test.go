package demo

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
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

// The virtual nurse's telephone calls, through the real observations
// service and monitor: the earlier round leaves every patient's answers
// stale; each call then completes the NEWS2 of whoever has gone longest
// without one, of the patients a call can complete, entered by
// NurseActor by telephone; a patient with no blood pressure cuff waits
// for a visit; and when nobody is left, nobody is called.
func TestNurseCompletesScoresByTelephone(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Seed(ctx, reg, Options{Patients: 4, Simulate: true, Seed: 1, NurseEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mon := alerting.NewMonitor(news2.DefaultFreshness(), nil, nil, log)
	for i := range 4 {
		mon.Admit(alerting.PatientInfo{ID: PatientID(i), Ward: Ward, Name: nameOf(s, PatientID(i))})
	}
	store, err := observations.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	service := observations.NewService(store, history.NewMemory(1000), mon, log)
	now := time.Now()
	nurse, err := NewNurse(s, mon, service, now, log)
	if err != nil {
		t.Fatal(err)
	}
	// What each patient's devices sent a minute ago.
	for _, d := range s.Devices {
		var kinds []vward.ReadingKind
		switch d.Kind {
		case "oximeter":
			kinds = []vward.ReadingKind{vward.SpO2, vward.HeartRate}
		case "wearable":
			kinds = []vward.ReadingKind{vward.SpO2, vward.HeartRate, vward.RespiratoryRate}
		case "bp_cuff":
			kinds = []vward.ReadingKind{vward.SystolicBP, vward.DiastolicBP}
		case "thermometer":
			kinds = []vward.ReadingKind{vward.Temperature}
		}
		values := map[vward.ReadingKind]float64{vward.SpO2: 97, vward.HeartRate: 72, vward.RespiratoryRate: 15,
			vward.SystolicBP: 128, vward.DiastolicBP: 78, vward.Temperature: 36.8}
		for _, k := range kinds {
			mon.Observe([]vward.Reading{{Device: d.ID, Patient: d.Patient, Ward: Ward, Kind: k, Value: values[k], At: now.Add(-time.Minute)}})
		}
	}

	nurse.earlierRound(ctx)
	round, err := store.Since(ctx, "", now.Add(-24*time.Hour))
	if err != nil || len(round) != 4 {
		t.Fatalf("the earlier round entered %d calls (%v), want one a patient", len(round), err)
	}
	earlier := map[vward.PatientID]time.Time{}
	for _, e := range round {
		earlier[e.Patient] = e.MeasuredAt
		if ago := now.Sub(e.MeasuredAt); ago < 2*time.Hour || ago > 5*time.Hour {
			t.Errorf("%s's earlier call was %s ago, want 2 to 5 hours", e.Patient, ago)
		}
	}
	for _, r := range mon.Snapshot(nil) {
		if r.Result.Complete {
			t.Errorf("%s is complete after the earlier round alone", r.Patient)
		}
		for _, n := range r.Needs() {
			if n.Parameter == news2.Consciousness && !n.LastAt.Equal(earlier[r.Patient]) {
				t.Errorf("%s's ACVPU was last measured at %v, want the earlier round's %v", r.Patient, n.LastAt, earlier[r.Patient])
			}
		}
	}

	// p-001 has no cuff: no call completes her. The others are called
	// longest-waiting first.
	callable := []vward.PatientID{"p-002", "p-003", "p-004"}
	slices.SortFunc(callable, func(a, b vward.PatientID) int { return earlier[a].Compare(earlier[b]) })
	for i, want := range callable {
		nurse.now = func() time.Time { return now.Add(time.Duration(10*i) * time.Second) }
		if got := nurse.Call(ctx); got != want {
			t.Fatalf("call %d went to %q, want %s, who has waited longest", i+1, got, want)
		}
		row, _ := mon.Patient(want)
		if !row.Result.Complete || len(row.Needs()) != 0 {
			t.Errorf("after the call %s scores %+v and needs %+v, want a complete NEWS2", want, row.Result, row.Needs())
		}
		es, err := store.Since(ctx, want, now.Add(-time.Minute))
		if err != nil || len(es) != 1 {
			t.Fatalf("%s's entries since the call: %v %v", want, es, err)
		}
		e := es[0]
		if e.Author != NurseActor || e.Source != observations.Telephone {
			t.Errorf("the call was entered by %q from %q, want %q by telephone", e.Author, e.Source, NurseActor)
		}
		var kinds []vward.ReadingKind
		for _, r := range e.Readings {
			kinds = append(kinds, r.Kind)
		}
		wantKinds := []vward.ReadingKind{vward.RespiratoryRate, vward.SupplementalOxygen, vward.Consciousness}
		if want == "p-003" { // a patch measures her breathing
			wantKinds = wantKinds[1:]
		}
		if !slices.Equal(kinds, wantKinds) {
			t.Errorf("the call to %s entered %v, want %v", want, kinds, wantKinds)
		}
	}
	nurse.now = func() time.Time { return now.Add(time.Minute) }
	if got := nurse.Call(ctx); got != "" {
		t.Errorf("with only p-001 left, who needs a blood pressure, the nurse called %q", got)
	}
	if row, _ := mon.Patient("p-001"); row.Result.Complete {
		t.Error("p-001 is complete without a blood pressure")
	}
}
