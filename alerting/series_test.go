package alerting

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// seriesT0 is the start of every ScoreSeries case.
var seriesT0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

// at is seriesT0 plus minutes.
func at(minutes float64) time.Time {
	return seriesT0.Add(time.Duration(minutes * float64(time.Minute)))
}

func rd(kind vward.ReadingKind, v, minutes float64) vward.Reading {
	return vward.Reading{Patient: "p1", Device: "d1", Kind: kind, Value: v, At: at(minutes)}
}

// set is a complete normal set (NEWS2 0) measured at minutes.
func set(minutes float64) []vward.Reading {
	return []vward.Reading{
		rd(vward.RespiratoryRate, 16, minutes), rd(vward.SpO2, 97, minutes), rd(vward.SupplementalOxygen, 0, minutes),
		rd(vward.SystolicBP, 125, minutes), rd(vward.HeartRate, 80, minutes), rd(vward.Consciousness, 0, minutes),
		rd(vward.Temperature, 37, minutes),
	}
}

// show writes a series as "minute:score" per point, "+" after a partial
// score and "-" for no score; "70!" is the instant after minute 70, when
// a value measured at minute 10 ages out.
func show(ps []ScorePoint) string {
	var s string
	for _, p := range ps {
		d := p.At.Sub(seriesT0)
		m := fmt.Sprintf("%g", d.Truncate(time.Second).Minutes())
		if d%time.Second == time.Nanosecond {
			m += "!"
		}
		switch {
		case !p.Scored:
			s += fmt.Sprintf(" %s:-", m)
		case !p.Result.Complete:
			s += fmt.Sprintf(" %s:%d+", m, p.Result.Score)
		default:
			s += fmt.Sprintf(" %s:%d", m, p.Result.Score)
		}
	}
	return s
}

func TestScoreSeries(t *testing.T) {
	tests := []struct {
		name     string
		rs       []vward.Reading
		scale    news2.Scale
		from, to float64 // minutes
		want     string
	}{
		{"no readings", nil, news2.Scale1, 0, 600, ""},
		{"one spot check scores until it ages out",
			[]vward.Reading{rd(vward.HeartRate, 120, 10)}, news2.Scale1, 0, 600,
			" 10:2+ 70!:-"},
		{"a reading before from scores from from",
			[]vward.Reading{rd(vward.HeartRate, 120, -30)}, news2.Scale1, 0, 600,
			" 0:2+ 30!:-"},
		{"a reading older than its window before from is not there",
			[]vward.Reading{rd(vward.HeartRate, 120, -90)}, news2.Scale1, 0, 600, ""},
		{"a complete set, then partial as values age out, then a new round",
			append(append(set(0), rd(vward.HeartRate, 95, 30)), set(240)...), news2.Scale1, 0, 600,
			" 0:0 30:1 60!:1+ 90!:- 240:0 300!:-"},
		{"a reading that leaves the score as it was adds no point",
			[]vward.Reading{rd(vward.HeartRate, 80, 0), rd(vward.HeartRate, 82, 20)}, news2.Scale1, 0, 600,
			" 0:0+ 80!:-"},
		{"the same time and a new value: the new one counts, as in the history",
			[]vward.Reading{rd(vward.HeartRate, 80, 0), rd(vward.HeartRate, 135, 0)}, news2.Scale1, 0, 600,
			" 0:3+ 60!:-"},
		{"scale 2: 95% scores 2 on oxygen (and 2 for the oxygen), 0 on air",
			[]vward.Reading{rd(vward.SpO2, 95, 0), rd(vward.SupplementalOxygen, 1, 0), rd(vward.SupplementalOxygen, 0, 10)}, news2.Scale2, 0, 600,
			" 0:4+ 10:0+ 60!:0+ 70!:-"},
		{"scale 1: 95% scores 1 whatever the oxygen",
			[]vward.Reading{rd(vward.SpO2, 95, 0), rd(vward.SupplementalOxygen, 0, 0)}, news2.Scale1, 0, 600,
			" 0:1+ 60!:-"},
		{"nothing after to",
			[]vward.Reading{rd(vward.HeartRate, 120, 10), rd(vward.HeartRate, 140, 700)}, news2.Scale1, 0, 30, " 10:2+"},
		{"kinds NEWS2 does not score are left out",
			[]vward.Reading{rd(vward.DiastolicBP, 40, 10)}, news2.Scale1, 0, 600, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := show(ScoreSeries(tt.rs, tt.scale, news2.DefaultFreshness(), at(tt.from), at(tt.to)))
			if got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// The series of a day's readings agrees with the monitor's trend: at each
// moment the monitor recorded a score, on a reading or a periodic rescore,
// the series gives the same score and completeness. The readings are a
// wearable's every minute with dropouts, hourly spot checks of the rest,
// and telephone calls, arriving a few seconds after they were measured.
func TestScoreSeriesAgreesWithTheMonitor(t *testing.T) {
	for _, scale := range []news2.Scale{news2.Scale1, news2.Scale2} {
		t.Run(fmt.Sprint("scale ", int(scale)), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(scale)))
			var rs []vward.Reading
			for m := 0; m < 24*60; m++ {
				if (m/180)%2 == 1 && m%180 < 75 {
					continue // the wearable is off for 75 minutes every 6 hours
				}
				rs = append(rs, rd(vward.HeartRate, 70+float64(rng.IntN(70)), float64(m)), rd(vward.RespiratoryRate, 10+float64(rng.IntN(16)), float64(m)))
				if m%60 == 7 {
					rs = append(rs, rd(vward.SpO2, 86+float64(rng.IntN(14)), float64(m)), rd(vward.SupplementalOxygen, float64(rng.IntN(2)), float64(m)),
						rd(vward.SystolicBP, 95+float64(rng.IntN(40)), float64(m)), rd(vward.Temperature, 35.5+float64(rng.IntN(40))/10, float64(m)))
				}
				if m%240 == 100 {
					rs = append(rs, vward.Reading{Patient: "p1", Device: "person:telephone", Kind: vward.Consciousness, Value: float64(rng.IntN(2)), At: at(float64(m))})
				}
			}
			var clock time.Time
			m := NewMonitor(news2.DefaultFreshness(), nil, nil, quiet)
			m.now = func() time.Time { return clock }
			m.Admit(PatientInfo{ID: "p1", Ward: "w1", SpO2Scale: int(scale)})
			next := 0
			for tick := seriesT0; tick.Before(at(24 * 60)); tick = tick.Add(20 * time.Second) {
				var batch []vward.Reading
				for ; next < len(rs) && !rs[next].At.After(tick.Add(-5*time.Second)); next++ {
					batch = append(batch, rs[next])
				}
				clock = tick
				if len(batch) > 0 {
					m.Observe(batch)
				} else {
					m.rescoreAll()
				}
			}
			row, _ := m.Patient("p1")
			if len(row.Trend) < 100 {
				t.Fatalf("the monitor's trend has only %d points", len(row.Trend))
			}
			series := ScoreSeries(rs, scale, news2.DefaultFreshness(), seriesT0, clock)
			changed := 0
			for _, tp := range row.Trend {
				i := len(series) - 1
				for i >= 0 && series[i].At.After(tp.At) {
					i--
				}
				if i < 0 || !series[i].Scored {
					t.Fatalf("monitor at %v: %d, the series has no score then", tp.At, tp.Score)
				}
				if got := series[i].Result; got.Score != tp.Score || got.Complete == tp.Partial {
					t.Errorf("at %v the monitor scored %d (partial %v), the series %d (complete %v)", tp.At, tp.Score, tp.Partial, got.Score, got.Complete)
				}
				if i > 0 && series[i-1].Result.Score != series[i].Result.Score {
					changed++
				}
			}
			if changed < 20 {
				t.Errorf("only %d changes of score compared: the case tests too little", changed)
			}
		})
	}
}

