package alerting

import (
	"time"

	"github.com/vward/vward/news2"
)

// Need is a NEWS2 parameter a patient's current set lacks for a full
// score: never measured, or measured longer ago than its freshness window
// (stale). LastAt is when its latest value was measured; zero when vward
// holds none (none since vward started, nor in the day it read back at
// start).
type Need struct {
	Parameter news2.Parameter `json:"parameter"`
	LastAt    time.Time       `json:"last_at,omitzero"`
}

// LastAt returns when the row's latest value of p was measured, whether
// or not it is still fresh, and false when the row holds none.
func (r *Row) LastAt(p news2.Parameter) (time.Time, bool) {
	i := p.Kind().Index()
	if i < 0 || r.Vitals[i].Kind == "" {
		return time.Time{}, false
	}
	return r.Vitals[i].At, true
}

// Needs lists, in chart order, what the row's NEWS2 lacks to be a full
// score, each with when it was last measured: whom to call for what. It
// agrees with the score's missing parameters, being judged at the same
// rescore, and is empty (not nil) when the score is complete.
func (r *Row) Needs() []Need {
	out := make([]Need, 0, news2.NumParameters)
	for p := range news2.NumParameters {
		if r.Result.Has(p) {
			continue
		}
		n := Need{Parameter: p}
		n.LastAt, _ = r.LastAt(p)
		out = append(out, n)
	}
	return out
}
