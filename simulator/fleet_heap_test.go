package simulator

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The scheduler's heap hands devices out by due time, ties in insertion
// order, however they were pushed: all at once (init) or one by one, with
// pops between.
func TestDevHeapOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		n := r.IntN(300) + 1
		var all []inLine
		for i := range n {
			// Few distinct due times, so that ties are common.
			all = append(all, inLine{at: r.Int64N(20) - 10, i: i, d: &playDev{i: i}})
		}
		want := slices.Clone(all)
		slices.SortFunc(want, func(a, b inLine) int { return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.i, b.i)) })

		h := devHeap(slices.Clone(all[:n/2]))
		h.init()
		for _, e := range all[n/2:] {
			h.push(e)
		}
		var got []inLine
		for len(h) > 0 {
			d := h.pop()
			got = append(got, all[d.i])
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: popped %v, want %v", round, got, want)
		}

		// Interleaved, as Play does: take the first and put it back later.
		h = devHeap(slices.Clone(all))
		h.init()
		prev := inLine{at: -1 << 63}
		for range 3 * n {
			first := h[0]
			d := h.pop()
			if d != first.d || first.before(prev) {
				t.Fatalf("round %d: popped %+v after %+v", round, first, prev)
			}
			for _, e := range h {
				if e.before(first) {
					t.Fatalf("round %d: popped %+v while %+v was in line", round, first, e)
				}
			}
			prev = first
			first.at += r.Int64N(5)
			h.push(first)
		}
	}
}

// BenchmarkDevHeap is the scheduler's steady state with the bench's fleet:
// take the first device in line and put it back a second later.
func BenchmarkDevHeap(b *testing.B) {
	const n = 12700
	origin := time.Now()
	r := rand.New(rand.NewPCG(1, 2))
	var h devHeap
	for i := range n {
		due := origin.Add(time.Duration(r.Int64N(int64(time.Second))))
		h = append(h, inLine{at: int64(due.Sub(origin)), i: i, d: &playDev{due: due, i: i}})
	}
	h.init()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		d := h.pop()
		d.due = d.due.Add(time.Second)
		h.push(inLine{at: int64(d.due.Sub(origin)), i: d.i, d: d})
	}
}
