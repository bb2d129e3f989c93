package devices

import (
	"testing"
	"time"
)

func TestStayWithin(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	day := func(d float64) time.Time { return t0.Add(time.Duration(d * 24 * float64(time.Hour))) }
	from, to := day(0), day(7)
	pause := func(d float64) pauseEdge { return pauseEdge{at: day(d), paused: true} }
	resume := func(d float64) pauseEdge { return pauseEdge{at: day(d), paused: false} }
	for _, c := range []struct {
		name       string
		start, end float64
		edges      []pauseEdge
		on, paused float64
	}{
		{"the whole window", -3, 7, nil, 7, 0},
		{"admitted mid-window", 4.5, 7, nil, 2.5, 0},
		{"discharged mid-window", -1, 1, nil, 1, 0},
		{"one day", 2, 3, nil, 1, 0},
		{"outside the window", -9, -2, nil, 0, 0},
		{"paused and resumed", -1, 7, []pauseEdge{pause(1), resume(3)}, 5, 2},
		{"paused before the window, resumed in it", -5, 7, []pauseEdge{pause(-2), resume(1)}, 6, 1},
		{"still paused", 0, 7, []pauseEdge{pause(6)}, 6, 1},
		{"paused, then discharged", 0, 4, []pauseEdge{pause(3)}, 3, 1},
		{"paused twice", 0, 7, []pauseEdge{pause(1), resume(2), pause(5), resume(6)}, 5, 2},
		{"a resume without a pause is ignored", 0, 7, []pauseEdge{resume(2)}, 7, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			on, paused := stayWithin(day(c.start), day(c.end), c.edges, from, to)
			if got, want := on.Hours()/24, c.on; got != want {
				t.Errorf("monitored %.3f days, want %.3f", got, want)
			}
			if got, want := paused.Hours()/24, c.paused; got != want {
				t.Errorf("paused %.3f days, want %.3f", got, want)
			}
		})
	}
}
