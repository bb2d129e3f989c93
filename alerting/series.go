package alerting

import (
	"container/heap"
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
	sc := NewSeriesScorer(scale, f, from, to)
	sc.Add(rs)
	return sc.Finish()
}

// SeriesScorer is ScoreSeries over readings given a part at a time, so
// that a month of a wearable is scored a day at a time, never held whole:
// it keeps the set, the moments still to score and the points so far.
type SeriesScorer struct {
	scale    news2.Scale
	f        news2.Freshness
	from, to time.Time

	set     news2.Set
	pending momentHeap // moments not yet scored: readings' times, and when values age out
	fromDue bool       // the score at from is not taken yet
	last    time.Time  // the latest moment scored
	prev    *ScorePoint
	out     []ScorePoint // the points not yet taken
}

// NewSeriesScorer scores on scale with freshness f over [from, to].
func NewSeriesScorer(scale news2.Scale, f news2.Freshness, from, to time.Time) *SeriesScorer {
	return &SeriesScorer{scale: scale, f: f, from: from, to: to, set: news2.Set{Scale: scale}, fromDue: true}
}

// Add takes the next readings, oldest first, none older than those given
// before.
func (s *SeriesScorer) Add(rs []vward.Reading) {
	for _, r := range rs {
		p, ok := news2.ParameterOf(r.Kind)
		if !ok {
			continue
		}
		// Every moment before this reading is scored on the readings before it.
		s.scoreBefore(r.At, false)
		s.set.Update(p, r.Value, r.At)
		if r.At.After(s.from) && !r.At.After(s.to) {
			heap.Push(&s.pending, r.At)
		}
		// The value stops counting the instant after its window ends.
		if s.f[p] >= 0 {
			if gone := r.At.Add(s.f[p] + time.Nanosecond); gone.After(s.from) && !gone.After(s.to) {
				heap.Push(&s.pending, gone)
			}
		}
	}
}

// ScoreUntil scores every moment before t: the caller has given every
// reading measured before it.
func (s *SeriesScorer) ScoreUntil(t time.Time) { s.scoreBefore(t, false) }

// Take returns the points scored since the last Take.
func (s *SeriesScorer) Take() []ScorePoint {
	out := s.out
	s.out = nil
	return out
}

// Finish scores the moments left and returns the points not yet taken:
// the whole series, without Take.
func (s *SeriesScorer) Finish() []ScorePoint {
	s.scoreBefore(time.Time{}, true)
	return s.Take()
}

// scoreBefore scores, in order, from (once) and each pending moment before
// t, or every one when all.
func (s *SeriesScorer) scoreBefore(t time.Time, all bool) {
	for {
		var m time.Time
		switch {
		case s.fromDue && (all || s.from.Before(t)) && (s.pending.Len() == 0 || !s.pending[0].Before(s.from)):
			m, s.fromDue = s.from, false
		case s.pending.Len() > 0 && (all || s.pending[0].Before(t)):
			m = heap.Pop(&s.pending).(time.Time)
		default:
			return
		}
		if !s.last.IsZero() && m.Equal(s.last) {
			continue
		}
		s.last = m
		s.score(m)
	}
}

// score takes the score at t, as a point if it differs from the last.
func (s *SeriesScorer) score(t time.Time) {
	res := news2.Score(s.set.Observations(t, s.f))
	pt := ScorePoint{At: t, Scored: res.Present != 0}
	if pt.Scored {
		pt.Result = res
	}
	if s.prev != nil && s.prev.Scored == pt.Scored && s.prev.Result == pt.Result {
		return
	}
	if s.prev == nil && !pt.Scored {
		return // nothing to say before the first score
	}
	s.prev = &pt
	s.out = append(s.out, pt)
}

// momentHeap is a min-heap of times.
type momentHeap []time.Time

func (h momentHeap) Len() int           { return len(h) }
func (h momentHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h momentHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *momentHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *momentHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
