package news2

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/vward/vward"
)

// only returns observations holding a single value.
func only(p Parameter, v float64) Observations {
	var o Observations
	o.Set(p, v)
	return o
}

// normal returns a complete set that scores 0 everywhere, for tests to spoil
// one parameter at a time.
func normal() Observations {
	var o Observations
	o.Set(RespiratoryRate, 16)
	o.Set(SpO2, 97)
	o.Set(SupplementalOxygen, 0)
	o.Set(SystolicBP, 120)
	o.Set(HeartRate, 70)
	o.Set(Consciousness, float64(vward.Alert))
	o.Set(Temperature, 37.0)
	return o
}

type edge struct {
	v    float64
	want int
}

// TestSubscoreBoundaries checks each edge of each band of the chart and the
// value either side of it (±1, or ±0.1 °C for temperature).
func TestSubscoreBoundaries(t *testing.T) {
	cases := []struct {
		p     Parameter
		scale Scale
		edges []edge
	}{
		{RespiratoryRate, Scale1, []edge{
			{0, 3}, {7, 3}, {8, 3}, {9, 1}, {10, 1}, {11, 1}, {12, 0}, {13, 0},
			{19, 0}, {20, 0}, {21, 2}, {22, 2}, {23, 2}, {24, 2}, {25, 3}, {26, 3}, {80, 3},
		}},
		{SpO2, Scale1, []edge{
			{0, 3}, {90, 3}, {91, 3}, {92, 2}, {93, 2}, {94, 1}, {95, 1}, {96, 0}, {97, 0}, {100, 0},
		}},
		// The zero Scale must score as Scale 1.
		{SpO2, 0, []edge{{91, 3}, {92, 2}, {93, 2}, {94, 1}, {95, 1}, {96, 0}}},
		// Oxygen status unknown on Scale 2 (see TestScale2OxygenUnknown).
		{SpO2, Scale2, []edge{
			{0, 3}, {82, 3}, {83, 3}, {84, 2}, {85, 2}, {86, 1}, {87, 1}, {88, 0}, {89, 0},
			{91, 0}, {92, 0}, {93, 0}, {94, 0}, {96, 0}, {97, 0}, {100, 0},
		}},
		{SupplementalOxygen, Scale1, []edge{{0, 0}, {1, 2}}},
		{SystolicBP, Scale1, []edge{
			{20, 3}, {89, 3}, {90, 3}, {91, 2}, {92, 2}, {99, 2}, {100, 2}, {101, 1}, {102, 1},
			{109, 1}, {110, 1}, {111, 0}, {112, 0}, {218, 0}, {219, 0}, {220, 3}, {221, 3}, {300, 3},
		}},
		{HeartRate, Scale1, []edge{
			{0, 3}, {39, 3}, {40, 3}, {41, 1}, {42, 1}, {49, 1}, {50, 1}, {51, 0}, {52, 0},
			{89, 0}, {90, 0}, {91, 1}, {92, 1}, {109, 1}, {110, 1}, {111, 2}, {112, 2},
			{129, 2}, {130, 2}, {131, 3}, {132, 3}, {300, 3},
		}},
		{Consciousness, Scale1, []edge{
			{float64(vward.Alert), 0}, {float64(vward.Confused), 3}, {float64(vward.Voice), 3},
			{float64(vward.Pain), 3}, {float64(vward.Unresponsive), 3},
		}},
		{Temperature, Scale1, []edge{
			{25, 3}, {34.9, 3}, {35.0, 3}, {35.1, 1}, {35.2, 1}, {35.9, 1}, {36.0, 1}, {36.1, 0}, {36.2, 0},
			{37.9, 0}, {38.0, 0}, {38.1, 1}, {38.2, 1}, {38.9, 1}, {39.0, 1}, {39.1, 2}, {39.2, 2}, {45, 2},
		}},
	}
	for _, c := range cases {
		for _, e := range c.edges {
			t.Run(fmt.Sprintf("%v/scale%d/%g", c.p, c.scale, e.v), func(t *testing.T) {
				o := only(c.p, e.v)
				o.Scale = c.scale
				if err := o.Validate(); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				r := Score(o)
				if got := r.Subscores[c.p]; got != e.want {
					t.Errorf("subscore = %d, want %d", got, e.want)
				}
				if r.Score != e.want {
					t.Errorf("score = %d, want %d", r.Score, e.want)
				}
				if r.RedScore != (e.want == 3) {
					t.Errorf("red score = %v, want %v", r.RedScore, e.want == 3)
				}
			})
		}
	}
}

