package alerting

import (
	"slices"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// ScorePoint is a patient's NEWS2 from At until the next point of a
// series: what the monitor scored, or would have, at that moment.
type ScorePoint struct {
	At time.Time
	// Scored is false when no parameter was current: no score at all,
	// which is not a score of 0.
	Scored bool
	Result news2.Result
}

// ScoreSeries scores a patient's readings, oldest first, the way the
// monitor scores them as they arrive: at each reading the set holds the
// latest value of each parameter measured so far, and only values within
// their freshness window count. The score changes at a reading and when a
// value ages out of its window, so those are the moments it is taken at;
// a point is given only when the result differs from the one before. The
// first point is the score at from, from readings measured before it.
//
// The monitor's trend is the same rule seen at the moments it rescored
// (TestScoreSeriesAgreesWithTheMonitor); the series reaches as far back as
// the history does, where the trend keeps a day.
func ScoreSeries(rs []vward.Reading, scale news2.Scale, f news2.Freshness, from, to time.Time) []ScorePoint {
	moments := []time.Time{from}
	for _, r := range rs {
		p, ok := news2.ParameterOf(r.Kind)
		if !ok {
			continue
		}
		if r.At.After(from) && !r.At.After(to) {
			moments = append(moments, r.At)
		}
		// The value stops counting the instant after its window ends.
		if f[p] >= 0 {
			if gone := r.At.Add(f[p] + time.Nanosecond); gone.After(from) && !gone.After(to) {
				moments = append(moments, gone)
			}
		}
	}
	slices.SortFunc(moments, func(a, b time.Time) int { return a.Compare(b) })
	moments = slices.CompactFunc(moments, func(a, b time.Time) bool { return a.Equal(b) })

	set := news2.Set{Scale: scale}
	var out []ScorePoint
	next := 0
	for _, t := range moments {
		for ; next < len(rs) && !rs[next].At.After(t); next++ {
			if p, ok := news2.ParameterOf(rs[next].Kind); ok {
				set.Update(p, rs[next].Value, rs[next].At)
			}
		}
		res := news2.Score(set.Observations(t, f))
		pt := ScorePoint{At: t, Scored: res.Present != 0}
		if pt.Scored {
			pt.Result = res
		}
		if n := len(out); n > 0 && out[n-1].Scored == pt.Scored && out[n-1].Result == pt.Result {
			continue
		}
		if len(out) == 0 && !pt.Scored {
			continue // nothing to say before the first score
		}
		out = append(out, pt)
	}
	return out
}
