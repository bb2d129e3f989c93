package careplan

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/vward/vward"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// rd is a reading of kind k, value v, measured at t0 + off.
func rd(k vward.ReadingKind, off time.Duration, v float64) vward.Reading {
	return vward.Reading{Patient: "p1", Kind: k, Value: v, At: t0.Add(off)}
}

// every returns readings of kind k every step from t0+from, one per value.
func every(k vward.ReadingKind, from, step time.Duration, vs ...float64) []vward.Reading {
	out := make([]vward.Reading, len(vs))
	for i, v := range vs {
		out[i] = rd(k, from+time.Duration(i)*step, v)
	}
	return out
}

func concat(rs ...[]vward.Reading) []vward.Reading {
	var out []vward.Reading
	for _, r := range rs {
		out = append(out, r...)
	}
	return out
}

type evalCase struct {
	name     string
	rule     Rule
	readings []vward.Reading
	at       time.Duration // evaluated at t0 + at
	want     State
	amount   float64 // checked when want is not NotEnoughData
	ref      time.Duration
	checkRef bool
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.rule.ID = "r"
			p := &Plan{Version: 1, Name: "test", Rules: []Rule{c.rule}}
			fs := Evaluate(p, c.readings, t0.Add(c.at))
			if len(fs) != 1 {
				t.Fatalf("%d findings, want 1", len(fs))
			}
			f := fs[0]
			if f.State != c.want {
				t.Fatalf("state %s, want %s: %+v (%s)", f.State, c.want, f, c.rule.Describe(f))
			}
			if f.Rule != "r" {
				t.Errorf("finding names rule %q", f.Rule)
			}
			if c.want != NotEnoughData && math.Abs(f.Amount-c.amount) > 1e-9 {
				t.Errorf("amount %v, want %v", f.Amount, c.amount)
			}
			if c.checkRef && !f.Reference.At.Equal(t0.Add(c.ref)) {
				t.Errorf("reference at %v, want t0%+v", f.Reference.At, c.ref)
			}
			if desc := c.rule.Describe(f); desc == "" {
				t.Error("empty description")
			}
		})
	}
}