// TestSpO2Scales sweeps 70–100% on both scales, on air, on oxygen and with
// oxygen status unknown. The expected rows are written out from the chart, one
// digit per percentage point, rather than computed, so that they are an
// independent statement of it.
func TestSpO2Scales(t *testing.T) {
	const from = 70
	rows := []struct {
		name  string
		scale Scale
		o2    float64 // -1: not present
		want  string  // subscores for 70, 71, …, 100
	}{
		//                               70..83         84 86 88..92 93 95 97..100
		{"scale1 air", Scale1, 0, "3333333333333333333333" + "22" + "11" + "00000"},
		{"scale1 oxygen", Scale1, 1, "3333333333333333333333" + "22" + "11" + "00000"},
		{"scale2 air", Scale2, 0, "33333333333333" + "22" + "11" + "00000" + "00" + "00" + "0000"},
		{"scale2 oxygen", Scale2, 1, "33333333333333" + "22" + "11" + "00000" + "11" + "22" + "3333"},
		{"scale2 oxygen unknown", Scale2, -1, "33333333333333" + "22" + "11" + "00000" + "00" + "00" + "0000"},
	}
	for _, row := range rows {
		if len(row.want) != 31 {
			t.Fatalf("%s: table has %d entries, want 31", row.name, len(row.want))
		}
		for i, c := range row.want {
			v := float64(from + i)
			want := int(c - '0')
			var o Observations
			o.Scale = row.scale
			o.Set(SpO2, v)
			o2score := 0
			if row.o2 >= 0 {
				o.Set(SupplementalOxygen, row.o2)
				o2score = 2 * int(row.o2)
			}
			r := Score(o)
			if got := r.Subscores[SpO2]; got != want {
				t.Errorf("%s: SpO2 %g%% scores %d, want %d", row.name, v, got, want)
			}
			if r.Score != want+o2score {
				t.Errorf("%s: SpO2 %g%%: aggregate %d, want %d", row.name, v, r.Score, want+o2score)
			}
		}
	}
}

// TestScale2OxygenUnknown pins the decision in docs/news2.md: on Scale 2 an
// SpO2 of 93% or more with no oxygen status scores as on air, so the partial
// score is the least the full score could be, and the result says oxygen is
// missing.
func TestScale2OxygenUnknown(t *testing.T) {
	o := normal()
	o.Scale = Scale2
	o.Set(SpO2, 98)
	var partial Observations
	partial.Scale = Scale2
	for p := range NumParameters {
		if v, ok := o.Value(p); ok && p != SupplementalOxygen {
			partial.Set(p, v)
		}
	}
	r := Score(partial)
	if r.Subscores[SpO2] != 0 || r.Score != 0 {
		t.Errorf("SpO2 98%% on Scale 2, oxygen unknown: subscore %d, score %d; want 0, 0", r.Subscores[SpO2], r.Score)
	}
	if r.Complete || !reflect.DeepEqual(r.Missing(), []Parameter{SupplementalOxygen}) {
		t.Errorf("complete %v, missing %v; want partial, missing [supplemental_oxygen]", r.Complete, r.Missing())
	}
	// Every full score consistent with the partial one is at least as high.
	for _, o2 := range []float64{0, 1} {
		full := partial
		full.Set(SupplementalOxygen, o2)
		if f := Score(full); f.Score < r.Score {
			t.Errorf("oxygen %g: full score %d below partial %d", o2, f.Score, r.Score)
		}
	}
}

