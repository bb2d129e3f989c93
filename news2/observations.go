package news2

import (
	"fmt"
	"math"
	"strconv"
)

// Scale is the SpO2 scoring scale. Scale 2 is for patients with hypercapnic
// respiratory failure whose clinician has prescribed a target of 88–92%; it
// is a prescription, so it travels with the observations rather than being
// inferred from them.
type Scale int

// The two SpO2 scales. The zero Scale scores as Scale1, so an Observations
// built without thought gets the default chart.
const (
	Scale1 Scale = 1
	Scale2 Scale = 2
)

// Observations is the input of one score: the latest raw (unrounded) value of
// each parameter that is present. Booleans are 0 or 1 and consciousness is a
// vward.Level, as in vward.Reading. It is a plain value: copying it copies the
// observations.
type Observations struct {
	// Scale is the SpO2 scale prescribed for the patient; zero means Scale1.
	Scale Scale

	values  [NumParameters]float64
	present ParamSet
}

// Set records the raw value of p, replacing any earlier one. Values outside
// the seven parameters are ignored so that Score can never index past them.
func (o *Observations) Set(p Parameter, v float64) {
	if !p.valid() {
		return
	}
	o.values[p] = v
	o.present = o.present.with(p)
}

// Has reports whether a value of p is present.
func (o Observations) Has(p Parameter) bool { return o.present.Has(p) }

// Value returns the raw value of p and whether it is present.
func (o Observations) Value(p Parameter) (float64, bool) {
	if !o.present.Has(p) {
		return 0, false
	}
	return o.values[p], true
}

// Present returns the set of parameters that have a value.
func (o Observations) Present() ParamSet { return o.present }

// ValueError reports a value Validate rejects. Ingest can use Parameter to
// name the reading in a dead letter.
type ValueError struct {
	Parameter Parameter
	Value     float64
	Problem   string // e.g. "is outside 0–100"
}

// Error reads like "spo2 105 is outside 0–100".
func (e *ValueError) Error() string {
	return e.Parameter.String() + " " + strconv.FormatFloat(e.Value, 'g', -1, 64) + " " + e.Problem
}

// ScaleError reports an SpO2 scale other than 1 or 2.
type ScaleError struct{ Scale Scale }

func (e *ScaleError) Error() string {
	return fmt.Sprintf("spo2 scale %d is not 1 or 2", int(e.Scale))
}

// Validate checks that every present value is one a patient can have, and
// that the scale is 1 or 2 (or unset). It returns the first problem in chart
// order as a *ValueError or *ScaleError. It checks raw values: a pulse
// oximeter cannot report 100.3%, even though it would round to 100.
func (o Observations) Validate() error {
	switch o.Scale {
	case 0, Scale1, Scale2:
	default:
		return &ScaleError{Scale: o.Scale}
	}
	for p := range NumParameters {
		if !o.present.Has(p) {
			continue
		}
		if problem := checkValue(p, o.values[p]); problem != "" {
			return &ValueError{Parameter: p, Value: o.values[p], Problem: problem}
		}
	}
	return nil
}

func checkValue(p Parameter, v float64) string {
	switch {
	case math.IsNaN(v):
		return "is not a number"
	case math.IsInf(v, 0):
		return "is not finite"
	}
	if p == SupplementalOxygen && v != 0 && v != 1 {
		return "is not 0 (air) or 1 (oxygen)"
	}
	// The physiological ranges are the domain's, shared with ingest, so a
	// value ingest stores is always one Validate accepts. They reject what
	// no patient can have (98.6 °C is Fahrenheit), never a merely abnormal
	// value: docs/news2.md gives the reasons for each bound.
	if l := p.Kind().PossibleRange(); !l.Contains(v) {
		return "is outside " + strconv.FormatFloat(l.Min, 'g', -1, 64) + "–" + strconv.FormatFloat(l.Max, 'g', -1, 64)
	}
	if p == Consciousness && v != math.Trunc(v) {
		return "is not an ACVPU level (a whole number 0–4)"
	}
	return ""
}