func TestThreshold(t *testing.T) {
	le92 := Rule{Type: Threshold, Kind: vward.SpO2, Op: AtMost, Value: 92, Risk: RiskHigh, Name: "spo2 <= 92"}
	lt92 := le92
	lt92.Op = Below
	ge38 := Rule{Type: Threshold, Kind: vward.Temperature, Op: AtLeast, Value: 38, Name: "t"}
	gt38 := ge38
	gt38.Op = Above
	within := le92
	within.Within = time.Hour
	fall := Rule{Type: Threshold, Kind: FallEvent, Within: 24 * time.Hour, Name: "fall"}
	runEvalCases(t, []evalCase{
		{name: "at the threshold, <=", rule: le92, readings: every(vward.SpO2, 0, 0, 92), want: Holds, amount: 92},
		{name: "one above, <=", rule: le92, readings: every(vward.SpO2, 0, 0, 93), want: DoesNotHold, amount: 93},
		{name: "one below, <=", rule: le92, readings: every(vward.SpO2, 0, 0, 91), want: Holds, amount: 91},
		{name: "at the threshold, <", rule: lt92, readings: every(vward.SpO2, 0, 0, 92), want: DoesNotHold, amount: 92},
		{name: "a tenth below, <", rule: lt92, readings: every(vward.SpO2, 0, 0, 91.9), want: Holds, amount: 91.9},
		{name: "at the threshold, >=", rule: ge38, readings: every(vward.Temperature, 0, 0, 38), want: Holds, amount: 38},
		{name: "at the threshold, >", rule: gt38, readings: every(vward.Temperature, 0, 0, 38), want: DoesNotHold, amount: 38},
		{name: "a tenth above, >", rule: gt38, readings: every(vward.Temperature, 0, 0, 38.1), want: Holds, amount: 38.1},
		{name: "no reading", rule: le92, want: NotEnoughData},
		{name: "only other kinds", rule: le92, readings: every(vward.HeartRate, 0, time.Minute, 40, 41), want: NotEnoughData},
		{name: "the latest counts, not the worst", rule: le92, readings: every(vward.SpO2, 0, time.Minute, 85, 96), at: time.Minute, want: DoesNotHold, amount: 96},
		{name: "out of order: the newest by measurement time", rule: le92,
			readings: []vward.Reading{rd(vward.SpO2, time.Minute, 96), rd(vward.SpO2, 0, 85)}, at: time.Minute, want: DoesNotHold, amount: 96},
		{name: "same time twice: the last given wins", rule: le92,
			readings: []vward.Reading{rd(vward.SpO2, 0, 96), rd(vward.SpO2, 0, 85)}, want: Holds, amount: 85},
		{name: "same time twice, the other way", rule: le92,
			readings: []vward.Reading{rd(vward.SpO2, 0, 85), rd(vward.SpO2, 0, 96)}, want: DoesNotHold, amount: 96},
		{name: "a reading after the evaluation time is not read", rule: le92,
			readings: every(vward.SpO2, 0, time.Minute, 85, 96), at: 59 * time.Second, want: Holds, amount: 85},
		{name: "NaN is no measurement", rule: le92,
			readings: []vward.Reading{rd(vward.SpO2, 0, 85), rd(vward.SpO2, time.Minute, math.NaN())}, at: time.Minute, want: Holds, amount: 85},
		{name: "within: exactly as old counts", rule: within, readings: every(vward.SpO2, 0, 0, 90), at: time.Hour, want: Holds, amount: 90},
		{name: "within: a second older is stale", rule: within, readings: every(vward.SpO2, 0, 0, 90), at: time.Hour + time.Second, want: NotEnoughData},
		{name: "event within the window, at its edge", rule: fall, readings: every(FallEvent, 0, 0, 1), at: 24 * time.Hour, want: Holds, amount: 1},
		{name: "event a second too old", rule: fall, readings: every(FallEvent, 0, 0, 1), at: 24*time.Hour + time.Second, want: DoesNotHold, amount: 1},
		{name: "no event is no fall, not missing data", rule: fall, want: DoesNotHold, amount: 0},
	})
}

func TestSustainedSets(t *testing.T) {
	r := Rule{Type: Sustained, Kind: vward.SpO2, Op: AtMost, Value: 92, Sets: 3, Name: "s"}
	h := time.Hour
	runEvalCases(t, []evalCase{
		{name: "N breaching", rule: r, readings: every(vward.SpO2, 0, h, 92, 91, 92), at: 2 * h, want: Holds, amount: 92, ref: 0, checkRef: true},
		{name: "N breaching after a normal one", rule: r, readings: every(vward.SpO2, 0, h, 97, 92, 91, 92), at: 3 * h, want: Holds, amount: 92, ref: h, checkRef: true},
		{name: "N-1 breaching after a normal one", rule: r, readings: every(vward.SpO2, 0, h, 97, 97, 91, 92), at: 3 * h, want: DoesNotHold, amount: 92},
		{name: "N-1 breaching and nothing before", rule: r, readings: every(vward.SpO2, 0, h, 91, 92), at: h, want: NotEnoughData},
		{name: "latest normal", rule: r, readings: every(vward.SpO2, 0, h, 90, 90, 90, 93), at: 3 * h, want: DoesNotHold, amount: 93},
		{name: "a duplicate counts once", rule: r,
			readings: concat(every(vward.SpO2, 0, h, 91, 92), every(vward.SpO2, h, 0, 92)), at: h, want: NotEnoughData},
		{name: "out of order", rule: r, at: 3 * h,
			readings: []vward.Reading{rd(vward.SpO2, 3*h, 92), rd(vward.SpO2, h, 91), rd(vward.SpO2, 0, 97), rd(vward.SpO2, 2*h, 90)}, want: Holds, amount: 92, ref: h, checkRef: true},
		{name: "out of order, a normal one in the middle", rule: r, at: 3 * h,
			readings: []vward.Reading{rd(vward.SpO2, 3*h, 92), rd(vward.SpO2, h, 91), rd(vward.SpO2, 0, 90), rd(vward.SpO2, 2*h, 97)}, want: DoesNotHold, amount: 92},
		{name: "no reading", rule: r, want: NotEnoughData},
	})
}

