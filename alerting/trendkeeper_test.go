package alerting

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	vward "github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
)

// The trend is written as it grows and read back by a new monitor: a
// restart keeps the day's sparkline. Points are written once, and a day
// old ones are forgotten.
func TestTrendsSurviveRestart(t *testing.T) {
	clk := &clock{t: t0}
	path := dbPath(t)
	r := newRig(t, path, clk, Config{})
	store := r.engine.Store()
	ctx := context.Background()
	for i, v := range []vitals{normal, mild, medium, high} {
		at := t0.Add(time.Duration(i) * 10 * time.Minute)
		clk.Set(at)
		r.observe(v, at)
		if i == 1 {
			if err := r.monitor.SaveTrends(ctx, store); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.monitor.SaveTrends(ctx, store); err != nil {
		t.Fatal(err)
	}
	if err := r.monitor.SaveTrends(ctx, store); err != nil { // nothing new: nothing written twice
		t.Fatal(err)
	}
	before, _ := r.monitor.Patient("p1")
	if len(before.Trend) != 4 {
		t.Fatalf("trend before = %+v, want 4 points", before.Trend)
	}

	again := newRig(t, path, clk, Config{})
	ts, err := again.engine.Store().LoadTrends(ctx, clk.Now().Add(-trendSpan))
	if err != nil {
		t.Fatal(err)
	}
	again.monitor.RestoreTrends(ts)
	after, _ := again.monitor.Patient("p1")
	if !reflect.DeepEqual(after.Trend, before.Trend) {
		t.Fatalf("trend after the restart = %+v\nwant %+v", after.Trend, before.Trend)
	}

	// A day on, the old points are forgotten at the next save.
	clk.Set(t0.Add(trendSpan + time.Hour))
	again.observe(normal, clk.Now())
	if err := again.monitor.SaveTrends(ctx, again.engine.Store()); err != nil {
		t.Fatal(err)
	}
	ts, _ = again.engine.Store().LoadTrends(ctx, time.Time{})
	if n := len(ts["p1"]); n != 1 {
		t.Errorf("%d points kept a day on, want the new one alone: %+v", n, ts["p1"])
	}
}

// BenchmarkLoadTrends reads a day's trend for a fleet at one point every
// trendStep: what a starting node reads beside the history (cold start,
// docs/performance.md, "Cold start"). VWARD_BENCH_PATIENTS sets the fleet (12,700).
func BenchmarkLoadTrends(b *testing.B) {
	n := 12700
	if v, err := strconv.Atoi(os.Getenv("VWARD_BENCH_PATIENTS")); err == nil && v > 0 {
		n = v
	}
	db, err := sqlitedb.Open(filepath.Join(b.TempDir(), "vward.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := OpenStore(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	now := t0.Add(trendSpan)
	per := int(trendSpan / trendStep)
	ts := make([]patientTrend, n)
	for i := range ts {
		ts[i].patient = vward.PatientID(fmt.Sprintf("p%05d", i))
		for j := range per {
			ts[i].points = append(ts[i].points, TrendPoint{At: t0.Add(time.Duration(j) * trendStep), Score: j % 7, Partial: j%5 == 0})
		}
	}
	if err := s.saveTrends(context.Background(), ts, now); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := s.LoadTrends(context.Background(), now.Add(-trendSpan))
		if err != nil || len(got) != n {
			b.Fatalf("loaded %d patients, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(n*per), "points")
}

// A stored row reads back as the points written, and anything else is an
// error, never a panic.
func FuzzTrendRow(f *testing.F) {
	f.Add(int64(1764745200000000000), 7, true, "")
	f.Add(int64(0), 0, false, "zz")
	f.Add(int64(-1), 20, false, "0000000000000000ff01")
	f.Fuzz(func(t *testing.T, at int64, score int, partial bool, garbage string) {
		p := TrendPoint{At: time.Unix(0, at).UTC(), Score: score & 0xff, Partial: partial}
		row := string(appendTrendPoint(nil, p))
		got, err := parseTrendPoints(row, time.Time{}, nil)
		if at >= 0 && (err != nil || len(got) != 1 || got[0] != p) {
			t.Fatalf("%+v: row %q read back as %+v, %v", p, row, got, err)
		}
		_, _ = parseTrendPoints(garbage, time.Time{}, nil)
		_, _ = parseTrendPoints(row+garbage, time.Time{}, nil)
	})
}
