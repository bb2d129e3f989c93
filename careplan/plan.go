// Package careplan is a patient's care plan: which measurements are
// expected and how often, the pathway rules watched beside NEWS2, and the
// treatment escalation plan (ceiling of care) recorded with them. It is pure:
// no I/O, no clock, no goroutines. A plan is JSON in a versioned format
// (docs/careplans.md), read only through Parse, which refuses anything it
// does not understand; pathway templates are shipped as such JSON files.
//
// A plan only adds findings. Evaluate reads a plan and readings and returns
// each rule's state with its evidence; it takes no NEWS2 result and returns
// none, and this package imports neither news2 nor alerting, so no plan can
// suppress, lower or delay a NEWS2 score or alert (careplan_test checks the
// imports).
package careplan

import (
	"time"

	"github.com/vward/vward"
)

// FormatVersion is the version of the plan format this package reads and
// writes: the "version" field of every plan.
const FormatVersion = 1

// Plan is one patient's care plan.
type Plan struct {
	Version int
	// Name is the plan's title as clinicians see it ("Heart failure").
	Name string
	// Template names the pathway template the plan was made from, empty
	// when it was written from scratch.
	Template string
	// Note is what clinicians should know of the plan as a whole (a
	// template's caveats, a patient's particulars), shown with it.
	Note string
	// Expected are the measurements the patient should send, one per kind.
	Expected []Expectation
	// Rules are watched on every reading, in this order.
	Rules []Rule
	// Escalation is the treatment escalation plan, nil when none is
	// recorded. It is shown beside alerts and never changes them.
	Escalation *EscalationPlan
}

// Expectation is a measurement the patient should send.
type Expectation struct {
	Kind vward.ReadingKind
	// Every is the longest gap between two measurements.
	Every time.Duration
	// By, when not zero, is a deadline in the ward's day, as the time
	// since local midnight: a measurement is then expected on every
	// Every-th day by that time ("weight daily by 10:00"), and Every is
	// a whole number of days.
	By time.Duration
}

// RuleType is what a rule watches.
type RuleType string

// The rule types (docs/careplans.md has each one's exact meaning).
const (
	// Threshold holds while the latest reading of the kind compares with
	// the value (spo2 <= 92).
	Threshold RuleType = "threshold"
	// Sustained holds while the threshold has been breached by every
	// reading for a time (For) or by the last Sets readings.
	Sustained RuleType = "sustained"
	// Change holds while the latest reading has risen (or fallen) by the
	// value from the lowest (highest) reading within the window.
	Change RuleType = "change"
	// Deviation holds while the latest reading lies the value (or that
	// percent) below or above the patient's own baseline.
	Deviation RuleType = "deviation"
)

// Op compares a reading, or a change, with a rule's value.
type Op string

// The comparisons.
const (
	Below   Op = "<"
	AtMost  Op = "<="
	Above   Op = ">"
	AtLeast Op = ">="
)

// Direction is which way a change or deviation counts.
type Direction string

// The directions.
const (
	Rise Direction = "rise"
	Fall Direction = "fall"
)

// Risk is the risk of the alert a rule raises, named as NEWS2 names its
// bands so that alerting can rank care plan alerts with the others.
type Risk string

// The risks a rule may raise.
const (
	RiskLow       Risk = "low"
	RiskLowMedium Risk = "low-medium"
	RiskMedium    Risk = "medium"
	RiskHigh      Risk = "high"
)

// Risks lists the risks in increasing order.
var Risks = []Risk{RiskLow, RiskLowMedium, RiskMedium, RiskHigh}

// Rule is one pathway rule. Which fields count depends on Type.
type Rule struct {
	ID   string // unique in the plan; alerts name the rule by it
	Name string // for people: "Weight up more than 2 kg in 3 days"
	Risk Risk
	Type RuleType
	Kind vward.ReadingKind
	// Basis is the clinical reason and its source, shown with the rule.
	Basis string

	// Op and Value: the threshold of a threshold or sustained rule, or
	// how large a change or deviation must be (Op > or >=).
	Op    Op
	Value float64
	// Within (threshold) is how old the latest reading may be and still
	// count; zero means any age. Required for an event kind, where the
	// rule holds while an event was recorded within it.
	Within time.Duration
	// For or Sets (sustained): how long, or over how many consecutive
	// readings, the threshold must have been breached.
	For  time.Duration
	Sets int
	// Direction (change, deviation) is which way counts.
	Direction Direction
	// Window (change) is how far back from the latest reading to look.
	Window time.Duration
	// Percent (deviation) says Value is a percentage of the baseline,
	// not an amount in the kind's unit.
	Percent bool
	// Baseline (deviation) is the patient's own reference value.
	Baseline Baseline
}

// Baseline is a patient's own reference value for a deviation rule: set
// by a clinician (SetBy not empty), or else the median of the readings
// in a window before the latest one.
type Baseline struct {
	// Value, SetBy and SetAt: a value a clinician set, who and when.
	Value float64
	SetBy string
	SetAt time.Time
	// MedianOf is the span of the window; it ends ExcludingLast before
	// the latest reading, so that the change being looked for does not
	// drag its own baseline. MinReadings is the fewest readings the
	// median may be taken of.
	MedianOf      time.Duration
	ExcludingLast time.Duration
	MinReadings   int
}

// Clinical reports whether a clinician set the baseline.
func (b Baseline) Clinical() bool { return b.SetBy != "" }

// Ceiling is the coded choice of a treatment escalation plan: the most
// intensive care the patient is for.
type Ceiling string

// The ceilings, from most to least intensive (docs/careplans.md).
const (
	// FullEscalation: every appropriate treatment, critical care included.
	FullEscalation Ceiling = "full_escalation"
	// NoCriticalCare: for hospital admission, not for intensive care.
	NoCriticalCare Ceiling = "no_critical_care"
	// NoHospitalTransfer: treated where they live, not admitted.
	NoHospitalTransfer Ceiling = "no_hospital_transfer"
	// ComfortCare: symptom control and comfort only.
	ComfortCare Ceiling = "comfort_care"
)

// Ceilings lists the ceilings, most intensive first.
var Ceilings = []Ceiling{FullEscalation, NoCriticalCare, NoHospitalTransfer, ComfortCare}

// EscalationPlan is a treatment escalation plan or ceiling of care, agreed
// with the patient or those close to them. It is shown beside the
// patient's alerts for whoever responds; it never changes whether, when or
// to whom an alert escalates.
type EscalationPlan struct {
	Ceiling   Ceiling
	Text      string // the plan in the clinician's words
	DecidedBy string
	DecidedAt time.Time
	ReviewBy  time.Time // zero when no review date was set
}