func TestSustainedFor(t *testing.T) {
	r := Rule{Type: Sustained, Kind: vward.SpO2, Op: Below, Value: 90, For: 2 * time.Minute, Name: "s"}
	s := time.Second
	normal := every(vward.SpO2, -10*s, 0, 96)
	runEvalCases(t, []evalCase{
		{name: "held exactly N", rule: r, readings: concat(normal, every(vward.SpO2, 0, 10*s, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88, 88)),
			at: 120 * s, want: Holds, amount: 88, ref: 0, checkRef: true},
		{name: "held N less a second", rule: r, readings: concat(normal, every(vward.SpO2, s, 17*s, 88, 88, 88, 88, 88, 88, 88, 88)),
			at: 120 * s, want: DoesNotHold, amount: 88, ref: s, checkRef: true},
		{name: "a one-second dip", rule: r, readings: concat(normal, every(vward.SpO2, 0, s, 85, 96)), at: s, want: DoesNotHold, amount: 96},
		{name: "breach from the first reading, short of N", rule: r, readings: every(vward.SpO2, 0, 10*s, 88, 88, 88), at: 20 * s, want: NotEnoughData},
		{name: "a normal reading inside the span", rule: r, readings: every(vward.SpO2, 0, 30*s, 88, 88, 91, 88, 88), at: 120 * s, want: DoesNotHold, amount: 88},
		{name: "at the threshold is no breach of <", rule: r, readings: every(vward.SpO2, 0, 30*s, 88, 88, 90, 88, 88), at: 120 * s, want: DoesNotHold, amount: 88},
		{name: "a breach that began before the lookback", rule: r,
			readings: concat(normal, every(vward.SpO2, 0, 0, 88), every(vward.SpO2, 3*time.Minute, 0, 87)), at: 3 * time.Minute, want: Holds, amount: 87, ref: 0, checkRef: true},
		{name: "a normal reading before the lookback, a lone breach after", rule: r,
			readings: concat(every(vward.SpO2, 0, 0, 96), every(vward.SpO2, 3*time.Minute, 0, 87)), at: 3 * time.Minute, want: DoesNotHold, amount: 87},
		{name: "duplicates and disorder", rule: r, at: 120 * s,
			readings: []vward.Reading{rd(vward.SpO2, 120*s, 88), rd(vward.SpO2, 0, 88), rd(vward.SpO2, 60*s, 88), rd(vward.SpO2, 60*s, 88), rd(vward.SpO2, -10*s, 97)}, want: Holds, amount: 88, ref: 0, checkRef: true},
	})
}

