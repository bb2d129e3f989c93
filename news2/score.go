package news2

import (
	"fmt"
	"math"
)

// Risk is the NEWS2 clinical risk band.
type Risk int

// The risk bands of the RCP chart, lowest first. LowMedium is the band of a
// red score: a 3 in any single parameter with an aggregate below 5.
const (
	Low Risk = iota
	LowMedium
	Medium
	High
)

var riskNames = [...]string{"low", "low-medium", "medium", "high"}

// String returns "low", "low-medium", "medium" or "high".
func (r Risk) String() string {
	if r < 0 || int(r) >= len(riskNames) {
		return fmt.Sprintf("Risk(%d)", int(r))
	}
	return riskNames[r]
}

// MarshalText encodes the band by name, so that JSON shows "low-medium".
func (r Risk) MarshalText() ([]byte, error) {
	if r < 0 || int(r) >= len(riskNames) {
		return nil, fmt.Errorf("marshal NEWS2 risk: %d is not a band", int(r))
	}
	return []byte(riskNames[r]), nil
}

// UnmarshalText decodes a band name as String writes it.
func (r *Risk) UnmarshalText(text []byte) error {
	for i, name := range riskNames {
		if string(text) == name {
			*r = Risk(i)
			return nil
		}
	}
	return fmt.Errorf("unmarshal NEWS2 risk: %q is not one of low, low-medium, medium, high", text)
}

// Result is a NEWS2 score. A Result with Complete false was scored from a
// partial set: the parameters not in Present counted 0, so Score is the least
// the full score could be, and it must be shown as partial, never as a NEWS2.
type Result struct {
	Score    int  // aggregate, 0–20
	Risk     Risk // band from Score and RedScore
	RedScore bool // some parameter scored 3, whatever the band
	Complete bool // all seven parameters were present

	// Subscores holds each parameter's score; it is 0 where not present.
	Subscores [NumParameters]int
	// Present is the set of parameters that were scored.
	Present ParamSet
}

// Has reports whether p was present and scored.
func (r Result) Has(p Parameter) bool { return r.Present.Has(p) }

// Missing lists, in chart order, the parameters that were not scored. It is
// empty, not nil, for a complete result so that JSON shows [].
func (r Result) Missing() []Parameter {
	missing := make([]Parameter, 0, NumParameters)
	for p := range NumParameters {
		if !r.Present.Has(p) {
			missing = append(missing, p)
		}
	}
	return missing
}

// Monitoring returns the RCP minimum frequency of monitoring for the result:
// "12-hourly", "4–6-hourly", "hourly" or "continuous".
func (r Result) Monitoring() string {
	switch {
	case r.Score >= 7:
		return "continuous"
	case r.Score >= 5 || r.RedScore:
		return "hourly"
	case r.Score >= 1:
		return "4–6-hourly"
	}
	return "12-hourly"
}

// Response returns the clinical response the RCP chart sets for the result's
// trigger threshold, abridged but in the chart's terms.
func (r Result) Response() string {
	switch {
	case r.Score >= 7:
		return "Emergency response: registered nurse to inform the medical team caring for the patient immediately, at least at specialist registrar level; " +
			"emergency assessment by a team with critical care competencies, including advanced airway management skills; " +
			"consider transfer to a level 2 or 3 care facility (HDU or ICU); care in an environment with monitoring facilities."
	case r.Score >= 5:
		return "Urgent response: registered nurse to inform the medical team caring for the patient immediately and request urgent assessment " +
			"by a clinician or team with core competencies in the care of acutely ill patients; care in an environment with monitoring facilities."
	case r.RedScore:
		return "Registered nurse to inform the medical team caring for the patient, who will review and decide whether escalation of care is necessary."
	case r.Score >= 1:
		return "Registered nurse to assess the patient and decide whether increased frequency of monitoring and/or escalation of care is required."
	}
	return "Continue routine NEWS monitoring."
}

// Score scores a set of observations by the RCP NEWS2 chart, after rounding
// each value with Round. It scores whatever it is given; call Validate first
// to refuse values no patient can have. A NaN counts as not present, since it
// is no measurement and any band it fell into would be an accident.
//
// Score does not allocate.
func Score(o Observations) Result {
	var r Result
	for p := range NumParameters {
		if o.present.Has(p) && !math.IsNaN(o.values[p]) {
			r.Present = r.Present.with(p)
		}
	}
	// On Scale 2 the SpO2 score depends on oxygen; unknown oxygen status
	// scores as air, keeping a partial score the least the full one could be
	// (docs/news2.md, "Scale 2 with oxygen status unknown").
	onOxygen := r.Present.Has(SupplementalOxygen) && Round(SupplementalOxygen, o.values[SupplementalOxygen]) != 0
	for p := range NumParameters {
		if !r.Present.Has(p) {
			continue
		}
		s := subscore(p, Round(p, o.values[p]), o.Scale, onOxygen)
		r.Subscores[p] = s
		r.Score += s
		if s == 3 {
			r.RedScore = true
		}
	}
	r.Complete = r.Present == allParams
	switch {
	case r.Score >= 7:
		r.Risk = High
	case r.Score >= 5:
		r.Risk = Medium
	case r.RedScore:
		r.Risk = LowMedium
	default:
		r.Risk = Low
	}
	return r
}

// subscore scores one rounded value. Each band is written as "at most the
// top of the band", so that the thresholds read exactly as the chart prints
// them and a value between two printed bands cannot occur after rounding.
func subscore(p Parameter, v float64, scale Scale, onOxygen bool) int {
	switch p {
	case RespiratoryRate:
		switch {
		case v <= 8:
			return 3
		case v <= 11:
			return 1
		case v <= 20:
			return 0
		case v <= 24:
			return 2
		}
		return 3
	case SpO2:
		if scale == Scale2 {
			return spo2Scale2(v, onOxygen)
		}
		switch {
		case v <= 91:
			return 3
		case v <= 93:
			return 2
		case v <= 95:
			return 1
		}
		return 0
	case SupplementalOxygen:
		if v != 0 {
			return 2
		}
		return 0
	case SystolicBP:
		switch {
		case v <= 90:
			return 3
		case v <= 100:
			return 2
		case v <= 110:
			return 1
		case v <= 219:
			return 0
		}
		return 3
	case HeartRate:
		switch {
		case v <= 40:
			return 3
		case v <= 50:
			return 1
		case v <= 90:
			return 0
		case v <= 110:
			return 1
		case v <= 130:
			return 2
		}
		return 3
	case Consciousness:
		// Anything but Alert — new confusion, voice, pain, unresponsive, or a
		// level no one defined — is the red score.
		if v != 0 {
			return 3
		}
		return 0
	case Temperature:
		switch {
		case v <= 35.0:
			return 3
		case v <= 36.0:
			return 1
		case v <= 38.0:
			return 0
		case v <= 39.0:
			return 1
		}
		return 2
	}
	return 0
}

// spo2Scale2 scores SpO2 on Scale 2. Up to 92% oxygen makes no difference;
// from 93% a patient on air scores 0 — the target range is a ceiling only for
// oxygen given, not for the patient's own lungs — while on oxygen 93% and
// above means too much oxygen for a patient at risk of hypercapnia.
func spo2Scale2(v float64, onOxygen bool) int {
	switch {
	case v <= 83:
		return 3
	case v <= 85:
		return 2
	case v <= 87:
		return 1
	case v <= 92 || !onOxygen:
		return 0
	case v <= 94:
		return 1
	case v <= 96:
		return 2
	}
	return 3
}
