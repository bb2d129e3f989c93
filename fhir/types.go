// Package fhir writes vward's records as HL7 FHIR R4 resources in JSON:
// Patient and EpisodeOfCare of a stay, Device, Observation of a reading
// and of a NEWS2 score, Flag of an alert, and the Bundle and
// OperationOutcome of the read-only API (docs/fhir.md). It is pure: the
// web layer reads the records and the access rights, this package only
// maps them. The structs below carry the few elements vward fills, not
// the whole of R4: a generated library of every resource would be most of
// the binary for a dozen fields.
package fhir

import (
	"encoding/json"
	"time"
)

// Coding is a code from a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a concept as codings and text.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Quantity is a measured amount with its UCUM unit.
type Quantity struct {
	Value  json.Number `json:"value"`
	Unit   string      `json:"unit,omitempty"`
	System string      `json:"system,omitempty"`
	Code   string      `json:"code,omitempty"`
}

// Reference points at another resource, or names what has none.
type Reference struct {
	Reference string `json:"reference,omitempty"`
	Display   string `json:"display,omitempty"`
}

// Identifier is a business identifier, such as the NHS number.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Period is a span of time; End is empty while it goes on.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Extension carries what R4 has no element for (docs/fhir.md lists each).
type Extension struct {
	URL                  string           `json:"url"`
	Extension            []Extension      `json:"extension,omitempty"`
	ValueCode            string           `json:"valueCode,omitempty"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueDateTime        string           `json:"valueDateTime,omitempty"`
	ValueBoolean         *bool            `json:"valueBoolean,omitempty"`
	ValueInteger         *int             `json:"valueInteger,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
}

// Annotation is a note.
type Annotation struct {
	Text string `json:"text"`
}

// Meta holds the profiles a resource claims and when it last changed.
type Meta struct {
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Profile     []string `json:"profile,omitempty"`
}

// HumanName is a person's name. vward keeps a name as one string, so it
// is given as text only, never split into given and family parts.
type HumanName struct {
	Use  string `json:"use,omitempty"`
	Text string `json:"text"`
}

// Patient is the subject of one virtual ward stay.
type Patient struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id"`
	Meta         *Meta        `json:"meta,omitempty"`
	Identifier   []Identifier `json:"identifier,omitempty"`
	Active       bool         `json:"active"`
	Name         []HumanName  `json:"name,omitempty"`
	BirthDate    string       `json:"birthDate,omitempty"`
}

// EpisodeOfCare is a patient's stay on a virtual ward.
type EpisodeOfCare struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Extension    []Extension       `json:"extension,omitempty"`
	Status       string            `json:"status"`
	Type         []CodeableConcept `json:"type,omitempty"`
	Patient      Reference         `json:"patient"`
	Period       *Period           `json:"period,omitempty"`
}

// DeviceName is a name of a device.
type DeviceName struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Device is a registered monitoring device.
type Device struct {
	ResourceType string           `json:"resourceType"`
	ID           string           `json:"id"`
	Identifier   []Identifier     `json:"identifier,omitempty"`
	Status       string           `json:"status"`
	SerialNumber string           `json:"serialNumber,omitempty"`
	DeviceName   []DeviceName     `json:"deviceName,omitempty"`
	Type         *CodeableConcept `json:"type,omitempty"`
	Patient      *Reference       `json:"patient,omitempty"`
}

// Component is one part of an Observation: a blood pressure's systolic,
// a NEWS2 sub-score.
type Component struct {
	Code             CodeableConcept  `json:"code"`
	ValueQuantity    *Quantity        `json:"valueQuantity,omitempty"`
	ValueInteger     *int             `json:"valueInteger,omitempty"`
	DataAbsentReason *CodeableConcept `json:"dataAbsentReason,omitempty"`
}

// Observation is a measured vital sign or a NEWS2 score.
type Observation struct {
	ResourceType         string            `json:"resourceType"`
	ID                   string            `json:"id"`
	Meta                 *Meta             `json:"meta,omitempty"`
	Extension            []Extension       `json:"extension,omitempty"`
	Identifier           []Identifier      `json:"identifier,omitempty"`
	Status               string            `json:"status"`
	Category             []CodeableConcept `json:"category"`
	Code                 CodeableConcept   `json:"code"`
	Subject              Reference         `json:"subject"`
	EffectiveDateTime    string            `json:"effectiveDateTime"`
	Performer            []Reference       `json:"performer,omitempty"`
	ValueQuantity        *Quantity         `json:"valueQuantity,omitempty"`
	ValueCodeableConcept *CodeableConcept  `json:"valueCodeableConcept,omitempty"`
	ValueBoolean         *bool             `json:"valueBoolean,omitempty"`
	ValueInteger         *int              `json:"valueInteger,omitempty"`
	DataAbsentReason     *CodeableConcept  `json:"dataAbsentReason,omitempty"`
	Interpretation       []CodeableConcept `json:"interpretation,omitempty"`
	Note                 []Annotation      `json:"note,omitempty"`
	Device               *Reference        `json:"device,omitempty"`
	DerivedFrom          []Reference       `json:"derivedFrom,omitempty"`
	Component            []Component       `json:"component,omitempty"`

	at      time.Time // effective time, to sort by
	updated time.Time // meta.lastUpdated, to search by
}

// Updated is when the Observation last changed (meta.lastUpdated).
func (o Observation) Updated() time.Time { return o.updated }

// At is the Observation's effective time.
func (o Observation) At() time.Time { return o.at }

// Flag is an alert about a patient.
type Flag struct {
	ResourceType string            `json:"resourceType"`
	ID           string            `json:"id"`
	Meta         *Meta             `json:"meta,omitempty"`
	Extension    []Extension       `json:"extension,omitempty"`
	Status       string            `json:"status"`
	Category     []CodeableConcept `json:"category,omitempty"`
	Code         CodeableConcept   `json:"code"`
	Subject      Reference         `json:"subject"`
	Period       *Period           `json:"period,omitempty"`
}

// BundleLink is one of a searchset's self, next and previous links.
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleSearch says why an entry is in a searchset.
type BundleSearch struct {
	Mode string `json:"mode"`
}

// BundleEntry is one resource of a Bundle.
type BundleEntry struct {
	FullURL  string        `json:"fullUrl"`
	Resource any           `json:"resource"`
	Search   *BundleSearch `json:"search,omitempty"`
}

// Bundle is a page of search results.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Meta         *Meta         `json:"meta,omitempty"`
	Type         string        `json:"type"`
	Total        int           `json:"total"`
	Link         []BundleLink  `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// Issue is one problem of an OperationOutcome.
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// OperationOutcome says why a request was refused.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}
