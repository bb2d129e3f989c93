package web

import (
	"fmt"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
)

var runT0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// readingsAt are heart rates at the given minutes after runT0.
func readingsAt(minutes ...float64) []chartReading {
	rs := make([]chartReading, len(minutes))
	for i, m := range minutes {
		rs[i] = chartReading{Reading: vward.Reading{Kind: vward.HeartRate, Value: 70, At: runT0.Add(time.Duration(m * float64(time.Minute)))}}
	}
	return rs
}

// gaps writes where runs start, as the minutes of their first readings.
func gaps(rs []chartReading) string {
	var s string
	for _, r := range rs {
		if r.gap {
			s += fmt.Sprintf(" %g", r.At.Sub(runT0).Minutes())
		}
	}
	return s
}

func TestMarkRuns(t *testing.T) {
	wrong := &observations.Entry{Error: &observations.ErrorMark{By: "nurse"}}
	tests := []struct {
		name string
		rs   []chartReading
		want string
	}{
		{"none", nil, ""},
		{"one reading is a run", readingsAt(5), " 5"},
		{"every 2 minutes is one run", readingsAt(0, 2, 4, 6, 8), " 0"},
		{"a gap of more than 3 times the usual interval", readingsAt(0, 2, 4, 6, 13, 15, 17), " 0 13"},
		{"3 times the usual interval is still continuous", readingsAt(0, 2, 4, 6, 12, 14, 16), " 0"},
		{"4-hourly spot checks: never joined, an hour at most", readingsAt(0, 240, 480, 720), " 0 240 480 720"},
		{"every 50 minutes: joined, within the hour", readingsAt(0, 50, 100, 150), " 0"},
		{"an entry in error neither joins nor breaks a run", func() []chartReading {
			rs := readingsAt(0, 2, 4, 5, 6, 8)
			rs[3].entry = wrong
			return rs
		}(), " 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			markRuns(tt.rs, news2.DefaultFreshness(), 0)
			if got := gaps(tt.rs); got != tt.want {
				t.Errorf("runs start at%q, want%q", got, tt.want)
			}
		})
	}
	// Kinds are runs of their own: diastolic with the systolic's window.
	rs := []chartReading{
		{Reading: vward.Reading{Kind: vward.SystolicBP, At: runT0}},
		{Reading: vward.Reading{Kind: vward.DiastolicBP, At: runT0}},
		{Reading: vward.Reading{Kind: vward.SystolicBP, At: runT0.Add(30 * time.Minute)}},
		{Reading: vward.Reading{Kind: vward.DiastolicBP, At: runT0.Add(30 * time.Minute)}},
	}
	markRuns(rs, news2.DefaultFreshness(), 0)
	if !rs[0].gap || !rs[1].gap || rs[2].gap || rs[3].gap {
		t.Errorf("blood pressure half an hour apart: %+v", rs)
	}
}

// A week of a wearable at 1/min is thinned to each bucket's first,
// lowest, highest and last, keeping the extremes, both ends of a gap and
// every entry.
func TestThin(t *testing.T) {
	var minutes []float64
	for m := 0; m < 7*24*60; m++ {
		if m >= 3000 && m < 3120 {
			continue // two hours off
		}
		minutes = append(minutes, float64(m))
	}
	rs := readingsAt(minutes...)
	for i := range rs {
		rs[i].Value = 70 + float64(i%5)
	}
	rs[5000].Value = 190
	rs[7000].Value = 20
	entry := &observations.Entry{}
	rs[8000].entry = entry
	rs[8000].Value = 71.5
	markRuns(rs, news2.DefaultFreshness(), 0)
	from, to := runT0, runT0.Add(7*24*time.Hour)
	got, thinned := thin(rs, from, to)
	if !thinned || len(got) > 4*thinBuckets+10 || len(got) < thinBuckets {
		t.Fatalf("%d readings thinned to %d (thinned %v), want at most 4 a bucket", len(rs), len(got), thinned)
	}
	var high, low, hasEntry bool
	for i, r := range got {
		high = high || r.Value == 190
		low = low || r.Value == 20
		hasEntry = hasEntry || r.entry == entry
		if i > 0 && r.At.Before(got[i-1].At) {
			t.Fatal("thinned readings out of order")
		}
	}
	if !high || !low || !hasEntry {
		t.Errorf("thinning lost the highest %v, the lowest %v or the entry %v", high, low, hasEntry)
	}
	if g := gaps(got); g != " 0 3120" {
		t.Errorf("runs start at%q after thinning, want the gap kept", g)
	}
	var before bool
	for _, r := range got {
		before = before || r.At.Equal(runT0.Add(2999*time.Minute))
	}
	if !before {
		t.Error("thinning lost the last reading before the gap")
	}
	if few, thinned := thin(readingsAt(0, 1, 2), from, to); thinned || len(few) != 3 {
		t.Errorf("3 readings thinned to %d", len(few))
	}
}