// A series scored a part at a time, cut anywhere, is the series scored
// whole: the web scores a month a day at a time.
func TestSeriesScorerInParts(t *testing.T) {
	kinds := []vward.ReadingKind{vward.RespiratoryRate, vward.SpO2, vward.SupplementalOxygen, vward.SystolicBP,
		vward.HeartRate, vward.Consciousness, vward.Temperature, vward.Weight}
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, 7))
		var rs []vward.Reading
		m := -90.0
		for range 200 {
			m += float64(rng.IntN(40)) // several at one minute now and then
			k := kinds[rng.IntN(len(kinds))]
			v := map[vward.ReadingKind]float64{vward.RespiratoryRate: 10 + float64(rng.IntN(18)), vward.SpO2: 88 + float64(rng.IntN(10)),
				vward.SupplementalOxygen: float64(rng.IntN(2)), vward.SystolicBP: 85 + float64(rng.IntN(60)), vward.HeartRate: 45 + float64(rng.IntN(90)),
				vward.Consciousness: 0, vward.Temperature: 35 + float64(rng.IntN(40))/10, vward.Weight: 80}[k]
			rs = append(rs, rd(k, v, m))
		}
		from, to := at(0), at(m-30)
		whole := show(ScoreSeries(rs, news2.Scale1, news2.DefaultFreshness(), from, to))
		if ref := show(referenceSeries(rs, news2.Scale1, news2.DefaultFreshness(), from, to)); ref != whole {
			t.Fatalf("seed %d: scored\n%s\nby the reference\n%s", seed, whole, ref)
		}
		sc := NewSeriesScorer(news2.Scale1, news2.DefaultFreshness(), from, to)
		var taken []ScorePoint
		for rest := rs; len(rest) > 0; {
			n := min(len(rest), rng.IntN(30))
			sc.Add(rest[:n])
			rest = rest[n:]
			if len(rest) > 0 && rng.IntN(2) == 0 {
				// As the FHIR stream does at the end of each part: every
				// moment before the next reading is scored.
				sc.ScoreUntil(rest[0].At)
				taken = append(taken, sc.Take()...)
			}
		}
		if parts := show(append(taken, sc.Finish()...)); parts != whole {
			t.Fatalf("seed %d: in parts\n%s\nwhole\n%s", seed, parts, whole)
		}
	}
}

// referenceSeries is ScoreSeries as first written, over every reading at
// once: the oracle the scorer in parts is checked against.
func referenceSeries(rs []vward.Reading, scale news2.Scale, f news2.Freshness, from, to time.Time) []ScorePoint {
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