// TestRoundingBeforeScoring checks that values are rounded to the chart's
// resolution, half-up on the decimal value, before they are banded.
func TestRoundingBeforeScoring(t *testing.T) {
	cases := []struct {
		p    Parameter
		v    float64
		want int
	}{
		{RespiratoryRate, 20.5, 2},  // → 21
		{RespiratoryRate, 20.49, 0}, // → 20
		{RespiratoryRate, 8.5, 1},   // → 9
		{RespiratoryRate, 8.49, 3},  // → 8
		{RespiratoryRate, 24.5, 3},  // → 25
		{SpO2, 95.5, 0},             // → 96
		{SpO2, 95.49, 1},            // → 95
		{SpO2, 91.5, 2},             // → 92
		{SystolicBP, 90.5, 2},       // → 91
		{SystolicBP, 110.5, 0},      // → 111
		{SystolicBP, 219.5, 3},      // → 220
		{SystolicBP, 219.49, 0},     // → 219
		{HeartRate, 40.5, 1},        // → 41
		{HeartRate, 90.5, 1},        // → 91
		{HeartRate, 130.5, 3},       // → 131
		{HeartRate, 130.4, 2},       // → 130
		{Temperature, 35.05, 1},     // → 35.1
		{Temperature, 35.04, 3},     // → 35.0
		{Temperature, 36.04, 1},     // → 36.0
		{Temperature, 36.05, 0},     // → 36.1
		{Temperature, 38.04, 0},     // → 38.0
		{Temperature, 38.05, 1},     // → 38.1, though 38.05 is 38.0499… in binary
		{Temperature, 39.05, 2},     // → 39.1
		{Temperature, 39.04, 1},     // → 39.0
	}
	for _, c := range cases {
		if got := Score(only(c.p, c.v)).Subscores[c.p]; got != c.want {
			t.Errorf("%v %g scores %d, want %d", c.p, c.v, got, c.want)
		}
	}
}

func TestAggregateAndRisk(t *testing.T) {
	cases := []struct {
		name       string
		set        map[Parameter]float64 // overrides of normal()
		scale      Scale
		score      int
		risk       Risk
		red        bool
		monitoring string
	}{
		{"all normal", nil, Scale1, 0, Low, false, "12-hourly"},
		{"1", map[Parameter]float64{HeartRate: 95}, Scale1, 1, Low, false, "4–6-hourly"},
		{"4 without a 3", map[Parameter]float64{RespiratoryRate: 22, HeartRate: 100, Temperature: 38.5}, Scale1, 4, Low, false, "4–6-hourly"},
		{"single 3, total 3", map[Parameter]float64{RespiratoryRate: 8}, Scale1, 3, LowMedium, true, "hourly"},
		{"new confusion alone", map[Parameter]float64{Consciousness: float64(vward.Confused)}, Scale1, 3, LowMedium, true, "hourly"},
		{"a 3, total 4", map[Parameter]float64{SystolicBP: 85, HeartRate: 95}, Scale1, 4, LowMedium, true, "hourly"},
		{"5 without a 3", map[Parameter]float64{RespiratoryRate: 22, HeartRate: 120, Temperature: 38.5}, Scale1, 5, Medium, false, "hourly"},
		{"5 with a 3", map[Parameter]float64{RespiratoryRate: 25, SupplementalOxygen: 1}, Scale1, 5, Medium, true, "hourly"},
		{"6", map[Parameter]float64{RespiratoryRate: 22, HeartRate: 120, SpO2: 93}, Scale1, 6, Medium, false, "hourly"},
		{"7", map[Parameter]float64{RespiratoryRate: 22, HeartRate: 120, SpO2: 93, Temperature: 38.5}, Scale1, 7, High, false, "continuous"},
		{"7 with a 3", map[Parameter]float64{HeartRate: 140, SupplementalOxygen: 1, SpO2: 92}, Scale1, 7, High, true, "continuous"},
		{"maximum", map[Parameter]float64{
			RespiratoryRate: 30, SpO2: 80, SupplementalOxygen: 1, SystolicBP: 80,
			HeartRate: 150, Consciousness: float64(vward.Unresponsive), Temperature: 34,
		}, Scale1, 20, High, true, "continuous"},
		{"scale 2 on oxygen at 97%", map[Parameter]float64{SpO2: 97, SupplementalOxygen: 1}, Scale2, 5, Medium, true, "hourly"},
		{"scale 2 on air at 97%", map[Parameter]float64{SpO2: 97}, Scale2, 0, Low, false, "12-hourly"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := normal()
			o.Scale = c.scale
			for p, v := range c.set {
				o.Set(p, v)
			}
			if err := o.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			r := Score(o)
			if r.Score != c.score || r.Risk != c.risk || r.RedScore != c.red || !r.Complete {
				t.Errorf("got score %d, %v, red %v, complete %v; want %d, %v, red %v, complete",
					r.Score, r.Risk, r.RedScore, r.Complete, c.score, c.risk, c.red)
			}
			if got := r.Monitoring(); got != c.monitoring {
				t.Errorf("monitoring %q, want %q", got, c.monitoring)
			}
			if len(r.Missing()) != 0 {
				t.Errorf("missing %v, want none", r.Missing())
			}
		})
	}
}

