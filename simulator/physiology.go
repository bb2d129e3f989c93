// Package simulator replays virtual patients through real devices' eyes:
// physiology that drifts, deteriorates or recovers, measured by devices that
// publish device protocol v1 over MQTT with their own credentials, as a real
// fleet does — on a schedule or continuously, batched by gateways, offline
// and backfilling, resending, late, skewed, running flat, sometimes garbled.
//
// Everything a device sends is a pure function of the seed, the scenario and
// the clock's origin: generation never reads the wall clock or shares a
// random source between devices, so the same seed gives the same bytes
// however the goroutines that publish them are scheduled. docs/simulator.md
// describes the model and the scenario format.
package simulator

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/vward/vward"
)

// Vitals is a patient's physiological state at one moment.
type Vitals struct {
	RespiratoryRate float64
	SpO2            float64
	OnOxygen        bool
	SystolicBP      float64
	DiastolicBP     float64
	HeartRate       float64
	Consciousness   vward.Level
	Temperature     float64
	// Weight is in kg. It follows the day, not the hour: lightest in the
	// morning after voiding, up to about 0.8 kg heavier by the evening.
	Weight float64
	// IrregularPulse is set during atrial fibrillation: beat-to-beat
	// variation makes a device's pulse reading scatter widely.
	IrregularPulse bool
}

// Profile picks the population a random baseline is drawn from.
type Profile string

// Baseline profiles.
const (
	// Adult is a well adult at home.
	Adult Profile = "adult"
	// Frail is an older person living with frailty: a little cooler, a
	// little faster breathing, lower reserve.
	Frail Profile = "frail"
	// COPDProfile is a person with chronic obstructive pulmonary disease on
	// home oxygen, saturating 88–92% as prescribed for NEWS2 Scale 2.
	COPDProfile Profile = "copd"
)

// BaselineFor draws a person's usual vitals from a profile. The ranges sit
// inside NEWS2's zero bands (except oxygen for COPD), so that a stable
// patient's noise alone seldom scores and never reaches medium. Weight is
// drawn last, so that it did not move the other vitals' draws when added.
func BaselineFor(p Profile, rng *rand.Rand) Vitals {
	u := func(lo, hi float64) float64 { return lo + rng.Float64()*(hi-lo) }
	switch p {
	case Frail:
		v := Vitals{
			RespiratoryRate: u(14, 17), SpO2: u(96.5, 98), SystolicBP: u(122, 145),
			DiastolicBP: u(66, 80), HeartRate: u(64, 80), Temperature: u(36.5, 36.9),
		}
		v.Weight = u(48, 75)
		return v
	case COPDProfile:
		v := Vitals{
			RespiratoryRate: u(16, 18), SpO2: u(89.5, 91), OnOxygen: true, SystolicBP: u(124, 142),
			DiastolicBP: u(70, 82), HeartRate: u(72, 82), Temperature: u(36.6, 37.0),
		}
		v.Weight = u(55, 85)
		return v
	default:
		v := Vitals{
			RespiratoryRate: u(13, 16), SpO2: u(97, 98.5), SystolicBP: u(118, 140),
			DiastolicBP: u(70, 82), HeartRate: u(60, 78), Temperature: u(36.6, 37.0),
		}
		v.Weight = u(60, 95)
		return v
	}
}

// RandomBaseline draws a plausible well adult at home.
func RandomBaseline(rng *rand.Rand) Vitals { return BaselineFor(Adult, rng) }

// Trajectory is how a patient's state moves away from their baseline.
type Trajectory string

// Trajectories a virtual patient can follow. Each moves the vitals by a
// fixed profile scaled by the course's severity, which rises linearly from 0
// at Onset to 1 at Onset+Span (Recovery runs the other way).
const (
	Stable Trajectory = "stable"
	// Sepsis is a slow sepsis-like deterioration over hours: breathing,
	// pulse and temperature rise, blood pressure and saturation fall, and
	// late on (severity ≥ 0.85) the patient becomes newly confused.
	Sepsis Trajectory = "sepsis"
	// Recovery starts unwell (as after discharge from hospital) and
	// returns to baseline.
	Recovery Trajectory = "recovery"
	// COPDExacerbation is a flare of COPD: faster breathing, falling
	// saturation despite oxygen, a faster pulse and a mild fever.
	COPDExacerbation Trajectory = "copd_exacerbation"
	// AtrialFibrillation brings bursts of fast, irregular pulse (125–160)
	// with a small fall in blood pressure, each lasting 15–50 minutes, at a
	// random rate of BurstsPerDay between Onset and Onset+Span.
	AtrialFibrillation Trajectory = "af"
	// Hypotension is falling blood pressure (over-treatment, dehydration,
	// bleeding) with a compensating rise in pulse and breathing.
	Hypotension Trajectory = "hypotension"
	// FluidRetention is heart failure's early warning: weight rises by
	// Magnitude kg (default 1) over Span, days before breathlessness, so
	// that the other vitals stay where they were.
	FluidRetention Trajectory = "fluid_retention"
)

