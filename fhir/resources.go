package fhir

import (
	"strconv"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
)

// PatientOf writes the patient of a stay. vward keeps each stay as its own
// patient id (a readmission is a new stay), so the NHS number, not the id,
// is what joins a person's stays elsewhere.
func PatientOf(p devices.Patient) Patient {
	out := Patient{ResourceType: "Patient", ID: ID(string(p.ID)), Active: p.Status != devices.StatusDischarged,
		Name: []HumanName{{Use: "usual", Text: p.Name}}, BirthDate: p.Born}
	if p.NHSNumber != "" {
		out.Identifier = []Identifier{{System: NHSNumber, Value: p.NHSNumber}}
	}
	return out
}

// episodeStatus maps a stay's status: paused (in hospital for now, back
// later) is on hold, not finished.
var episodeStatus = map[string]string{
	devices.StatusAdmitted:   "active",
	devices.StatusPaused:     "onhold",
	devices.StatusDischarged: "finished",
}

// EpisodeOfCareOf writes a stay; it shares the patient's id, since each
// stay is one patient id.
func EpisodeOfCareOf(p devices.Patient) EpisodeOfCare {
	id := ID(string(p.ID))
	out := EpisodeOfCare{ResourceType: "EpisodeOfCare", ID: id, Status: episodeStatus[p.Status],
		Type:      []CodeableConcept{{Text: "Virtual ward stay"}},
		Patient:   Reference{Reference: "Patient/" + id, Display: p.Name},
		Period:    &Period{Start: DateTime(p.Admitted)},
		Extension: []Extension{{URL: ExtWard, ValueString: string(p.Ward)}}}
	if out.Status == "" {
		out.Status = "active"
	}
	if p.Discharged != nil {
		out.Period.End = DateTime(*p.Discharged)
	}
	if p.Outcome != "" {
		out.Extension = append(out.Extension, Extension{URL: ExtOutcome,
			ValueCodeableConcept: &CodeableConcept{Coding: []Coding{{System: StayOutcome, Code: p.Outcome}}, Text: p.Outcome}})
	}
	return out
}

// DeviceOf writes a registered device and, while bound, its patient.
func DeviceOf(d devices.Device) Device {
	out := Device{ResourceType: "Device", ID: ID(string(d.ID)), Status: "active", SerialNumber: d.Serial,
		Identifier: []Identifier{{System: DeviceIDSystem, Value: string(d.ID)}},
		DeviceName: []DeviceName{{Name: string(d.ID), Type: "user-friendly-name"}}}
	if d.Kind != "" {
		out.Type = &CodeableConcept{Text: d.Kind}
	}
	if d.Patient != "" {
		out.Patient = &Reference{Reference: "Patient/" + ID(string(d.Patient))}
	}
	return out
}

// FlagOf writes an alert: active while open, inactive once resolved.
// R4's Flag has no element for an alert's finer state nor for who
// acknowledged it, so two extensions carry them (docs/fhir.md).
func FlagOf(a alerting.Alert) Flag {
	f := Flag{ResourceType: "Flag", ID: strconv.FormatInt(a.ID, 10), Status: "active",
		Meta:     &Meta{LastUpdated: DateTime(a.UpdatedAt)},
		Category: []CodeableConcept{codeClinical.concept()},
		Code: CodeableConcept{Coding: []Coding{{System: AlertCondition, Code: string(a.Condition)}},
			Text: a.Reason},
		Period: &Period{Start: DateTime(a.RaisedAt)},
		Extension: []Extension{
			{URL: ExtAlertState, ValueCodeableConcept: &CodeableConcept{Coding: []Coding{{System: AlertState, Code: string(a.State)}}}},
			{URL: ExtWard, ValueString: string(a.Ward)},
		}}
	if a.Queue == alerting.Technical {
		f.Category = []CodeableConcept{codeFlagAdmin.concept()}
	}
	if f.Code.Text == "" {
		f.Code.Text = string(a.Condition)
	}
	if a.Patient != "" {
		f.Subject = Reference{Reference: "Patient/" + ID(string(a.Patient))}
	} else {
		f.Subject = Reference{Display: "ward " + string(a.Ward)}
	}
	if !a.State.Open() {
		f.Status = "inactive"
		if !a.ResolvedAt.IsZero() {
			f.Period.End = DateTime(a.ResolvedAt)
		}
	}
	if !a.AcknowledgedAt.IsZero() {
		ack := Extension{URL: ExtAcknowledged, Extension: []Extension{
			{URL: "at", ValueDateTime: DateTime(a.AcknowledgedAt)},
			{URL: "by", ValueString: a.AcknowledgedBy},
		}}
		if a.AckNote != "" {
			ack.Extension = append(ack.Extension, Extension{URL: "note", ValueString: a.AckNote})
		}
		f.Extension = append(f.Extension, ack)
	}
	return f
}

// Outcome is an OperationOutcome of one error. expression names the
// search parameter at fault, if any.
func Outcome(code, diagnostics string, expression ...string) OperationOutcome {
	return OperationOutcome{ResourceType: "OperationOutcome",
		Issue: []Issue{{Severity: "error", Code: code, Diagnostics: diagnostics, Expression: expression}}}
}