func TestPartialSets(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		r := Score(Observations{})
		want := Result{Risk: Low}
		if r != want {
			t.Errorf("got %+v, want %+v", r, want)
		}
		if got := r.Missing(); len(got) != int(NumParameters) {
			t.Errorf("missing %v, want all seven", got)
		}
		if r.Monitoring() != "12-hourly" {
			t.Errorf("monitoring %q", r.Monitoring())
		}
	})
	t.Run("oximeter only", func(t *testing.T) {
		var o Observations
		o.Set(SpO2, 93)
		o.Set(HeartRate, 115)
		r := Score(o)
		if r.Score != 4 || r.Risk != Low || r.RedScore || r.Complete {
			t.Errorf("got %+v, want score 4, low, partial", r)
		}
		if !r.Has(SpO2) || !r.Has(HeartRate) || r.Has(Temperature) {
			t.Errorf("present %08b", r.Present)
		}
		want := []Parameter{RespiratoryRate, SupplementalOxygen, SystolicBP, Consciousness, Temperature}
		if got := r.Missing(); !reflect.DeepEqual(got, want) {
			t.Errorf("missing %v, want %v", got, want)
		}
	})
	t.Run("red score from one parameter", func(t *testing.T) {
		r := Score(only(HeartRate, 35))
		if r.Score != 3 || r.Risk != LowMedium || !r.RedScore || r.Complete || r.Monitoring() != "hourly" {
			t.Errorf("got %+v (%s)", r, r.Monitoring())
		}
	})
	t.Run("medium from a partial set", func(t *testing.T) {
		var o Observations
		o.Set(RespiratoryRate, 26)
		o.Set(SupplementalOxygen, 1)
		r := Score(o)
		if r.Score != 5 || r.Risk != Medium || r.Complete {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("NaN is not present", func(t *testing.T) {
		o := normal()
		o.Set(HeartRate, math.NaN())
		r := Score(o)
		if r.Complete || r.Has(HeartRate) || !reflect.DeepEqual(r.Missing(), []Parameter{HeartRate}) || r.Score != 0 {
			t.Errorf("got %+v, missing %v", r, r.Missing())
		}
	})
}

func TestMonitoringAndResponse(t *testing.T) {
	cases := []struct {
		r          Result
		monitoring string
		response   string
	}{
		{Result{Score: 0}, "12-hourly", "Continue routine NEWS monitoring."},
		{Result{Score: 1}, "4–6-hourly", "Registered nurse to assess the patient and decide whether increased frequency of monitoring and/or escalation of care is required."},
		{Result{Score: 4}, "4–6-hourly", "Registered nurse to assess the patient and decide whether increased frequency of monitoring and/or escalation of care is required."},
		{Result{Score: 3, RedScore: true}, "hourly", "Registered nurse to inform the medical team caring for the patient, who will review and decide whether escalation of care is necessary."},
		{Result{Score: 5}, "hourly", "Urgent response: registered nurse to inform the medical team caring for the patient immediately and request urgent assessment by a clinician or team with core competencies in the care of acutely ill patients; care in an environment with monitoring facilities."},
		{Result{Score: 6, RedScore: true}, "hourly", "Urgent response: registered nurse to inform the medical team caring for the patient immediately and request urgent assessment by a clinician or team with core competencies in the care of acutely ill patients; care in an environment with monitoring facilities."},
		{Result{Score: 7}, "continuous", "Emergency response: registered nurse to inform the medical team caring for the patient immediately, at least at specialist registrar level; emergency assessment by a team with critical care competencies, including advanced airway management skills; consider transfer to a level 2 or 3 care facility (HDU or ICU); care in an environment with monitoring facilities."},
		{Result{Score: 20, RedScore: true}, "continuous", "Emergency response: registered nurse to inform the medical team caring for the patient immediately, at least at specialist registrar level; emergency assessment by a team with critical care competencies, including advanced airway management skills; consider transfer to a level 2 or 3 care facility (HDU or ICU); care in an environment with monitoring facilities."},
	}
	for _, c := range cases {
		if got := c.r.Monitoring(); got != c.monitoring {
			t.Errorf("score %d red %v: monitoring %q, want %q", c.r.Score, c.r.RedScore, got, c.monitoring)
		}
		if got := c.r.Response(); got != c.response {
			t.Errorf("score %d red %v: response %q, want %q", c.r.Score, c.r.RedScore, got, c.response)
		}
	}
}

// TestRegressionPublicMistakes names errors found in published NEWS2
// calculators and charts, so that none of them creeps in here.
func TestRegressionPublicMistakes(t *testing.T) {
	score := func(o Observations) Result { return Score(o) }
	with := func(scale Scale, kv ...float64) Observations {
		var o Observations
		o.Scale = scale
		for i := 0; i < len(kv); i += 2 {
			o.Set(Parameter(kv[i]), kv[i+1])
		}
		return o
	}
	t.Run("scale 2 on air scores 93% and above as 0, not 1/2/3", func(t *testing.T) {
		for _, v := range []float64{93, 94, 95, 96, 97, 100} {
			if s := score(with(Scale2, float64(SpO2), v, float64(SupplementalOxygen), 0)).Subscores[SpO2]; s != 0 {
				t.Errorf("SpO2 %g on air, Scale 2: %d", v, s)
			}
		}
	})
	t.Run("scale 2 88-92% scores 0 on oxygen too", func(t *testing.T) {
		for v := 88.0; v <= 92; v++ {
			if s := score(with(Scale2, float64(SpO2), v, float64(SupplementalOxygen), 1)).Subscores[SpO2]; s != 0 {
				t.Errorf("SpO2 %g on oxygen, Scale 2: %d", v, s)
			}
		}
	})
	t.Run("red score band is not missing: a lone 3 is low-medium", func(t *testing.T) {
		r := score(with(Scale1, float64(RespiratoryRate), 25))
		if r.Risk != LowMedium || r.Monitoring() != "hourly" {
			t.Errorf("got %v, %s", r.Risk, r.Monitoring())
		}
	})
	t.Run("38.05 °C rounds to 38.1 despite binary 38.0499…", func(t *testing.T) {
		if s := score(with(Scale1, float64(Temperature), 38.05)).Subscores[Temperature]; s != 1 {
			t.Errorf("got %d", s)
		}
	})
	t.Run("systolic 220 scores 3", func(t *testing.T) {
		if s := score(with(Scale1, float64(SystolicBP), 220)).Subscores[SystolicBP]; s != 3 {
			t.Errorf("got %d", s)
		}
	})
	t.Run("heart rate 131 scores 3", func(t *testing.T) {
		if s := score(with(Scale1, float64(HeartRate), 131)).Subscores[HeartRate]; s != 3 {
			t.Errorf("got %d", s)
		}
	})
	t.Run("temperature 39.1 scores 2, not 3", func(t *testing.T) {
		if s := score(with(Scale1, float64(Temperature), 39.1)).Subscores[Temperature]; s != 2 {
			t.Errorf("got %d", s)
		}
	})
	t.Run("supplemental oxygen scores 2, not 1", func(t *testing.T) {
		if s := score(with(Scale1, float64(SupplementalOxygen), 1)).Subscores[SupplementalOxygen]; s != 2 {
			t.Errorf("got %d", s)
		}
	})
	t.Run("new confusion scores 3 like V, P, U", func(t *testing.T) {
		if s := score(with(Scale1, float64(Consciousness), float64(vward.Confused))).Subscores[Consciousness]; s != 3 {
			t.Errorf("got %d", s)
		}
	})
	t.Run("temperature 35.0 scores 3 (≤35.0, not <35)", func(t *testing.T) {
		if s := score(with(Scale1, float64(Temperature), 35.0)).Subscores[Temperature]; s != 3 {
			t.Errorf("got %d", s)
		}
	})
	t.Run("respiratory rate 21-24 scores 2 and there is no 1 above 20", func(t *testing.T) {
		if s := score(with(Scale1, float64(RespiratoryRate), 21)).Subscores[RespiratoryRate]; s != 2 {
			t.Errorf("got %d", s)
		}
	})
	t.Run("scale 1 SpO2 does not depend on oxygen", func(t *testing.T) {
		a := score(with(Scale1, float64(SpO2), 98, float64(SupplementalOxygen), 1)).Subscores[SpO2]
		b := score(with(Scale1, float64(SpO2), 98, float64(SupplementalOxygen), 0)).Subscores[SpO2]
		if a != 0 || b != 0 {
			t.Errorf("got %d on oxygen, %d on air", a, b)
		}
	})
}

func TestRiskText(t *testing.T) {
	for r, want := range map[Risk]string{Low: "low", LowMedium: "low-medium", Medium: "medium", High: "high"} {
		if r.String() != want {
			t.Errorf("%d: String %q, want %q", int(r), r.String(), want)
		}
		text, err := r.MarshalText()
		if err != nil || string(text) != want {
			t.Errorf("%d: MarshalText %q, %v", int(r), text, err)
		}
		var back Risk
		if err := back.UnmarshalText(text); err != nil || back != r {
			t.Errorf("UnmarshalText(%q) = %v, %v", text, back, err)
		}
	}
	if _, err := Risk(4).MarshalText(); err == nil {
		t.Error("MarshalText(4) succeeded")
	}
	if Risk(-1).String() != "Risk(-1)" {
		t.Errorf("String(-1) = %q", Risk(-1).String())
	}
	var r Risk
	if err := r.UnmarshalText([]byte("lowmedium")); err == nil {
		t.Error(`UnmarshalText("lowmedium") succeeded`)
	}
}

func TestScoreDoesNotAllocate(t *testing.T) {
	o := normal()
	o.Scale = Scale2
	o.Set(Temperature, 38.05)
	var r Result
	allocs := testing.AllocsPerRun(1000, func() { r = Score(o) })
	if allocs != 0 {
		t.Errorf("Score allocates %v times per call", allocs)
	}
	if r.Score != 1 {
		t.Errorf("score %d, want 1", r.Score)
	}
}

var sink Result

func BenchmarkScore(b *testing.B) {
	o := normal()
	o.Set(Temperature, 38.05)
	o.Set(HeartRate, 131)
	b.ReportAllocs()
	for b.Loop() {
		sink = Score(o)
	}
}