// Trajectories lists every trajectory, for validation and docs.
var Trajectories = []Trajectory{Stable, Sepsis, Recovery, COPDExacerbation, AtrialFibrillation, Hypotension, FluidRetention}

// MaxFluidGain bounds a fluid_retention course's magnitude, in kg: beyond
// it a patient is in hospital, not on a virtual ward.
const MaxFluidGain = 20.0

// dayToDay is how far a patient's weight wanders from one day to the next
// (food, fluid, bowels), in kg either way: the noise a heart failure team
// reads a trend through.
const dayToDay = 0.3

// delta is a change to vitals at full severity.
type delta struct {
	rr, spo2, sbp, dbp, hr, temp float64
}

// deltas are the trajectories' full-severity profiles. Recovery's is the
// unwell state the patient starts from.
var deltas = map[Trajectory]delta{
	Sepsis:           {rr: 14, spo2: -6, sbp: -45, dbp: -22, hr: 48, temp: 2.4},
	Recovery:         {rr: 7, spo2: -3, sbp: -10, dbp: -5, hr: 24, temp: 1.3},
	COPDExacerbation: {rr: 11, spo2: -6.5, sbp: 0, dbp: 0, hr: 28, temp: 0.9},
	Hypotension:      {rr: 4, spo2: 0, sbp: -50, dbp: -28, hr: 22, temp: 0},
}

// Course is one trajectory over a window of scenario time.
type Course struct {
	Kind  Trajectory `json:"kind"`
	Onset Duration   `json:"onset,omitempty"`
	// Span is how long the course takes to reach full severity; 0 means at
	// once. For AtrialFibrillation it is the window bursts fall in, 0
	// meaning until the end.
	Span Duration `json:"span,omitempty"`
	// Magnitude scales the profile; 0 means 1.
	Magnitude float64 `json:"magnitude,omitempty"`
	// BurstsPerDay is the mean rate of AF bursts; 0 means 8.
	BurstsPerDay float64 `json:"bursts_per_day,omitempty"`
}

// Severity is how far along the course is at t, from 0 to 1.
func (c Course) Severity(t time.Duration) float64 {
	on := c.Onset.D()
	if t < on {
		return 0
	}
	if c.Span <= 0 {
		return 1
	}
	return math.Min(1, float64(t-on)/float64(c.Span))
}

func (c Course) magnitude() float64 {
	if c.Magnitude == 0 {
		return 1
	}
	return c.Magnitude
}

// EventKind is something that happens to a patient at a moment.
type EventKind string

// Events.
const (
	// Fall is a fall at home: a stress response (pulse, breathing and blood
	// pressure up) that settles over the next hour or two. A device that
	// measures fall_event (a pendant, a wearable with fall detection)
	// sends a fall_event reading at it.
	Fall EventKind = "fall"
	// Confusion is new confusion (delirium): consciousness C, which NEWS2
	// scores 3, for For (0: until the end).
	Confusion EventKind = "confusion"
	// Questionnaire is a questionnaire answered at At on the patient's hub
	// (device protocol v1's soft_signs, version 1): what the patient or a
	// carer reports, that no sensor measures.
	Questionnaire EventKind = "questionnaire"
)

// EventKinds lists every event kind, for validation and docs.
var EventKinds = []EventKind{Fall, Confusion, Questionnaire}

// Event is something that happens to a patient at scenario time At.
type Event struct {
	Kind EventKind `json:"kind"`
	At   Duration  `json:"at"`
	For  Duration  `json:"for,omitempty"`
	// A questionnaire's answers, by question: true or false, or a whole
	// number on a scale question.
	Answers map[string]any `json:"answers,omitempty"`
	// AnsweredBy is who answered a questionnaire: patient, carer (the
	// default) or hub.
	AnsweredBy string `json:"answered_by,omitempty"`
	// Device sends a questionnaire; the patient's first hub by default.
	Device vward.DeviceID `json:"device,omitempty"`
}

