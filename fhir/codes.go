package fhir

import (
	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// The code systems and naming systems vward writes.
const (
	LOINC     = "http://loinc.org"
	SNOMED    = "http://snomed.info/sct"
	UCUM      = "http://unitsofmeasure.org"
	NHSNumber = "https://fhir.nhs.uk/Id/nhs-number"

	ObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category"
	DataAbsentReason    = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
	FlagCategory        = "http://terminology.hl7.org/CodeSystem/flag-category"

	// VitalSignsProfile is the R4 vital-signs profile.
	VitalSignsProfile = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
	// BPProfile is the R4 blood pressure profile.
	BPProfile = "http://hl7.org/fhir/StructureDefinition/bp"
	// BodyWeightProfile is the R4 body weight profile.
	BodyWeightProfile = "http://hl7.org/fhir/StructureDefinition/bodyweight"

	// Namespace begins the URLs of vward's own code systems, naming
	// systems and extensions, for what no standard code says
	// (docs/fhir.md, "vward's own codes").
	Namespace = "https://vward.github.io/fhir"

	// DeviceIDSystem names devices by their vward device id.
	DeviceIDSystem = Namespace + "/Id/device"
	// ReadingIDSystem identifies an Observation by the device message it
	// came in (its msg_id) or the entry it was entered as ("obs-12").
	ReadingIDSystem = Namespace + "/Id/message"
	// AlertCondition is vward's code system of alert conditions.
	AlertCondition = Namespace + "/CodeSystem/alert-condition"
	// AlertState is vward's code system of alert states.
	AlertState = Namespace + "/CodeSystem/alert-state"
	// News2Parameter is vward's code system of the seven NEWS2
	// parameters, the codes of a NEWS2 Observation's components.
	News2Parameter = Namespace + "/CodeSystem/news2-parameter"
	// ObservationSource is vward's code system of how an entered
	// observation reached the ward (observations.Source).
	ObservationSource = Namespace + "/CodeSystem/observation-source"
	// StayOutcome is vward's code system of the outcomes of a stay.
	StayOutcome = Namespace + "/CodeSystem/stay-outcome"

	// The extensions.
	ExtSource       = Namespace + "/StructureDefinition/observation-source"
	ExtPartial      = Namespace + "/StructureDefinition/news2-partial"
	ExtSpO2Scale    = Namespace + "/StructureDefinition/news2-spo2-scale"
	ExtAlertState   = Namespace + "/StructureDefinition/alert-state"
	ExtAcknowledged = Namespace + "/StructureDefinition/alert-acknowledgement"
	ExtOutcome      = Namespace + "/StructureDefinition/stay-outcome"
	ExtWard         = Namespace + "/StructureDefinition/ward"
)

// Code is one code vward writes, with where it is used: Codes is the
// table docs/fhir.md prints, and a test holds the two, and every code in
// the resources written, equal.
type Code struct {
	System, Code, Display string
}

// The codes of each reading kind.
var (
	codeRespiratoryRate = Code{LOINC, "9279-1", "Respiratory rate"}
	codeHeartRate       = Code{LOINC, "8867-4", "Heart rate"}
	codeSpO2            = Code{LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"}
	codeSpO2Arterial    = Code{LOINC, "2708-6", "Oxygen saturation in Arterial blood"}
	codeTemperature     = Code{LOINC, "8310-5", "Body temperature"}
	codeBPPanel         = Code{LOINC, "85354-9", "Blood pressure panel with all children optional"}
	codeSystolic        = Code{LOINC, "8480-6", "Systolic blood pressure"}
	codeDiastolic       = Code{LOINC, "8462-4", "Diastolic blood pressure"}
	// NHS Digital's CareConnect-InspiredOxygen-Observation-1 codes air
	// or oxygen as a finding in Observation.code; vward does the same.
	codeRoomAir  = Code{SNOMED, "722742002", "Breathing room air"}
	codeOnOxygen = Code{SNOMED, "371825009", "Patient on oxygen"}
	// CareConnect-ACVPU-Observation-1 and its value set.
	codeACVPU = Code{SNOMED, "1104441000000107", "ACVPU (Alert Confusion Voice Pain Unresponsive) scale score"}
	// The kinds beyond NEWS2's, for care plans.
	codeBodyWeight   = Code{LOINC, "29463-7", "Body weight"}
	codeBloodGlucose = Code{LOINC, "15074-8", "Glucose [Moles/volume] in Blood"}
	codePeakFlow     = Code{LOINC, "19935-6", "Maximum expiratory gas flow Respiratory system airway by Peak flow meter"}
	codePainScore    = Code{LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"}
	codeFall         = Code{SNOMED, "1912002", "Fall"}

	codeNEWS2 = Code{SNOMED, "1104051000000101", "Royal College of Physicians National Early Warning Score 2 (NEWS2) total score"}

	codeVitalSigns = Code{ObservationCategory, "vital-signs", "Vital Signs"}
	codeSurvey     = Code{ObservationCategory, "survey", "Survey"}
	codeLaboratory = Code{ObservationCategory, "laboratory", "Laboratory"}
	codeExam       = Code{ObservationCategory, "exam", "Exam"}
	codeClinical   = Code{FlagCategory, "clinical", "Clinical"}
	codeUnknown    = Code{DataAbsentReason, "unknown", "Unknown"}
	codeFlagAdmin  = Code{FlagCategory, "admin", "Administrative"}
)

// acvpu codes each level of consciousness (CareConnect-ACVPU value set).
var acvpu = [...]Code{
	vward.Alert:        {SNOMED, "248234008", "Mentally alert"},
	vward.Confused:     {SNOMED, "130987000", "Acute confusion"},
	vward.Voice:        {SNOMED, "300202002", "Responds to voice"},
	vward.Pain:         {SNOMED, "450847001", "Responds to pain"},
	vward.Unresponsive: {SNOMED, "422768004", "Unresponsive"},
}

// news2Parameters names the components of a NEWS2 Observation.
var news2Parameters = [news2.NumParameters]Code{
	news2.RespiratoryRate:    {News2Parameter, "respiratory_rate", "Respiration rate sub-score"},
	news2.SpO2:               {News2Parameter, "spo2", "Oxygen saturation sub-score"},
	news2.SupplementalOxygen: {News2Parameter, "supplemental_oxygen", "Air or oxygen sub-score"},
	news2.SystolicBP:         {News2Parameter, "systolic_bp", "Systolic blood pressure sub-score"},
	news2.HeartRate:          {News2Parameter, "heart_rate", "Pulse sub-score"},
	news2.Consciousness:      {News2Parameter, "consciousness", "Consciousness sub-score"},
	news2.Temperature:        {News2Parameter, "temperature", "Temperature sub-score"},
}

// Unit is a UCUM unit as written in a Quantity.
type Unit struct{ Code, Display string }

var (
	unitPerMin  = Unit{"/min", "/min"}
	unitPercent = Unit{"%", "%"}
	unitCel     = Unit{"Cel", "°C"}
	unitMmHg    = Unit{"mm[Hg]", "mmHg"}
	unitBPM     = Unit{"/min", "beats/min"}
	unitKg      = Unit{"kg", "kg"}
	unitMmolL   = Unit{"mmol/L", "mmol/L"}
	unitLPerMin = Unit{"L/min", "L/min"}
	unitScore   = Unit{"{score}", "/10"}
)

// Units lists the UCUM units vward writes.
var Units = []string{unitPerMin.Code, unitPercent.Code, unitCel.Code, unitMmHg.Code, unitKg.Code, unitMmolL.Code, unitLPerMin.Code, unitScore.Code}

func (c Code) coding() Coding { return Coding(c) }

func (c Code) concept() CodeableConcept {
	return CodeableConcept{Coding: []Coding{c.coding()}, Text: c.Display}
}

// Codes lists every standard or vward code the resources carry, but the
// codes of vward's own alert, state, source and outcome code systems,
// which are its names (docs/fhir.md lists them by name).
func Codes() []Code {
	out := []Code{
		codeRespiratoryRate, codeHeartRate, codeSpO2, codeSpO2Arterial, codeTemperature,
		codeBPPanel, codeSystolic, codeDiastolic, codeRoomAir, codeOnOxygen, codeACVPU,
	}
	out = append(out, acvpu[:]...)
	out = append(out, codeBodyWeight, codeBloodGlucose, codePeakFlow, codePainScore, codeFall)
	out = append(out, codeNEWS2)
	out = append(out, news2Parameters[:]...)
	return append(out, codeVitalSigns, codeSurvey, codeLaboratory, codeExam, codeClinical, codeFlagAdmin, codeUnknown)
}
