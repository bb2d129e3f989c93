package web

import (
	"slices"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// gapFactor: two readings of a kind are one continuous run when they are
// at most gapFactor times the kind's usual (median) interval apart, and no
// further apart than the kind's freshness window: a line longer than that
// would draw a value vward itself no longer counts.
const gapFactor = 3

// thinAbove and thinBuckets: a kind with more readings than thinAbove in
// the range is sent as each of thinBuckets equal spans' first, lowest,
// highest and last reading, and both ends of every gap, so that a week of a
// 1 Hz wearable draws fast and no extreme or gap is lost.
const (
	thinAbove   = 6000
	thinBuckets = 1500
)

// continuity is the longest interval a line may cross for a kind, from
// its counted readings' times (oldest first) and its freshness window, and
// at least floor within it.
func continuity(times []time.Time, fresh, floor time.Duration) time.Duration {
	gaps := make([]time.Duration, 0, len(times))
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > 0 {
			gaps = append(gaps, d)
		}
	}
	if len(gaps) == 0 {
		return fresh
	}
	slices.Sort(gaps)
	return min(fresh, max(floor, gapFactor*gaps[len(gaps)/2]))
}

// freshnessOf is how long a kind's value counts: its parameter's window,
// the systolic's for diastolic, the longest window for any other kind.
func freshnessOf(k vward.ReadingKind, f news2.Freshness) time.Duration {
	if k == vward.DiastolicBP {
		k = vward.SystolicBP
	}
	if p, ok := news2.ParameterOf(k); ok {
		return f[p]
	}
	return slices.Max(f[:])
}

// markRuns sets gap on each counted reading (not entered in error) that
// starts a run of its kind: the first, and any further than the kind's
// continuity (at least floor) from the one before. rs is oldest first.
func markRuns(rs []chartReading, f news2.Freshness, floor time.Duration) {
	byKind := map[vward.ReadingKind][]int{}
	for i := range rs {
		if !rs[i].inError() {
			byKind[rs[i].Kind] = append(byKind[rs[i].Kind], i)
		}
	}
	for kind, idx := range byKind {
		times := make([]time.Time, len(idx))
		for j, i := range idx {
			times[j] = rs[i].At
		}
		limit := continuity(times, freshnessOf(kind, f), floor)
		for j, i := range idx {
			rs[i].gap = j == 0 || times[j].Sub(times[j-1]) > limit
		}
	}
}

// thin leaves out, of a kind with more than thinAbove readings, all but
// each bucket's first, lowest, highest and last, the readings either side
// of a gap, and every entry people made. rs is oldest first and runs
// marked (markRuns); the answer is too, and reports whether it left any out.
func thin(rs []chartReading, from, to time.Time) ([]chartReading, bool) {
	count := map[vward.ReadingKind]int{}
	for _, r := range rs {
		count[r.Kind]++
	}
	keep := make([]bool, len(rs))
	thinned := false
	span := to.Sub(from)
	type bucket struct{ first, lo, hi, last int }
	buckets := map[vward.ReadingKind]map[int64]*bucket{}
	lastOf := map[vward.ReadingKind]int{}
	for i, r := range rs {
		if count[r.Kind] <= thinAbove || r.entry != nil || span <= 0 {
			keep[i] = true
			continue
		}
		thinned = true
		if r.gap {
			keep[i] = true
			if j, ok := lastOf[r.Kind]; ok {
				keep[j] = true // the end of the run before
			}
		}
		lastOf[r.Kind] = i
		n := int64(r.At.Sub(from) * thinBuckets / span)
		bs := buckets[r.Kind]
		if bs == nil {
			bs = map[int64]*bucket{}
			buckets[r.Kind] = bs
		}
		b := bs[n]
		if b == nil {
			bs[n] = &bucket{i, i, i, i}
			continue
		}
		if r.Value < rs[b.lo].Value {
			b.lo = i
		}
		if r.Value > rs[b.hi].Value {
			b.hi = i
		}
		b.last = i
	}
	for _, bs := range buckets {
		for _, b := range bs {
			keep[b.first], keep[b.lo], keep[b.hi], keep[b.last] = true, true, true, true
		}
	}
	if !thinned {
		return rs, false
	}
	out := make([]chartReading, 0, len(rs)/2)
	for i, r := range rs {
		if keep[i] {
			out = append(out, r)
		}
	}
	return out, true
}
