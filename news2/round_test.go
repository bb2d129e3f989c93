package news2

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestRound(t *testing.T) {
	cases := []struct {
		p    Parameter
		v    float64
		want float64
	}{
		{RespiratoryRate, 20.5, 21},
		{RespiratoryRate, 20.49, 20},
		{RespiratoryRate, 20.4999999999, 20},
		{RespiratoryRate, 0.49999999999999994, 0}, // math.Floor(v+0.5) gets this wrong
		{RespiratoryRate, 0, 0},
		{SpO2, 95.5, 96},
		{SpO2, 95.4, 95},
		{SpO2, 99.5, 100},
		{HeartRate, 130.5, 131},
		{SystolicBP, 219.5, 220},
		{SupplementalOxygen, 1, 1},
		{Consciousness, 3, 3},
		{Temperature, 38.05, 38.1},
		{Temperature, 35.05, 35.1},
		{Temperature, 36.04, 36.0},
		{Temperature, 36.05, 36.1},
		{Temperature, 39.05, 39.1},
		{Temperature, 37.25, 37.3},
		{Temperature, 37.15, 37.2},
		{Temperature, 38.049999999, 38.0},
		{Temperature, 38.0999, 38.1},
		{Temperature, 3.3499999999999996, 3.3}, // math.Round(v*10)/10 gives 3.4
		{Temperature, 37, 37},
		{Temperature, 0.05, 0.1},
		{Temperature, -0.05, 0}, // ties go up, towards +∞
		{HeartRate, -0.5, 0},
		{HeartRate, -1.5, -1},
		{Temperature, 1e300, 1e300},
		{HeartRate, 1e300, 1e300},
		{HeartRate, math.Inf(1), math.Inf(1)},
		{Temperature, math.Inf(-1), math.Inf(-1)},
	}
	for _, c := range cases {
		if got := Round(c.p, c.v); got != c.want {
			t.Errorf("Round(%v, %v) = %v, want %v", c.p, c.v, got, c.want)
		}
	}
	if got := Round(Temperature, math.NaN()); !math.IsNaN(got) {
		t.Errorf("Round(NaN) = %v", got)
	}
}

// refRound is the rounding rule stated plainly: take the shortest decimal
// that denotes v, round it half-up to the given number of places in exact
// arithmetic, and return the result in units of the last place.
func refRound(v float64, places int) int64 {
	r, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'f', -1, 64))
	if !ok {
		panic("unparsable " + strconv.FormatFloat(v, 'g', -1, 64))
	}
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil))
	r.Mul(r, scale)
	r.Add(r, big.NewRat(1, 2))
	// Floor of a rational: big.Int.Div rounds towards -∞ for a positive divisor.
	q := new(big.Int).Div(r.Num(), r.Denom())
	return q.Int64()
}

func placesOf(p Parameter) int {
	if p == Temperature {
		return 1
	}
	return 0
}

// checkAgainstRef fails when Round disagrees with refRound on v.
func checkAgainstRef(t *testing.T, p Parameter, v float64) {
	t.Helper()
	places := placesOf(p)
	want := float64(refRound(v, places)) / math.Pow10(places)
	if got := Round(p, v); got != want {
		t.Fatalf("Round(%v, %s) = %v, want %v", p, strconv.FormatFloat(v, 'g', -1, 64), got, want)
	}
}

// TestRoundMatchesDecimalRule compares Round with the exact decimal rule on
// every hundredth and thousandth across the chart's ranges — which includes
// every tie — on their float64 neighbours, and on random values.
func TestRoundMatchesDecimalRule(t *testing.T) {
	for n := -1000; n <= 50000; n++ {
		v := float64(n) / 100
		for _, p := range []Parameter{Temperature, HeartRate} {
			checkAgainstRef(t, p, v)
			checkAgainstRef(t, p, math.Nextafter(v, math.Inf(1)))
			checkAgainstRef(t, p, math.Nextafter(v, math.Inf(-1)))
		}
	}
	for n := 20000; n <= 50000; n++ {
		checkAgainstRef(t, Temperature, float64(n)/1000)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		v := rng.Float64() * 400
		checkAgainstRef(t, Temperature, v)
		checkAgainstRef(t, SystolicBP, v)
	}
	for range 20000 {
		v := (rng.Float64() - 0.5) * 2e12
		checkAgainstRef(t, Temperature, v)
		checkAgainstRef(t, SystolicBP, v)
	}
}
