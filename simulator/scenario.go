package simulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"time"

	"github.com/vward/vward"
)

// Scenario is a scenario file: the patients of a stretch of ward life,
// their devices and faults, and the alerts the board should show.
// docs/simulator.md is the reference of the format.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Seed makes the run reproducible: the same seed, scenario and clock
	// origin give the same bytes.
	Seed uint64 `json:"seed"`
	// Duration is the scenario's length in simulated time.
	Duration Duration `json:"duration"`
	// Speed is simulated seconds per real second (default 1).
	Speed float64 `json:"speed,omitempty"`
	// Clock is "real" (default) or "simulated"; see ClockMode.
	Clock ClockMode `json:"clock,omitempty"`
	// StartsAt is the patients' time of day at scenario time 0, for the
	// circadian rhythm and spot checks at times of day (default 08:00).
	StartsAt *ClockTime `json:"starts_at,omitempty"`
	// Ward is the ward of patients that do not name one (default "sim").
	Ward     vward.WardID  `json:"ward,omitempty"`
	Patients []PatientSpec `json:"patients,omitempty"`
	Cohorts  []Cohort      `json:"cohorts,omitempty"`
	Outages  []Outage      `json:"outages,omitempty"`
	Expect   []Expectation `json:"expect,omitempty"`
	Allow    []Allowance   `json:"allow,omitempty"`
	// Notifications are what vward should deliver to people about the
	// patients' alerts, checked in its delivery logs (--expect).
	Notifications []NotificationExpectation `json:"notifications,omitempty"`
	// AckTimeout is the escalation timer per risk ("high": "30s") that the
	// vward under test must run with for the notification expectations to
	// hold: vward serve --ack-timeout high=30s.
	AckTimeout map[string]Duration `json:"ack_timeout,omitempty"`
}

// PatientSpec is a patient in a scenario.
type PatientSpec struct {
	ID   vward.PatientID `json:"id"`
	Name string          `json:"name,omitempty"`
	Ward vward.WardID    `json:"ward,omitempty"`
	// SpO2Scale is the NEWS2 SpO2 scale prescribed for the patient (1 or
	// 2); register it with the patient, vward scores with it.
	SpO2Scale int `json:"spo2_scale,omitempty"`
	// Profile draws the baseline (default adult); Baseline overrides parts.
	Profile      Profile       `json:"profile,omitempty"`
	Baseline     *BaselineSpec `json:"baseline,omitempty"`
	Trajectories []Course      `json:"trajectories,omitempty"`
	Events       []Event       `json:"events,omitempty"`
	Devices      []DeviceSpec  `json:"devices"`
	// CarePlan is put as the patient's care plan before the scenario
	// plays, through the board's REST API with the clinician's session.
	CarePlan *CarePlanSpec `json:"care_plan,omitempty"`
}

// BaselineSpec sets parts of a patient's baseline; what it leaves out is
// drawn from the profile.
type BaselineSpec struct {
	RespiratoryRate *float64 `json:"respiratory_rate,omitempty"`
	SpO2            *float64 `json:"spo2,omitempty"`
	OnOxygen        *bool    `json:"supplemental_oxygen,omitempty"`
	SystolicBP      *float64 `json:"systolic_bp,omitempty"`
	DiastolicBP     *float64 `json:"diastolic_bp,omitempty"`
	HeartRate       *float64 `json:"heart_rate,omitempty"`
	Consciousness   string   `json:"consciousness,omitempty"`
	Temperature     *float64 `json:"temperature,omitempty"`
	Weight          *float64 `json:"weight,omitempty"` // kg
}

// Cohort is Count patients made from one template: ids Prefix-001…, each
// device id the patient id and the device's id or kind ("storm-007-hub").
// Each patient draws their own baseline, drift and noise.
type Cohort struct {
	Count   int         `json:"count"`
	Prefix  string      `json:"prefix"`
	Patient PatientSpec `json:"patient"`
}

// Outage takes devices offline together, as a broadband or mobile network
// outage does; when it ends they all backfill at once. Devices and
// Patients are ids or prefixes ending in "*"; with neither, every device.
type Outage struct {
	Spell
	Devices  []string `json:"devices,omitempty"`
	Patients []string `json:"patients,omitempty"`
}

// Load reads a scenario file and checks it.
func Load(file string) (*Scenario, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	sc, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", file, err)
	}
	return sc, nil
}

