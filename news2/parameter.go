// Package news2 scores the National Early Warning Score 2 (Royal College of
// Physicians, 2017) from a set of observations. It is pure: no I/O, no
// goroutines, no clocks (callers pass the time), and Score does not allocate,
// so the alerting path can score every reading on receipt.
//
// The chart, the rounding rule, the Scale 2 rules and the choices made where
// the chart is silent are written up in docs/news2.md; read that before
// changing a band.
package news2

import (
	"fmt"

	"github.com/vward/vward"
)

// Parameter is one of the seven physiological parameters NEWS2 scores.
type Parameter int

// The scored parameters, in the order of the RCP chart. NumParameters is a
// count, not a parameter.
const (
	RespiratoryRate Parameter = iota
	SpO2
	SupplementalOxygen
	SystolicBP
	HeartRate
	Consciousness
	Temperature
	NumParameters
)

// kinds maps each parameter to its device protocol v1 reading kind; the
// parameter's name is the kind's name so that the two never drift apart.
var kinds = [NumParameters]vward.ReadingKind{
	RespiratoryRate:    vward.RespiratoryRate,
	SpO2:               vward.SpO2,
	SupplementalOxygen: vward.SupplementalOxygen,
	SystolicBP:         vward.SystolicBP,
	HeartRate:          vward.HeartRate,
	Consciousness:      vward.Consciousness,
	Temperature:        vward.Temperature,
}

func (p Parameter) valid() bool { return p >= 0 && p < NumParameters }

// String returns the parameter's name, which is also its reading kind:
// "respiratory_rate", "spo2", "supplemental_oxygen", "systolic_bp",
// "heart_rate", "consciousness", "temperature".
func (p Parameter) String() string {
	if !p.valid() {
		return fmt.Sprintf("Parameter(%d)", int(p))
	}
	return string(kinds[p])
}

// Kind returns the reading kind that carries the parameter, or "" for a
// value outside the seven.
func (p Parameter) Kind() vward.ReadingKind {
	if !p.valid() {
		return ""
	}
	return kinds[p]
}

// MarshalText encodes the parameter by name, so that JSON shows names.
func (p Parameter) MarshalText() ([]byte, error) {
	if !p.valid() {
		return nil, fmt.Errorf("marshal NEWS2 parameter: %d is not one of the seven", int(p))
	}
	return []byte(kinds[p]), nil
}

// UnmarshalText decodes a parameter name as String writes it.
func (p *Parameter) UnmarshalText(text []byte) error {
	q, ok := ParameterOf(vward.ReadingKind(text))
	if !ok {
		return fmt.Errorf("unmarshal NEWS2 parameter: %q is not one of the seven scored parameters", text)
	}
	*p = q
	return nil
}

// ParameterOf returns the parameter a reading kind feeds. Kinds NEWS2 does
// not score, such as diastolic_bp, report false.
func ParameterOf(k vward.ReadingKind) (Parameter, bool) {
	for p, kind := range kinds {
		if kind == k {
			return Parameter(p), true
		}
	}
	return 0, false
}

// ParamSet is a set of parameters held as a bitmask, so that Observations and
// Result stay small comparable values and presence tests never allocate.
type ParamSet uint8

// allParams is the set of all seven parameters: a complete observation set.
const allParams ParamSet = 1<<NumParameters - 1

// Has reports whether p is in the set.
func (s ParamSet) Has(p Parameter) bool {
	return p.valid() && s&(1<<p) != 0
}

func (s ParamSet) with(p Parameter) ParamSet { return s | 1<<p }

func (s ParamSet) without(p Parameter) ParamSet { return s &^ (1 << p) }
