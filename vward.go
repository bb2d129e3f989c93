// Package vward holds the domain vocabulary of the virtual ward: identifiers,
// the kinds of reading a device sends, the reading itself, and the kinds of
// error a request may be refused with (errors.go). Every other package may
// import it; it imports nothing of ours, so a newcomer can read the whole
// language of the product in one place.
//
// Where a reading goes: device ──MQTT──▶ ingest (decode, validate, store, ack)
// ──▶ alerting (NEWS2 observation set, escalation) ──▶ web (REST + board).
// devices owns the registry of wards, patients, devices and clinicians;
// simulator publishes like real devices.
package vward

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DeviceID names a device; it is also its MQTT username and the {device_id}
// segment of its topics.
type DeviceID string

// PatientID names a patient as the REST API and the board do. It is not an
// NHS number, so it may appear in logs.
type PatientID string

// WardID names a virtual ward.
type WardID string

// ReadingKind is the "type" of a reading in device protocol v1.
type ReadingKind string

// The reading kinds of device protocol v1. Units are fixed per kind: a device
// converts before it publishes.
const (
	RespiratoryRate    ReadingKind = "respiratory_rate"    // breaths/min
	SpO2               ReadingKind = "spo2"                // %
	SupplementalOxygen ReadingKind = "supplemental_oxygen" // bool: on oxygen
	SystolicBP         ReadingKind = "systolic_bp"         // mmHg
	DiastolicBP        ReadingKind = "diastolic_bp"        // mmHg
	HeartRate          ReadingKind = "heart_rate"          // beats/min
	Consciousness      ReadingKind = "consciousness"       // ACVPU letter
	Temperature        ReadingKind = "temperature"         // °C

	// Kinds beyond NEWS2's, for care plans (docs/careplans.md). NEWS2
	// never reads them.
	Weight       ReadingKind = "weight"        // kg
	BloodGlucose ReadingKind = "blood_glucose" // mmol/L
	PeakFlow     ReadingKind = "peak_flow"     // L/min
	PainScore    ReadingKind = "pain_score"    // 0–10 numeric rating scale
	FallEvent    ReadingKind = "fall_event"    // an event: true, at the time of the fall
)

// ReadingKinds lists every kind device protocol v1 accepts, in a stable order.
var ReadingKinds = []ReadingKind{
	RespiratoryRate, SpO2, SupplementalOxygen, SystolicBP, DiastolicBP,
	HeartRate, Consciousness, Temperature,
	Weight, BloodGlucose, PeakFlow, PainScore, FallEvent,
}

// Unit is the unit a kind's value is expressed in, as shown to people.
func (k ReadingKind) Unit() string {
	switch k {
	case RespiratoryRate:
		return "/min"
	case SpO2:
		return "%"
	case SystolicBP, DiastolicBP:
		return "mmHg"
	case HeartRate:
		return "bpm"
	case Temperature:
		return "°C"
	case Weight:
		return "kg"
	case BloodGlucose:
		return "mmol/L"
	case PeakFlow:
		return "L/min"
	case PainScore:
		return "/10"
	}
	return ""
}

// NumReadingKinds is len(ReadingKinds).
const NumReadingKinds = 13

// Index is the kind's position in ReadingKinds, or -1 for a kind device
// protocol v1 does not know: a patient's latest readings are an array
// indexed by it, with no map to look up on every reading.
func (k ReadingKind) Index() int {
	switch k {
	case RespiratoryRate:
		return 0
	case SpO2:
		return 1
	case SupplementalOxygen:
		return 2
	case SystolicBP:
		return 3
	case DiastolicBP:
		return 4
	case HeartRate:
		return 5
	case Consciousness:
		return 6
	case Temperature:
		return 7
	case Weight:
		return 8
	case BloodGlucose:
		return 9
	case PeakFlow:
		return 10
	case PainScore:
		return 11
	case FallEvent:
		return 12
	}
	return -1
}

// Known reports whether device protocol v1 knows this kind.
func (k ReadingKind) Known() bool { return k.Index() >= 0 }

// Level is an ACVPU level of consciousness. It is stored as a number in a
// Reading's Value so that a reading stays a small value type.
type Level int

// ACVPU, in order of increasing concern after Alert. New confusion (C) scores
// like V, P and U in NEWS2.
const (
	Alert Level = iota
	Confused
	Voice
	Pain
	Unresponsive
)

var levelLetters = [...]string{"A", "C", "V", "P", "U"}

