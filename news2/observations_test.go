package news2

import (
	"errors"
	"math"
	"testing"

	"github.com/vward/vward"
)

func TestObservationsSetHasValue(t *testing.T) {
	var o Observations
	if o.Has(SpO2) || o.Present() != 0 {
		t.Fatal("zero Observations has a value")
	}
	o.Set(SpO2, 94.6)
	o.Set(SpO2, 95.4) // a later Set replaces
	if v, ok := o.Value(SpO2); !ok || v != 95.4 {
		t.Errorf("Value(spo2) = %v, %v", v, ok)
	}
	if _, ok := o.Value(HeartRate); ok {
		t.Error("Value(heart_rate) present")
	}
	o.Set(NumParameters, 1)
	o.Set(-1, 1)
	if o.Present() != 1<<SpO2 {
		t.Errorf("present %08b after setting parameters outside the seven", o.Present())
	}
	copied := o
	copied.Set(HeartRate, 80)
	if o.Has(HeartRate) {
		t.Error("Observations is not a value type: a copy's Set changed the original")
	}
}

func TestValidate(t *testing.T) {
	ok := []struct {
		p Parameter
		v float64
	}{
		{RespiratoryRate, 0}, {RespiratoryRate, 80}, {RespiratoryRate, 16.4},
		{SpO2, 0}, {SpO2, 100},
		{SupplementalOxygen, 0}, {SupplementalOxygen, 1},
		{SystolicBP, 20}, {SystolicBP, 300},
		{HeartRate, 0}, {HeartRate, 300},
		{Consciousness, 0}, {Consciousness, 4},
		{Temperature, 25}, {Temperature, 45}, {Temperature, 38.05},
	}
	for _, c := range ok {
		if err := only(c.p, c.v).Validate(); err != nil {
			t.Errorf("%v %g: %v", c.p, c.v, err)
		}
	}
	bad := []struct {
		p    Parameter
		v    float64
		want string
	}{
		{RespiratoryRate, -1, "respiratory_rate -1 is outside 0–80"},
		{RespiratoryRate, 80.5, "respiratory_rate 80.5 is outside 0–80"},
		{SpO2, 105, "spo2 105 is outside 0–100"},
		{SpO2, 100.3, "spo2 100.3 is outside 0–100"},
		{SpO2, -0.1, "spo2 -0.1 is outside 0–100"},
		{SupplementalOxygen, 0.5, "supplemental_oxygen 0.5 is not 0 (air) or 1 (oxygen)"},
		{SupplementalOxygen, 2, "supplemental_oxygen 2 is not 0 (air) or 1 (oxygen)"},
		{SystolicBP, 19, "systolic_bp 19 is outside 20–300"},
		{SystolicBP, 301, "systolic_bp 301 is outside 20–300"},
		{HeartRate, 301, "heart_rate 301 is outside 0–300"},
		{HeartRate, -5, "heart_rate -5 is outside 0–300"},
		{Consciousness, 5, "consciousness 5 is outside 0–4"},
		{Consciousness, -1, "consciousness -1 is outside 0–4"},
		{Consciousness, 1.5, "consciousness 1.5 is not an ACVPU level (a whole number 0–4)"},
		{Temperature, 24.9, "temperature 24.9 is outside 25–45"},
		{Temperature, 45.1, "temperature 45.1 is outside 25–45"},
		{Temperature, 98.6, "temperature 98.6 is outside 25–45"}, // Fahrenheit
		{HeartRate, math.NaN(), "heart_rate NaN is not a number"},
		{Temperature, math.Inf(1), "temperature +Inf is not finite"},
		{SpO2, math.Inf(-1), "spo2 -Inf is not finite"},
	}
	for _, c := range bad {
		err := only(c.p, c.v).Validate()
		if err == nil {
			t.Errorf("%v %g: accepted", c.p, c.v)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%v %g: error %q, want %q", c.p, c.v, err, c.want)
		}
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Parameter != c.p {
			t.Errorf("%v %g: error %#v is not a *ValueError naming the parameter", c.p, c.v, err)
		}
	}
}

func TestValidateScale(t *testing.T) {
	for _, s := range []Scale{0, Scale1, Scale2} {
		o := normal()
		o.Scale = s
		if err := o.Validate(); err != nil {
			t.Errorf("scale %d: %v", s, err)
		}
	}
	for _, s := range []Scale{-1, 3} {
		o := normal()
		o.Scale = s
		err := o.Validate()
		var se *ScaleError
		if !errors.As(err, &se) || se.Scale != s {
			t.Errorf("scale %d: error %v, want a *ScaleError", s, err)
		}
	}
	if err := (Observations{Scale: 3}).Validate(); err == nil || err.Error() != "spo2 scale 3 is not 1 or 2" {
		t.Errorf("error %v", err)
	}
}

func TestValidateReportsFirstInChartOrder(t *testing.T) {
	o := normal()
	o.Set(Temperature, 100)
	o.Set(SpO2, 101)
	var ve *ValueError
	if err := o.Validate(); !errors.As(err, &ve) || ve.Parameter != SpO2 {
		t.Errorf("error %v, want the spo2 one", err)
	}
}

func TestParameterNames(t *testing.T) {
	want := []string{"respiratory_rate", "spo2", "supplemental_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature"}
	for p := range NumParameters {
		if p.String() != want[p] {
			t.Errorf("%d: String %q, want %q", int(p), p.String(), want[p])
		}
		if string(p.Kind()) != want[p] {
			t.Errorf("%d: Kind %q, want %q", int(p), p.Kind(), want[p])
		}
		got, ok := ParameterOf(vward.ReadingKind(want[p]))
		if !ok || got != p {
			t.Errorf("ParameterOf(%q) = %v, %v", want[p], got, ok)
		}
		text, err := p.MarshalText()
		if err != nil || string(text) != want[p] {
			t.Errorf("%d: MarshalText %q, %v", int(p), text, err)
		}
		var back Parameter
		if err := back.UnmarshalText(text); err != nil || back != p {
			t.Errorf("UnmarshalText(%q) = %v, %v", text, back, err)
		}
	}
	for _, k := range []vward.ReadingKind{vward.DiastolicBP, "weight", "", "SpO2"} {
		if p, ok := ParameterOf(k); ok {
			t.Errorf("ParameterOf(%q) = %v, true", k, p)
		}
	}
	if NumParameters.String() != "Parameter(7)" || NumParameters.Kind() != "" {
		t.Errorf("NumParameters: %q, %q", NumParameters.String(), NumParameters.Kind())
	}
	if _, err := NumParameters.MarshalText(); err == nil {
		t.Error("NumParameters.MarshalText succeeded")
	}
	var p Parameter
	if err := p.UnmarshalText([]byte("diastolic_bp")); err == nil {
		t.Error(`UnmarshalText("diastolic_bp") succeeded`)
	}
	// Every kind NEWS2 scores is a kind device protocol v1 knows.
	for p := range NumParameters {
		if !p.Kind().Known() {
			t.Errorf("%v is not a known reading kind", p)
		}
	}
}

func TestParamSet(t *testing.T) {
	var s ParamSet
	s = s.with(SpO2).with(Temperature)
	for p := range NumParameters {
		if s.Has(p) != (p == SpO2 || p == Temperature) {
			t.Errorf("Has(%v) = %v", p, s.Has(p))
		}
	}
	if s.Has(-1) || s.Has(NumParameters) || allParams.Has(NumParameters) {
		t.Error("Has reports a parameter outside the seven")
	}
}