func TestChange(t *testing.T) {
	rise := Rule{Type: Change, Kind: Weight, Direction: Rise, Op: Above, Value: 2, Window: 72 * time.Hour, Name: "c"}
	riseAtLeast := rise
	riseAtLeast.Op = AtLeast
	fall := rise
	fall.Direction = Fall
	d := 24 * time.Hour
	runEvalCases(t, []evalCase{
		{name: "exactly the amount is not more", rule: rise, readings: every(Weight, 0, 3*d, 80, 82), at: 3 * d, want: DoesNotHold, amount: 2},
		{name: "a tenth more", rule: rise, readings: every(Weight, 0, 3*d, 80, 82.1), at: 3 * d, want: Holds, amount: 2.1, ref: 0, checkRef: true},
		{name: "a tenth less", rule: rise, readings: every(Weight, 0, 3*d, 80, 81.9), at: 3 * d, want: DoesNotHold, amount: 1.9},
		{name: "binary noise: 80.1 - 78.1 is 2", rule: rise, readings: every(Weight, 0, d, 78.1, 80.1), at: d, want: DoesNotHold, amount: 2},
		{name: "binary noise: at least 2", rule: riseAtLeast, readings: every(Weight, 0, d, 78.1, 80.1), at: d, want: Holds, amount: 2},
		{name: "window start is inclusive", rule: rise, readings: every(Weight, 0, 3*d, 80, 82.5), at: 3 * d, want: Holds, amount: 2.5},
		{name: "a second past the window", rule: rise, readings: every(Weight, 0, 3*d+time.Second, 80, 82.5), at: 3*d + time.Second, want: NotEnoughData},
		{name: "from the lowest in the window, not the first", rule: rise, readings: every(Weight, 0, d, 81, 79.6, 80.6, 81.8), at: 3 * d, want: Holds, amount: 2.2, ref: d, checkRef: true},
		{name: "a fall is no rise", rule: rise, readings: every(Weight, 0, d, 82, 81, 79), at: 2 * d, want: DoesNotHold, amount: -2},
		{name: "fall from the highest", rule: fall, readings: every(Weight, 0, d, 80, 82, 79.9), at: 2 * d, want: Holds, amount: 2.1, ref: d, checkRef: true},
		{name: "one reading only", rule: rise, readings: every(Weight, 0, 0, 80), want: NotEnoughData},
		{name: "no reading", rule: rise, want: NotEnoughData},
		{name: "out of order", rule: rise, readings: []vward.Reading{rd(Weight, 2*d, 82.3), rd(Weight, 0, 80), rd(Weight, d, 81)}, at: 2 * d, want: Holds, amount: 2.3, ref: 0, checkRef: true},
		{name: "duplicate of the latest is not an earlier reading", rule: rise, readings: []vward.Reading{rd(Weight, 0, 80), rd(Weight, 0, 80)}, want: NotEnoughData},
		{name: "a duplicate earlier reading: the last given", rule: rise, readings: []vward.Reading{rd(Weight, 0, 79), rd(Weight, 0, 80), rd(Weight, d, 82)}, at: d, want: DoesNotHold, amount: 2},
	})
}

