package news2

import (
	"errors"
	"math"
	"math/bits"
	"strings"
	"testing"
)

// refBand is a row segment of the chart in the chart's own units: whole
// numbers, or tenths of a degree for temperature.
type refBand struct {
	lo, hi int64
	score  int
}

const (
	minI = math.MinInt64
	maxI = math.MaxInt64
)

// The chart as data, written out from the RCP chart separately from the code
// under test, so that the fuzzer compares two statements of it.
var (
	refRR       = []refBand{{minI, 8, 3}, {9, 11, 1}, {12, 20, 0}, {21, 24, 2}, {25, maxI, 3}}
	refSpO2S1   = []refBand{{minI, 91, 3}, {92, 93, 2}, {94, 95, 1}, {96, maxI, 0}}
	refSpO2S2   = []refBand{{minI, 83, 3}, {84, 85, 2}, {86, 87, 1}, {88, maxI, 0}}
	refSpO2S2O2 = []refBand{{minI, 83, 3}, {84, 85, 2}, {86, 87, 1}, {88, 92, 0}, {93, 94, 1}, {95, 96, 2}, {97, maxI, 3}}
	refO2       = []refBand{{0, 0, 0}, {1, 1, 2}}
	refSBP      = []refBand{{minI, 90, 3}, {91, 100, 2}, {101, 110, 1}, {111, 219, 0}, {220, maxI, 3}}
	refHR       = []refBand{{minI, 40, 3}, {41, 50, 1}, {51, 90, 0}, {91, 110, 1}, {111, 130, 2}, {131, maxI, 3}}
	refACVPU    = []refBand{{0, 0, 0}, {1, 4, 3}}
	refTemp     = []refBand{{minI, 350, 3}, {351, 360, 1}, {361, 380, 0}, {381, 390, 1}, {391, maxI, 2}}
)

func lookup(t *testing.T, bands []refBand, p Parameter, x int64) int {
	t.Helper()
	for _, b := range bands {
		if b.lo <= x && x <= b.hi {
			return b.score
		}
	}
	t.Fatalf("%v: %d falls in no band of the reference chart", p, x)
	return 0
}

// refScore scores validated observations from the reference chart, with the
// reference rounding.
func refScore(t *testing.T, o Observations) (subs [NumParameters]int, total int) {
	t.Helper()
	o2, onO2 := o.Value(SupplementalOxygen)
	onO2 = onO2 && o2 == 1
	for p := range NumParameters {
		v, ok := o.Value(p)
		if !ok {
			continue
		}
		x := refRound(v, placesOf(p))
		var bands []refBand
		switch p {
		case RespiratoryRate:
			bands = refRR
		case SpO2:
			switch {
			case o.Scale != Scale2:
				bands = refSpO2S1
			case onO2:
				bands = refSpO2S2O2
			default:
				bands = refSpO2S2
			}
		case SupplementalOxygen:
			bands = refO2
		case SystolicBP:
			bands = refSBP
		case HeartRate:
			bands = refHR
		case Consciousness:
			bands = refACVPU
		case Temperature:
			bands = refTemp
		}
		subs[p] = lookup(t, bands, p, x)
		total += subs[p]
	}
	return subs, total
}