// Patient is a virtual patient: a baseline, the courses and events the
// scenario gives them, and their own slow random drift. Build one with
// NewPatient; its state at any time is a pure function of that time.
type Patient struct {
	ID       vward.PatientID
	Baseline Vitals
	Courses  []Course
	Events   []Event
	// DayStart is the patient's time of day at scenario time 0; the
	// circadian rhythm follows it.
	DayStart time.Duration

	drift  [5]wave
	bursts []burst
	// days are the weight's day-to-day offsets, one per day of the
	// patient's calendar from the first.
	days []float64
}

// wave is one component of a patient's slow drift.
type wave struct{ amp, period, phase float64 }

type burst struct {
	from, to time.Duration
	rate     float64
}

// NewPatient prepares a patient: rng draws the patient's drift and the
// timing of any AF bursts up to end, and nothing else, so one patient's
// draws never shift another's.
func NewPatient(id vward.PatientID, baseline Vitals, courses []Course, events []Event, dayStart, end time.Duration, rng *rand.Rand) *Patient {
	p := &Patient{ID: id, Baseline: baseline, Courses: courses, Events: events, DayStart: dayStart}
	// Drift amplitudes: rr, hr, sbp, spo2, temp. Periods of 2–8 hours.
	amps := [5]float64{0.8, 3, 5, 0.4, 0.08}
	for i, a := range amps {
		p.drift[i] = wave{amp: a, period: float64(2*time.Hour) + rng.Float64()*float64(6*time.Hour), phase: rng.Float64() * 2 * math.Pi}
	}
	for _, c := range courses {
		if c.Kind != AtrialFibrillation {
			continue
		}
		perDay := c.BurstsPerDay
		if perDay <= 0 {
			perDay = 8
		}
		from, to := c.Onset.D(), end
		if c.Span > 0 {
			to = min(end, from+c.Span.D())
		}
		mean := float64(24*time.Hour) / perDay
		for t := from + time.Duration(rng.ExpFloat64()*mean); t < to; {
			length := 15*time.Minute + time.Duration(rng.Float64()*float64(35*time.Minute))
			p.bursts = append(p.bursts, burst{from: t, to: t + length, rate: 125 + rng.Float64()*35})
			t += length + time.Duration(rng.ExpFloat64()*mean)
		}
	}
	// Drawn after everything else, so that adding weight moved no other
	// draw.
	for range int((dayStart+end)/(24*time.Hour)) + 1 {
		p.days = append(p.days, (2*rng.Float64()-1)*dayToDay)
	}
	return p
}

// Bursts returns the AF bursts drawn for the patient, as scenario-time
// windows, for reports and tests.
func (p *Patient) Bursts() [][2]time.Duration {
	out := make([][2]time.Duration, len(p.bursts))
	for i, b := range p.bursts {
		out[i] = [2]time.Duration{b.from, b.to}
	}
	return out
}

// Truth is the patient's state at scenario time t, before any device
// measures it. Circadian variation follows the patient's time of day:
// temperature, pulse and blood pressure are lowest in the small hours and
// highest in the late afternoon.
func (p *Patient) Truth(t time.Duration) Vitals {
	v := p.Baseline
	day := (p.DayStart + t) % (24 * time.Hour)
	hour := day.Hours()
	circ := math.Cos((hour - 17) / 24 * 2 * math.Pi) // +1 at 17:00, −1 at 05:00
	v.Temperature += 0.25 * circ
	v.HeartRate += 4 * circ
	v.SystolicBP += 5 * circ
	v.RespiratoryRate += 0.7 * circ
	// Weight: lightest at 07:00, after the night and before breakfast,
	// 0.8 kg more by 19:00; and each day a little off the last.
	v.Weight += 0.4 * (1 - math.Cos((hour-7)/24*2*math.Pi))
	if d := int((p.DayStart + t) / (24 * time.Hour)); d >= 0 && d < len(p.days) {
		v.Weight += p.days[d]
	}

	ft := float64(t)
	d := func(i int) float64 {
		w := p.drift[i]
		if w.period == 0 {
			return 0
		}
		return w.amp * math.Sin(2*math.Pi*ft/w.period+w.phase)
	}
	v.RespiratoryRate += d(0)
	v.HeartRate += d(1)
	v.SystolicBP += d(2)
	v.DiastolicBP += d(2) / 2
	v.SpO2 += d(3)
	v.Temperature += d(4)

	for _, c := range p.Courses {
		s := c.Severity(t) * c.magnitude()
		switch c.Kind {
		case Recovery:
			s = (1 - c.Severity(t)) * c.magnitude()
		case AtrialFibrillation, Stable:
			continue
		case FluidRetention:
			v.Weight += s
			continue
		}
		dl := deltas[c.Kind]
		v.RespiratoryRate += dl.rr * s
		v.SpO2 += dl.spo2 * s
		v.SystolicBP += dl.sbp * s
		v.DiastolicBP += dl.dbp * s
		v.HeartRate += dl.hr * s
		v.Temperature += dl.temp * s
		if c.Kind == Sepsis && c.Severity(t) >= 0.85 {
			v.Consciousness = max(v.Consciousness, vward.Confused)
		}
	}
	for _, b := range p.bursts {
		if t >= b.from && t < b.to {
			v.HeartRate = max(v.HeartRate, b.rate)
			v.SystolicBP -= 10
			v.DiastolicBP -= 4
			v.IrregularPulse = true
		}
	}
	for _, e := range p.Events {
		at := e.At.D()
		if t < at {
			continue
		}
		switch e.Kind {
		case Fall:
			k := math.Exp(-float64(t-at) / float64(45*time.Minute))
			v.HeartRate += 22 * k
			v.RespiratoryRate += 5 * k
			v.SystolicBP += 15 * k
		case Confusion:
			if e.For <= 0 || t < at+e.For.D() {
				v.Consciousness = max(v.Consciousness, vward.Confused)
			}
		}
	}
	return v
}

