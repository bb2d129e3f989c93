package web

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
)

// wardsRig is where the patient API tests start: a real SQLite store
// with wards w1 and w2 and the patients admitted to its registry, an
// alert engine on the same store, and a monitor that admitted them too.
type wardsRig struct {
	ctx     context.Context
	log     *slog.Logger
	db      *sql.DB
	reg     *devices.Registry
	engine  *alerting.Engine
	monitor *alerting.Monitor
}

// adaAndBea are p1, Ada, on w1 (admitted two days ago) and p2, Bea, on w2.
func adaAndBea() []devices.Patient {
	return []devices.Patient{{ID: "p1", Ward: "w1", Name: "Ada", Admitted: time.Now().Add(-48 * time.Hour)}, {ID: "p2", Ward: "w2", Name: "Bea"}}
}

func newWardsRig(t *testing.T, patients []devices.Patient) *wardsRig {
	t.Helper()
	r := &wardsRig{ctx: context.Background(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db
	if r.reg, err = devices.Open(r.ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, w := range []vward.WardID{"w1", "w2"} {
		if err := r.reg.AddWard(r.ctx, devices.Ward{ID: w, Name: string(w)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range patients {
		if err := r.reg.Admit(r.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if r.engine, err = alerting.OpenEngine(r.ctx, db, alerting.Config{}, nil, r.log); err != nil {
		t.Fatal(err)
	}
	r.monitor = alerting.NewMonitor(news2.DefaultFreshness(), nil, r.engine, r.log)
	for _, p := range patients {
		r.monitor.Admit(alerting.PatientInfo{ID: p.ID, Ward: p.Ward, Name: p.Name})
	}
	return r
}