// checkResult asserts what must hold of any Result, valid input or not.
func checkResult(t *testing.T, o Observations, r Result) {
	t.Helper()
	maxSub := [NumParameters]int{3, 3, 2, 3, 3, 3, 3}
	sum, red := 0, false
	for p := range NumParameters {
		s := r.Subscores[p]
		if s < 0 || s > maxSub[p] || (p == SupplementalOxygen || p == Consciousness) && s != 0 && s != maxSub[p] {
			t.Fatalf("%v subscore %d out of range", p, s)
		}
		if !r.Has(p) && s != 0 {
			t.Fatalf("absent %v has subscore %d", p, s)
		}
		v, ok := o.Value(p)
		if r.Has(p) != (ok && !math.IsNaN(v)) {
			t.Fatalf("%v: result present %v, observation present %v value %v", p, r.Has(p), ok, v)
		}
		sum += s
		red = red || s == 3
	}
	if r.Score != sum || r.Score < 0 || r.Score > 20 {
		t.Fatalf("score %d, subscores sum to %d", r.Score, sum)
	}
	if r.RedScore != red {
		t.Fatalf("red score %v, subscores %v", r.RedScore, r.Subscores)
	}
	var want Risk
	switch {
	case sum >= 7:
		want = High
	case sum >= 5:
		want = Medium
	case red:
		want = LowMedium
	}
	if r.Risk != want {
		t.Fatalf("risk %v for score %d, red %v", r.Risk, sum, red)
	}
	if r.Complete != (r.Present == allParams) {
		t.Fatalf("complete %v, present %08b", r.Complete, r.Present)
	}
	if n := len(r.Missing()) + bits.OnesCount8(uint8(r.Present)); n != int(NumParameters) {
		t.Fatalf("missing and present make %d parameters", n)
	}
	mon := map[Risk][]string{High: {"continuous"}, Medium: {"hourly"}, LowMedium: {"hourly"}, Low: {"12-hourly", "4–6-hourly"}}
	found := false
	for _, m := range mon[r.Risk] {
		found = found || r.Monitoring() == m
	}
	if !found || r.Response() == "" {
		t.Fatalf("risk %v: monitoring %q, response %q", r.Risk, r.Monitoring(), r.Response())
	}
}

// FuzzScore feeds arbitrary values through Validate and Score: Score must
// never panic and its result must always be self-consistent, and whenever
// Validate accepts the input, Score must agree with the reference chart.
func FuzzScore(f *testing.F) {
	type seed struct {
		rr, spo2, o2, sbp, hr, acvpu, temp float64
		scale                              int
		present                            uint8
	}
	for _, s := range []seed{
		{16, 97, 0, 120, 70, 0, 37, 1, 0x7f},
		{20.5, 95.5, 1, 219.5, 130.5, 1, 38.05, 1, 0x7f},
		{8, 91, 0, 90, 40, 0, 35, 1, 0x7f},
		{25, 97, 1, 220, 131, 4, 39.1, 2, 0x7f},
		{12, 93, 0, 111, 51, 0, 36.1, 2, 0x7f},
		{12, 93, 0, 111, 51, 0, 36.1, 2, 0x7f &^ (1 << SupplementalOxygen)},
		{math.NaN(), 100.3, 0.5, 19, 301, 1.5, 98.6, 3, 0x7f},
		{math.Inf(1), math.Inf(-1), 2, 1e300, -1e300, -1, 5e-324, 0, 0x55},
		{0, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		f.Add(s.rr, s.spo2, s.o2, s.sbp, s.hr, s.acvpu, s.temp, s.scale, s.present)
	}
	f.Fuzz(func(t *testing.T, rr, spo2, o2, sbp, hr, acvpu, temp float64, scale int, present uint8) {
		vals := [NumParameters]float64{rr, spo2, o2, sbp, hr, acvpu, temp}
		o := Observations{Scale: Scale(scale)}
		for p := range NumParameters {
			if present&(1<<p) != 0 {
				o.Set(p, vals[p])
			}
		}
		r := Score(o)
		checkResult(t, o, r)

		err := o.Validate()
		if err != nil {
			var ve *ValueError
			var se *ScaleError
			switch {
			case errors.As(err, &ve):
				if !strings.HasPrefix(err.Error(), ve.Parameter.String()+" ") {
					t.Fatalf("error %q does not name %v first", err, ve.Parameter)
				}
			case errors.As(err, &se):
			default:
				t.Fatalf("error %T %v is neither a *ValueError nor a *ScaleError", err, err)
			}
			return
		}
		if !r.Complete && o.Present() == allParams {
			t.Fatalf("validated complete set scored partial")
		}
		subs, total := refScore(t, o)
		if subs != r.Subscores || total != r.Score {
			t.Fatalf("Score gives %v = %d, reference chart %v = %d", r.Subscores, r.Score, subs, total)
		}
	})
}
