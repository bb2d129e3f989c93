// Package devicestest gives other packages' tests a real registry, in a
// SQLite file of the test's own temporary directory.
package devicestest

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/sqlitedb"
)

// Open opens an empty registry and the database it is kept in, closed
// when the test ends.
func Open(t testing.TB) (*sql.DB, *devices.Registry) {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return db, reg
}

// TwoStays opens a registry with ward w1, patients p1 and p2 admitted a day
// before bound1, device ox-1 bound to p1 from bound1 and to p2 from bound2,
// and ox-idle registered but never bound: what attribution tests need.
func TwoStays(t testing.TB, bound1, bound2 time.Time) *devices.Registry {
	t.Helper()
	ctx := context.Background()
	_, reg := Open(t)
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
