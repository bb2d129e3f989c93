package simulator

import (
	"container/heap"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// Merge yields the steps of several streams in scenario-time order (ties in
// stream order), without a broker: what a fleet would do, minus the
// network. yield returning false stops it.
func Merge(streams []Steps, yield func(i int, st Step) bool) {
	h := &mergeHeap{}
	for i, s := range streams {
		if st, ok := s.Next(); ok {
			heap.Push(h, mergeItem{st, i})
		}
	}
	for h.Len() > 0 {
		it := heap.Pop(h).(mergeItem)
		if !yield(it.i, it.st) {
			return
		}
		if st, ok := streams[it.i].Next(); ok {
			heap.Push(h, mergeItem{st, it.i})
		}
	}
}

type mergeItem struct {
	st Step
	i  int
}

type mergeHeap []mergeItem

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].st.At != h[j].st.At {
		return h[i].st.At < h[j].st.At
	}
	return h[i].i < h[j].i
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(mergeItem)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// DryRunStats counts a dry run's messages.
type DryRunStats struct {
	Messages, Readings, Backfilled, Duplicates, Malformed, Dropped, Stranded int
}

// DryRun plays a plan on clock without a broker or vward and scores what
// vward would accept the way its monitor does (latest value per parameter by
// measurement time; values current within an hour of the wall clock at
// delivery; the patient's SpO2 scale), and judges the patients' care plan
// rules on every reading, each rule that comes to hold raising a care_plan
// alert once. Its observations are what a perfect,
// instant vward would show, so a scenario's expectations can be checked —
// and its windows set — before any service runs.
func DryRun(plan *Plan, clock Clock) ([]Observation, DryRunStats) {
	streams := plan.Streams(clock)
	steps := make([]Steps, len(streams))
	for i, s := range streams {
		steps[i] = s
	}
	sets := map[vward.PatientID]*news2.Set{}
	for _, p := range plan.Patients {
		sets[p.ID] = &news2.Set{Scale: news2.Scale(p.SpO2Scale)}
	}
	fresh := news2.DefaultFreshness()
	plans := newCarePlanJudge(plan)
	var obs []Observation
	var st DryRunStats
	Merge(steps, func(_ int, s Step) bool {
		if s.Op != Publish {
			return true
		}
		st.Messages++
		switch {
		case s.Class&Duplicate != 0:
			st.Duplicates++
		case s.Class&Malformed != 0:
			st.Malformed++
		}
		if s.Class&Backfill != 0 {
			st.Backfilled++
		}
		obs = plans.add(s.Patient, s.Readings, s.At, clock.Due(s.At), obs)
		set := sets[s.Patient]
		changed := false
		for _, r := range s.Readings {
			st.Readings++
			if p, ok := news2.ParameterOf(r.Kind); ok && set.Update(p, r.Value, r.At) {
				changed = true
			}
		}
		if !changed {
			return true
		}
		res := news2.Score(set.Observations(clock.Due(s.At), fresh))
		if res.Present == 0 {
			return true
		}
		obs = append(obs, Observation{
			Source: FromNEWS2, Patient: s.Patient, Risk: res.Risk, Score: res.Score, Complete: res.Complete,
			At: s.At, Measured: clock.ScenarioTimeOfStamp(set.LatestAt()), Detail: subscoreText(res),
		})
		return true
	})
	for _, s := range streams {
		st.Dropped += s.Stats.Dropped
		st.Stranded += s.Stats.Stranded
	}
	return obs, st
}

func subscoreText(r news2.Result) string {
	var parts []string
	for p := range news2.NumParameters {
		if r.Has(p) && r.Subscores[p] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, r.Subscores[p]))
		}
	}
	return strings.Join(parts, ", ")
}

// Bands returns, for each patient, the scenario times at which the
// noise-free physiology first reaches each NEWS2 band, sampled every step:
// a guide for setting expectation windows (docs/simulator.md).
func Bands(plan *Plan, step time.Duration) map[vward.PatientID]map[news2.Risk]time.Duration {
	out := map[vward.PatientID]map[news2.Risk]time.Duration{}
	end := plan.Scenario.Duration.D()
	for _, p := range plan.Patients {
		first := map[news2.Risk]time.Duration{}
		for t := time.Duration(0); t <= end; t += step {
			v := p.Model.Truth(t)
			var o news2.Observations
			o.Scale = news2.Scale(p.SpO2Scale)
			o.Set(news2.RespiratoryRate, v.RespiratoryRate)
			o.Set(news2.SpO2, v.SpO2)
			o.Set(news2.SupplementalOxygen, map[bool]float64{false: 0, true: 1}[v.OnOxygen])
			o.Set(news2.SystolicBP, v.SystolicBP)
			o.Set(news2.HeartRate, v.HeartRate)
			o.Set(news2.Consciousness, float64(v.Consciousness))
			o.Set(news2.Temperature, v.Temperature)
			r := news2.Score(o).Risk
			for b := news2.LowMedium; b <= r; b++ {
				if _, ok := first[b]; !ok {
					first[b] = t
				}
			}
		}
		out[p.ID] = first
	}
	return out
}
