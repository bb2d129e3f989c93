// Package simulator replays virtual patients through real devices' eyes:
// physiology that drifts, deteriorates or recovers, measured by devices that
// publish device protocol v1 over MQTT with their own credentials, as a real
// fleet does. The same seed gives the same readings.
package simulator

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/vward/vward"
)

// Vitals is a patient's true physiological state at one moment.
type Vitals struct {
	RespiratoryRate float64
	SpO2            float64
	OnOxygen        bool
	SystolicBP      float64
	DiastolicBP     float64
	HeartRate       float64
	Consciousness   vward.Level
	Temperature     float64
}

// Trajectory is how a patient's state moves away from their baseline.
type Trajectory string

// Trajectories a virtual patient can follow.
const (
	Stable Trajectory = "stable"
	// Sepsis is a slow sepsis-like deterioration: breathing, pulse and
	// temperature rise, blood pressure and saturation fall, and late on
	// the patient becomes confused.
	Sepsis Trajectory = "sepsis"
	// Recovery starts unwell and returns towards baseline.
	Recovery Trajectory = "recovery"
)

// Patient is a virtual patient.
type Patient struct {
	ID         vward.PatientID
	Baseline   Vitals
	Trajectory Trajectory
	// Onset is when the trajectory starts, and Span how long it takes to
	// run its course, in simulated time from the start of the run.
	Onset, Span time.Duration
}

// Severity is how far along its trajectory the patient is at elapsed time,
// from 0 (baseline) to 1 (the trajectory's worst or best).
func (p Patient) Severity(elapsed time.Duration) float64 {
	if p.Span <= 0 {
		return 0
	}
	s := float64(elapsed-p.Onset) / float64(p.Span)
	return math.Max(0, math.Min(1, s))
}

// At returns the patient's vitals at elapsed simulated time, measured with
// noise drawn from rng. Circadian variation lowers temperature and pulse in
// the small hours, as in real patients.
func (p Patient) At(elapsed time.Duration, clock time.Time, rng *rand.Rand) Vitals {
	v := p.Baseline
	hour := float64(clock.Hour()) + float64(clock.Minute())/60
	circ := math.Cos((hour - 16) / 24 * 2 * math.Pi) // peak late afternoon
	v.Temperature += 0.3 * circ
	v.HeartRate += 4 * circ

	s := p.Severity(elapsed)
	switch p.Trajectory {
	case Sepsis:
		v.RespiratoryRate += 14 * s
		v.HeartRate += 50 * s
		v.Temperature += 2.6 * s
		v.SystolicBP -= 40 * s
		v.DiastolicBP -= 20 * s
		v.SpO2 -= 7 * s
		if s > 0.85 {
			v.Consciousness = vward.Confused
		}
	case Recovery:
		r := 1 - s
		v.RespiratoryRate += 8 * r
		v.HeartRate += 30 * r
		v.Temperature += 1.4 * r
		v.SpO2 -= 4 * r
	}
	v.RespiratoryRate += rng.NormFloat64() * 0.8
	v.HeartRate += rng.NormFloat64() * 2
	v.SystolicBP += rng.NormFloat64() * 4
	v.DiastolicBP += rng.NormFloat64() * 3
	v.SpO2 += rng.NormFloat64() * 0.7
	v.Temperature += rng.NormFloat64() * 0.1

	v.RespiratoryRate = clamp(math.Round(v.RespiratoryRate), 4, 60)
	v.HeartRate = clamp(math.Round(v.HeartRate), 25, 220)
	v.SystolicBP = clamp(math.Round(v.SystolicBP), 50, 260)
	v.DiastolicBP = clamp(math.Round(v.DiastolicBP), 30, v.SystolicBP-10)
	v.SpO2 = clamp(math.Round(v.SpO2), 70, 100)
	v.Temperature = clamp(math.Round(v.Temperature*10)/10, 33, 42)
	return v
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// RandomBaseline draws a plausible well adult at home.
func RandomBaseline(rng *rand.Rand) Vitals {
	return Vitals{
		RespiratoryRate: 14 + rng.Float64()*4,
		SpO2:            96 + rng.Float64()*3,
		SystolicBP:      118 + rng.Float64()*25,
		DiastolicBP:     70 + rng.Float64()*12,
		HeartRate:       62 + rng.Float64()*18,
		Consciousness:   vward.Alert,
		Temperature:     36.5 + rng.Float64()*0.5,
	}
}