func TestDeviation(t *testing.T) {
	d := 24 * time.Hour
	set := t0.Add(-10 * d)
	clinical := Rule{Type: Deviation, Kind: vward.SpO2, Direction: Fall, Op: AtLeast, Value: 4, Name: "dev",
		Baseline: Baseline{Value: 92, SetBy: "dr.a", SetAt: set}}
	pct := Rule{Type: Deviation, Kind: Weight, Direction: Rise, Op: Above, Value: 5, Percent: true, Name: "pct",
		Baseline: Baseline{Value: 80, SetBy: "dr.a", SetAt: set}}
	med := Rule{Type: Deviation, Kind: vward.SpO2, Direction: Fall, Op: AtLeast, Value: 4, Name: "med",
		Baseline: Baseline{MedianOf: 7 * d, ExcludingLast: d, MinReadings: 3}}
	medOfTwo := med
	medOfTwo.Baseline.MinReadings = 2
	medNoExcl := med
	medNoExcl.Baseline.ExcludingLast = 0
	zero := Rule{Type: Deviation, Kind: PainScore, Direction: Rise, Op: AtLeast, Value: 50, Percent: true, Name: "z",
		Baseline: Baseline{Value: 0, SetBy: "dr.a", SetAt: set}}
	runEvalCases(t, []evalCase{
		{name: "clinician's baseline, exactly the amount", rule: clinical, readings: every(vward.SpO2, 0, 0, 88), want: Holds, amount: 4, ref: -10 * d, checkRef: true},
		{name: "clinician's baseline, one less", rule: clinical, readings: every(vward.SpO2, 0, 0, 89), want: DoesNotHold, amount: 3},
		{name: "clinician's baseline, the other way", rule: clinical, readings: every(vward.SpO2, 0, 0, 97), want: DoesNotHold, amount: -5},
		{name: "percent, exactly 5%", rule: pct, readings: every(Weight, 0, 0, 84), want: DoesNotHold, amount: 5},
		{name: "percent, a little more", rule: pct, readings: every(Weight, 0, 0, 84.1), want: Holds, amount: 5.125},
		{name: "median of three", rule: med, readings: concat(every(vward.SpO2, -5*d, d, 93, 95, 94), every(vward.SpO2, 0, 0, 90)), want: Holds, amount: 4},
		{name: "median of two is their mean", rule: medOfTwo,
			readings: concat(every(vward.SpO2, -5*d, d, 93, 96), every(vward.SpO2, 0, 0, 90.5)), want: Holds, amount: 4},
		{name: "too few readings", rule: med, readings: concat(every(vward.SpO2, -5*d, d, 93, 95), every(vward.SpO2, 0, 0, 90)), want: NotEnoughData},
		{name: "the excluded last day is not in the baseline", rule: med,
			readings: concat(every(vward.SpO2, -5*d, d, 93, 95, 94), every(vward.SpO2, -12*time.Hour, time.Hour, 80, 80, 80, 80), every(vward.SpO2, 0, 0, 90)), want: Holds, amount: 4},
		{name: "window start inclusive, end exclusive", rule: med,
			readings: concat(every(vward.SpO2, -8*d, d, 94, 94, 94), every(vward.SpO2, -d, 0, 70), every(vward.SpO2, 0, 0, 90)), want: Holds, amount: 4},
		{name: "a reading a second before the window is out", rule: med,
			readings: concat(every(vward.SpO2, -8*d-time.Second, 0, 94), every(vward.SpO2, -7*d, d, 94, 94), every(vward.SpO2, 0, 0, 90)), want: NotEnoughData},
		{name: "without exclusion the latest is still not its own baseline", rule: medNoExcl,
			readings: concat(every(vward.SpO2, -3*d, d, 94, 94), every(vward.SpO2, 0, 0, 90)), want: NotEnoughData},
		{name: "median resists one outlier", rule: med,
			readings: concat(every(vward.SpO2, -5*d, d, 94, 60, 94), every(vward.SpO2, 0, 0, 90)), want: Holds, amount: 4},
		{name: "out of order and duplicated", rule: med,
			readings: []vward.Reading{rd(vward.SpO2, 0, 90), rd(vward.SpO2, -3*d, 94), rd(vward.SpO2, -5*d, 94), rd(vward.SpO2, -3*d, 94), rd(vward.SpO2, -4*d, 94)}, want: Holds, amount: 4},
		{name: "a duplicate does not make up the count", rule: med,
			readings: []vward.Reading{rd(vward.SpO2, 0, 90), rd(vward.SpO2, -3*d, 94), rd(vward.SpO2, -3*d, 94), rd(vward.SpO2, -4*d, 94)}, want: NotEnoughData},
		{name: "percent of a zero baseline", rule: zero, readings: every(PainScore, 0, 0, 5), want: NotEnoughData},
		{name: "no reading", rule: clinical, want: NotEnoughData},
	})
}

