package alerting

import "time"

// TrendPoint is a patient's NEWS2 at a moment, for the board's sparkline.
type TrendPoint struct {
	At      time.Time `json:"at"`
	Score   int       `json:"score"`
	Partial bool      `json:"partial,omitempty"`
}

// trendSpan is how far back the sparkline reaches, and trendStep the
// finest spacing of its points: a patient streaming at 1 Hz keeps at most
// 24h/5min = 288 points, a bounded cost per patient.
const (
	trendSpan = 24 * time.Hour
	trendStep = 5 * time.Minute
)

// scoreTrend is a patient's NEWS2 over the last day. A change of score is
// always kept, even within trendStep of the last point, so that a
// deterioration is never smoothed away; an unchanged score is recorded at
// most once per step.
type scoreTrend struct {
	points  []TrendPoint
	version uint64    // counts changes to points, so a board event carries them only when they changed
	saved   time.Time // the newest point written to the store (Monitor.SaveTrends)
}

func (t *scoreTrend) add(p TrendPoint) {
	if n := len(t.points); n > 0 {
		last := t.points[n-1]
		if p.At.Before(last.At) {
			return
		}
		if last.Score == p.Score && last.Partial == p.Partial && p.At.Sub(last.At) < trendStep {
			return
		}
	}
	cut := 0
	for cut < len(t.points) && p.At.Sub(t.points[cut].At) > trendSpan {
		cut++
	}
	if cut > 0 {
		t.points = append(t.points[:0], t.points[cut:]...)
	}
	if len(t.points) >= 2*int(trendSpan/trendStep) {
		// Only a flapping score gets here: keep the newest half.
		t.points = append(t.points[:0], t.points[len(t.points)/2:]...)
	}
	t.points = append(t.points, p)
	t.version++
}

func (t *scoreTrend) snapshot() []TrendPoint {
	return append([]TrendPoint(nil), t.points...)
}