// Parse decodes and checks a scenario. Unknown fields are errors: a typo
// in a fault rate must not silently run a scenario without the fault.
func Parse(b []byte) (*Scenario, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, err
	}
	if _, err := sc.Plan(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Plan is a scenario made concrete: cohorts expanded, ids and defaults
// filled in, and every patient's physiology drawn from the seed.
type Plan struct {
	Scenario *Scenario
	Patients []*PlanPatient
	byID     map[vward.PatientID]*PlanPatient
}

// PlanPatient is one patient of a Plan.
type PlanPatient struct {
	ID        vward.PatientID
	Name      string
	Ward      vward.WardID
	SpO2Scale int
	// CarePlan, when set, is put as the patient's care plan before the
	// run.
	CarePlan *CarePlanSpec
	Model    *Patient
	Devices  []DeviceSpec
	Outages  map[vward.DeviceID][]Spell
}

// DeviceRef names a device and its patient.
type DeviceRef struct {
	ID      vward.DeviceID
	Patient vward.PatientID
	Kind    DeviceKind
}

// Speed is the scenario's speed, 1 when unset.
func (sc *Scenario) speed() float64 {
	if sc.Speed <= 0 {
		return 1
	}
	return sc.Speed
}

func (sc *Scenario) clockMode() ClockMode {
	if sc.Clock == "" {
		return RealClock
	}
	return sc.Clock
}

// Clock returns the scenario's clock starting at origin, at speed (the
// scenario's own when 0).
func (sc *Scenario) NewClock(origin time.Time, speed float64) Clock {
	if speed <= 0 {
		speed = sc.speed()
	}
	return Clock{Mode: sc.clockMode(), Speed: speed, Origin: origin, Span: sc.Duration.D()}
}

func (sc *Scenario) dayStart() time.Duration {
	if sc.StartsAt == nil {
		return 8 * time.Hour
	}
	return time.Duration(*sc.StartsAt)
}

// Plan expands and checks the scenario.
func (sc *Scenario) Plan() (*Plan, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if sc.Name == "" {
		bad("name is required")
	}
	if sc.Duration <= 0 {
		bad("duration must be above 0, like \"8h\"")
	}
	if sc.Speed < 0 {
		bad("speed %g must be above 0", sc.Speed)
	}
	if err := sc.NewClock(time.Time{}, 0).Check(); err != nil {
		bad("%v", err)
	}
	ward := sc.Ward
	if ward == "" {
		ward = "sim"
	}
	specs := slices.Clone(sc.Patients)
	for i, c := range sc.Cohorts {
		if c.Count < 1 || c.Prefix == "" {
			bad("cohorts[%d]: count must be at least 1 and prefix set", i)
			continue
		}
		width := max(3, len(fmt.Sprint(c.Count)))
		for n := 1; n <= c.Count; n++ {
			p := c.Patient
			p.ID = vward.PatientID(fmt.Sprintf("%s-%0*d", c.Prefix, width, n))
			if p.Name == "" {
				p.Name = fmt.Sprintf("%s %d", c.Prefix, n)
			}
			p.Devices = slices.Clone(c.Patient.Devices)
			for j := range p.Devices {
				suffix := string(p.Devices[j].ID)
				if suffix == "" {
					suffix = string(p.Devices[j].Kind)
				}
				p.Devices[j].ID = vward.DeviceID(string(p.ID) + "-" + suffix)
			}
			specs = append(specs, p)
		}
	}
	plan := &Plan{Scenario: sc, byID: map[vward.PatientID]*PlanPatient{}}
	devices := map[vward.DeviceID]bool{}
	end := sc.Duration.D()
	for i, ps := range specs {
		where := fmt.Sprintf("patient %q", ps.ID)
		if err := ValidID(string(ps.ID)); err != nil {
			bad("patients[%d]: %v", i, err)
			continue
		}
		if plan.byID[ps.ID] != nil {
			bad("%s appears twice", where)
			continue
		}
		if ps.SpO2Scale != 0 && ps.SpO2Scale != 1 && ps.SpO2Scale != 2 {
			bad("%s: spo2_scale %d is not 1 or 2", where, ps.SpO2Scale)
		}
		profile := ps.Profile
		if profile == "" {
			profile = Adult
		}
		if !slices.Contains([]Profile{Adult, Frail, COPDProfile}, profile) {
			bad("%s: profile %q is not adult, frail or copd", where, profile)
		}
		for _, c := range ps.Trajectories {
			if !slices.Contains(Trajectories, c.Kind) {
				bad("%s: trajectory %q is not one of %v", where, c.Kind, Trajectories)
			}
			if c.Onset < 0 || c.Span < 0 || c.Magnitude < 0 {
				bad("%s: trajectory %s has a negative onset, span or magnitude", where, c.Kind)
			}
			if c.Kind == FluidRetention && c.Magnitude > MaxFluidGain {
				bad("%s: trajectory fluid_retention: magnitude %g kg is more than the %g kg a virtual ward would see; magnitude is the gain in kg", where, c.Magnitude, MaxFluidGain)
			}
		}
		for _, e := range ps.Events {
			if !slices.Contains(EventKinds, e.Kind) {
				bad("%s: event %q is not one of %v", where, e.Kind, EventKinds)
			}
			if e.Kind != Questionnaire && (e.Answers != nil || e.AnsweredBy != "" || e.Device != "") {
				bad("%s: event %s at %s: answers, answered_by and device are a questionnaire's", where, e.Kind, e.At.D())
			}
		}
		if len(ps.Devices) == 0 {
			bad("%s has no devices", where)
		}
		if ps.CarePlan != nil {
			if err := ps.CarePlan.check(); err != nil {
				bad("%s: %v", where, err)
			}
		}
		pp := &PlanPatient{ID: ps.ID, Name: ps.Name, Ward: ps.Ward, SpO2Scale: ps.SpO2Scale, CarePlan: ps.CarePlan, Outages: map[vward.DeviceID][]Spell{}}
		if pp.Ward == "" {
			pp.Ward = ward
		}
		if pp.SpO2Scale == 0 {
			pp.SpO2Scale = 1
		}
		if pp.Name == "" {
			pp.Name = string(ps.ID)
		}
		kinds := map[DeviceKind]int{}
		for _, d := range ps.Devices {
			kinds[d.Kind]++
		}
		seen := map[DeviceKind]int{}
		for j, d := range ps.Devices {
			if !slices.Contains(DeviceKinds, d.Kind) {
				bad("%s: devices[%d]: kind %q is not one of %v", where, j, d.Kind, DeviceKinds)
				continue
			}
			if d.ID == "" {
				d.ID = vward.DeviceID(string(ps.ID) + "-" + string(d.Kind))
				if seen[d.Kind]++; kinds[d.Kind] > 1 {
					d.ID = vward.DeviceID(fmt.Sprintf("%s-%d", d.ID, seen[d.Kind]))
				}
			}
			if err := ValidID(string(d.ID)); err != nil {
				bad("%s: devices[%d]: %v", where, j, err)
				continue
			}
			if devices[d.ID] {
				bad("device %q appears twice", d.ID)
				continue
			}
			devices[d.ID] = true
			for _, k := range d.Measures {
				switch {
				case !k.Known():
					bad("device %q: %q is not a reading kind of device protocol v1", d.ID, k)
				case k == vward.FallEvent: // sent at each fall event
				case !slices.Contains(Measurable, k):
					bad("device %q: the simulator has no physiology for %q; a device may measure %v, and fall_event at each fall", d.ID, k, Measurable)
				}
			}
			if d.Every < 0 || d.Jitter < 0 || d.Batch < 0 {
				bad("device %q: every, jitter and batch must not be negative", d.ID)
			}
			if d.Every > 0 && d.Every < Duration(time.Second) {
				bad("device %q: every %s is faster than 1 Hz", d.ID, d.Every.D())
			}
			f := d.Faults
			for _, r := range []float64{f.DuplicateRate, f.OutOfOrderRate, f.MalformedRate} {
				if r < 0 || r > 1 {
					bad("device %q: fault rates must be between 0 and 1", d.ID)
				}
			}
			pp.Devices = append(pp.Devices, d)
		}
		events := questionnaireDevices(ps.Events, pp.Devices, where, bad)
		base := BaselineFor(profile, rand.New(rand.NewPCG(sc.Seed, hashString("baseline:"+string(ps.ID)))))
		if err := ps.Baseline.apply(&base); err != nil {
			bad("%s: %v", where, err)
		}
		pp.Model = NewPatient(ps.ID, base, ps.Trajectories, events, sc.dayStart(), end,
			rand.New(rand.NewPCG(sc.Seed, hashString("patient:"+string(ps.ID)))))
		plan.Patients = append(plan.Patients, pp)
		plan.byID[ps.ID] = pp
	}
	for i, o := range sc.Outages {
		if o.For <= 0 {
			bad("outages[%d]: for must be above 0", i)
		}
		hit := false
		for _, p := range plan.Patients {
			for _, d := range p.Devices {
				if o.covers(d.ID, p.ID) {
					p.Outages[d.ID] = append(p.Outages[d.ID], o.Spell)
					hit = true
				}
			}
		}
		if !hit {
			bad("outages[%d] matches no device", i)
		}
	}
	for i, e := range sc.Expect {
		if err := e.check(plan); err != nil {
			bad("expect[%d]: %v", i, err)
		}
	}
	for risk, d := range sc.AckTimeout {
		if _, err := ParseRisk(risk); err != nil || d.D() < 10*time.Second {
			bad("ack_timeout: %q: %s: want a risk band (high, medium, low-medium, low) and at least 10s", risk, d.D())
		}
	}
	for i, n := range sc.Notifications {
		if err := n.check(plan); err != nil {
			bad("notifications[%d]: %v", i, err)
		}
	}
	for i, a := range sc.Allow {
		if plan.byID[a.Patient] == nil {
			bad("allow[%d]: no patient %q in the scenario", i, a.Patient)
		}
		if _, err := ParseRisk(a.Risk); err != nil {
			bad("allow[%d]: %v", i, err)
		}
	}
	if len(plan.Patients) == 0 {
		bad("the scenario has no patients")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return plan, nil
}

func (o Outage) covers(d vward.DeviceID, p vward.PatientID) bool {
	if len(o.Devices) == 0 && len(o.Patients) == 0 {
		return true
	}
	return matchAny(o.Devices, string(d)) || matchAny(o.Patients, string(p))
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok || p == s {
			return true
		}
	}
	return false
}

func (b *BaselineSpec) apply(v *Vitals) error {
	if b == nil {
		return nil
	}
	set := func(dst *float64, src *float64) {
		if src != nil {
			*dst = *src
		}
	}
	set(&v.RespiratoryRate, b.RespiratoryRate)
	set(&v.SpO2, b.SpO2)
	set(&v.SystolicBP, b.SystolicBP)
	set(&v.DiastolicBP, b.DiastolicBP)
	set(&v.HeartRate, b.HeartRate)
	set(&v.Temperature, b.Temperature)
	if b.Weight != nil {
		if r := vward.Weight.PossibleRange(); !r.Contains(*b.Weight) {
			return fmt.Errorf("baseline weight %g kg is outside %g–%g kg", *b.Weight, r.Min, r.Max)
		}
		v.Weight = *b.Weight
	}
	if b.OnOxygen != nil {
		v.OnOxygen = *b.OnOxygen
	}
	if b.Consciousness != "" {
		l, err := vward.ParseLevel(b.Consciousness)
		if err != nil {
			return err
		}
		v.Consciousness = l
	}
	return nil
}

// Patient returns a patient of the plan.
func (p *Plan) Patient(id vward.PatientID) (*PlanPatient, bool) {
	pp, ok := p.byID[id]
	return pp, ok
}

// Devices lists every device of the plan with its patient.
func (p *Plan) Devices() []DeviceRef {
	var out []DeviceRef
	for _, pp := range p.Patients {
		for _, d := range pp.Devices {
			out = append(out, DeviceRef{ID: d.ID, Patient: pp.ID, Kind: d.Kind})
		}
	}
	return out
}

// Wards lists the wards the plan's patients are on.
func (p *Plan) Wards() []vward.WardID {
	var out []vward.WardID
	for _, pp := range p.Patients {
		if !slices.Contains(out, pp.Ward) {
			out = append(out, pp.Ward)
		}
	}
	return out
}

// Streams builds every device's stream on clock, in the plan's order.
func (p *Plan) Streams(clock Clock) []*Stream {
	var out []*Stream
	for _, pp := range p.Patients {
		for _, d := range pp.Devices {
			out = append(out, NewStream(d, pp.Model, pp.Outages[d.ID], clock, p.Scenario.Duration.D(), p.Scenario.Seed))
		}
	}
	return out
}