// noise is one device's measurement error (standard deviations).
type noise struct{ rr, spo2, sbp, dbp, hr, temp, weight float64 }

var defaultNoise = noise{rr: 1, spo2: 0.7, sbp: 4, dbp: 3, hr: 2, temp: 0.1, weight: 0.05}

// measure reads one kind from the patient's state as a device reports it:
// with noise drawn from rng, rounded to the device's resolution and clamped
// to what a sensor can show. It always draws exactly one normal variate for
// numeric kinds (two for an irregular pulse), so a device's draws do not
// depend on the patient's state.
func measure(v Vitals, k vward.ReadingKind, n noise, rng *rand.Rand) any {
	switch k {
	case vward.RespiratoryRate:
		return clamp(math.Round(v.RespiratoryRate+rng.NormFloat64()*n.rr), 4, 60)
	case vward.SpO2:
		return clamp(math.Round(v.SpO2+rng.NormFloat64()*n.spo2), 70, 100)
	case vward.SupplementalOxygen:
		return v.OnOxygen
	case vward.SystolicBP:
		return clamp(math.Round(v.SystolicBP+rng.NormFloat64()*n.sbp), 50, 260)
	case vward.DiastolicBP:
		return clamp(math.Round(v.DiastolicBP+rng.NormFloat64()*n.dbp), 30, max(35, v.SystolicBP-10))
	case vward.HeartRate:
		hr := v.HeartRate + rng.NormFloat64()*n.hr
		irregular := rng.NormFloat64() * 8
		if v.IrregularPulse {
			hr += irregular
		}
		return clamp(math.Round(hr), 25, 220)
	case vward.Consciousness:
		return v.Consciousness.String()
	case vward.Temperature:
		return clamp(math.Round((v.Temperature+rng.NormFloat64()*n.temp)*10)/10, 33, 42)
	case vward.Weight:
		// Home scales show tenths of a kilogram.
		return clamp(math.Round((v.Weight+rng.NormFloat64()*n.weight)*10)/10, 1, 500)
	}
	return nil
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// Duration is a time.Duration that JSON spells as Go does ("90s", "2h30m").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes "2h30m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration; "0" is zero.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: use Go's form, like 90s, 45m or 2h30m", b)
	}
	*d = Duration(v)
	return nil
}

// ClockTime is a time of day ("08:00"), as time since midnight.
type ClockTime time.Duration

// MarshalText writes "08:00".
func (c ClockTime) MarshalText() ([]byte, error) {
	d := time.Duration(c)
	return fmt.Appendf(nil, "%02d:%02d", int(d.Hours()), int(d.Minutes())%60), nil
}

// UnmarshalText reads "HH:MM".
func (c *ClockTime) UnmarshalText(b []byte) error {
	var h, m int
	if n, err := fmt.Sscanf(string(b), "%d:%d", &h, &m); err != nil || n != 2 || h < 0 || h > 23 || m < 0 || m > 59 || len(b) != 5 {
		return fmt.Errorf("time of day %q: use HH:MM, like 08:00", b)
	}
	*c = ClockTime(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	return nil
}