// Several rules on several kinds: each finding in its rule's place, each
// judged on its own kind.
func TestEvaluateManyRules(t *testing.T) {
	p, err := Template("heart_failure")
	if err != nil {
		t.Fatal(err)
	}
	d := 24 * time.Hour
	readings := concat(
		every(Weight, 0, d, 80, 81, 82.5),
		every(vward.HeartRate, 0, d, 104, 108, 111),
		every(vward.SpO2, 0, d, 97, 96, 97),
	)
	fs := Evaluate(p, readings, t0.Add(2*d))
	want := map[string]State{
		"hf-weight-gain-3d": Holds, "hf-spo2-below-94": DoesNotHold,
		"hf-hr-above-100": Holds, "hf-hr-below-50": DoesNotHold,
	}
	if len(fs) != len(p.Rules) {
		t.Fatalf("%d findings for %d rules", len(fs), len(p.Rules))
	}
	for i, f := range fs {
		if f.Rule != p.Rules[i].ID {
			t.Errorf("finding %d is of rule %s, want %s", i, f.Rule, p.Rules[i].ID)
		}
		if f.State != want[f.Rule] {
			t.Errorf("%s: %s, want %s (%s)", f.Rule, f.State, want[f.Rule], p.Rules[i].Describe(f))
		}
	}
	// Appending after findings already there keeps them.
	var e Evaluator
	into := e.Evaluate(p, readings, t0.Add(2*d), []Finding{{Rule: "kept"}})
	if len(into) != 1+len(p.Rules) || into[0].Rule != "kept" || into[1].Rule != p.Rules[0].ID {
		t.Errorf("Evaluate into a non-empty slice: %+v", into)
	}
}

func TestLookback(t *testing.T) {
	p, err := Template("respiratory")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Lookback(), 8*24*time.Hour; got != want {
		t.Errorf("Lookback %v, want %v (the baseline's 7d and 1d excluded)", got, want)
	}
	if got := p.LookbackSets(); got != 2 {
		t.Errorf("LookbackSets %d, want 2", got)
	}
}

// The evaluator runs on every reading of a patient with a plan: once warm
// it must not allocate.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	p, readings := benchPlan(t)
	var e Evaluator
	into := e.Evaluate(p, readings, t0.Add(72*time.Hour), nil)
	allocs := testing.AllocsPerRun(50, func() {
		into = e.Evaluate(p, readings, t0.Add(72*time.Hour), into[:0])
	})
	if allocs != 0 {
		t.Errorf("Evaluate allocates %v times per call once warm", allocs)
	}
}

func benchPlan(tb testing.TB) (*Plan, []vward.Reading) {
	tb.Helper()
	var rules []Rule
	for _, name := range TemplateNames() {
		p, err := Template(name)
		if err != nil {
			tb.Fatal(err)
		}
		rules = append(rules, p.Rules...)
	}
	for i := range rules {
		rules[i].ID = string(rune('a'+i)) + rules[i].ID
	}
	p := &Plan{Version: 1, Name: "all", Rules: rules}
	var readings []vward.Reading
	// Three days of four-hourly spot checks and daily weights.
	for i := range 18 {
		off := time.Duration(i) * 4 * time.Hour
		readings = append(readings,
			rd(vward.SpO2, off, float64(90+i%6)), rd(vward.HeartRate, off, float64(80+i)),
			rd(vward.RespiratoryRate, off, float64(16+i%7)), rd(vward.Temperature, off, 36.5+float64(i%5)/5))
		if i%6 == 0 {
			readings = append(readings, rd(Weight, off, 80+float64(i)/6))
		}
	}
	return p, readings
}

func BenchmarkEvaluate(b *testing.B) {
	p, readings := benchPlan(b)
	var e Evaluator
	var into []Finding
	at := t0.Add(72 * time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		into = e.Evaluate(p, readings, at, into[:0])
	}
}

// RuleKinds names each kind the rules read once, in the rules' order.
func TestRuleKinds(t *testing.T) {
	for _, c := range []struct {
		name string
		p    *Plan
		want []vward.ReadingKind
	}{
		{"none", &Plan{}, nil},
		{"each once, in order", &Plan{Rules: []Rule{{Kind: Weight}, {Kind: vward.SpO2}, {Kind: Weight}}}, []vward.ReadingKind{Weight, vward.SpO2}},
	} {
		if got := c.p.RuleKinds(); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