// String returns the ACVPU letter.
func (l Level) String() string {
	if l < 0 || int(l) >= len(levelLetters) {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return levelLetters[l]
}

// ParseLevel reads an ACVPU letter.
func ParseLevel(s string) (Level, error) {
	for i, l := range levelLetters {
		if s == l {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("consciousness %q is not one of A, C, V, P, U", s)
}

// Reading is one measured value of one patient, attributed to the patient the
// device was bound to at the measurement time.
//
// Value carries every kind as a number: booleans as 0 or 1, consciousness as
// a Level. The raw value is kept as measured; scoring rounds its own copy.
type Reading struct {
	Device  DeviceID
	Patient PatientID
	Ward    WardID
	MsgID   string // the device message's msg_id: the dedup key
	Kind    ReadingKind
	Value   float64
	At      time.Time // when measured, not when sent or received
}

// PersonDevicePrefix begins the device id of every reading a person
// entered (observations). It holds a colon, which no registered device id
// may (devices.ValidID), so an entered reading is never taken for a
// device's.
const PersonDevicePrefix = "person:"

// Entered reports whether a person entered the reading, rather than a
// device measuring it.
func (r Reading) Entered() bool { return strings.HasPrefix(string(r.Device), PersonDevicePrefix) }

// Bool reads a boolean reading's value.
func (r Reading) Bool() bool { return r.Value != 0 }

// Level reads a consciousness reading's value.
func (r Reading) Level() Level { return Level(r.Value) }

// Display renders the value as a person reads it: "true", "A", "37.2".
func (r Reading) Display() string {
	switch r.Kind {
	case SupplementalOxygen:
		if r.Bool() {
			return "true"
		}
		return "false"
	case Consciousness:
		return r.Level().String()
	case FallEvent:
		return "fall"
	}
	// As fmt's %g (the shortest exact form), without fmt: the board shows a
	// value for every reading it is sent.
	return strconv.FormatFloat(r.Value, 'g', -1, 64)
}

// Range is the physiologically possible span of a numeric kind, inclusive.
// It rejects what no living patient or working sensor could report (a typo, a
// unit mix-up, a sensor fault), never what is merely abnormal: an abnormal
// value is exactly what the ward must see.
type Range struct{ Min, Max float64 }

// Contains reports whether v lies in the range.
func (r Range) Contains(v float64) bool { return v >= r.Min && v <= r.Max }

// PossibleRange returns the accepted range of a kind's value. Booleans span
// 0–1 and consciousness the ACVPU levels.
func (k ReadingKind) PossibleRange() Range {
	switch k {
	case RespiratoryRate:
		return Range{0, 80}
	case SpO2:
		return Range{0, 100}
	case SupplementalOxygen:
		return Range{0, 1}
	case SystolicBP:
		return Range{20, 300}
	case DiastolicBP:
		return Range{10, 250}
	case HeartRate:
		return Range{0, 300}
	case Consciousness:
		return Range{float64(Alert), float64(Unresponsive)}
	case Temperature:
		return Range{25, 45}
	case Weight: // from a neonate to bariatric scales' limit
		return Range{1, 500}
	case BloodGlucose: // meters read 0.6–33.3; a laboratory value may exceed 50
		return Range{0.5, 60}
	case PeakFlow: // low-range meters start at 30, standard ones end at 800–900
		return Range{20, 1000}
	case PainScore:
		return Range{0, 10}
	case FallEvent: // only ever true: a device reports a fall, not its absence
		return Range{1, 1}
	}
	return Range{}
}

// ServiceIDPrefix begins every MQTT client id of vward's own connections,
// and no device id may begin with it (case aside). A broker configured as
// vward ships it (docs/security.md) gives each device its device id as its
// client id, so no device can take over vward's persistent session, nor
// another device's.
const ServiceIDPrefix = "vward"

// IsServiceID reports whether id begins with ServiceIDPrefix, in any case.
func IsServiceID(id string) bool {
	return len(id) >= len(ServiceIDPrefix) && strings.EqualFold(id[:len(ServiceIDPrefix)], ServiceIDPrefix)
}

// Topics of device protocol v1 (a contract: see docs/device-protocol.md).
const (
	TopicPrefix = "vward/v1/devices/"
	// ReadingsFilter subscribes to every device's readings.
	ReadingsFilter = TopicPrefix + "+/readings"
	// SenMLFilter subscribes to every device's readings sent as SenML
	// (RFC 8428) JSON, the second accepted format.
	SenMLFilter = TopicPrefix + "+/senml"
	// StatusFilter subscribes to every device's retained online status.
	StatusFilter = TopicPrefix + "+/status"
	// QuestionnaireFilter subscribes to every device's answered
	// questionnaires (questionnaire.go).
	QuestionnaireFilter = TopicPrefix + "+/questionnaire"
)

// ReadingsTopic is where a device publishes its readings.
func ReadingsTopic(d DeviceID) string { return TopicPrefix + string(d) + "/readings" }

// SenMLTopic is where a device publishes its readings as a SenML pack.
func SenMLTopic(d DeviceID) string { return TopicPrefix + string(d) + "/senml" }

// RejectedTopic is where vward tells a device why a message was refused.
func RejectedTopic(d DeviceID) string { return TopicPrefix + string(d) + "/rejected" }

// StatusTopic carries a device's retained online/offline status.
func StatusTopic(d DeviceID) string { return TopicPrefix + string(d) + "/status" }

// QuestionnaireTopic is where a device (a patient app, a hub, a carer's
// tablet) publishes an answered questionnaire.
func QuestionnaireTopic(d DeviceID) string { return TopicPrefix + string(d) + "/questionnaire" }
