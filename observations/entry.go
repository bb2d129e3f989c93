// Package observations keeps the observations people enter for a patient
// (a clinician on the telephone, a home visit, a carer, care-home staff,
// the patient's own report) as readings beside the devices' own: validated
// as a device message is (ingest), stored in the history under a device id
// of their source ("person:telephone"), merged into the patient's
// observation set by measurement time, and scored and assessed as any
// reading is (alerting). SQLite keeps each entry with who entered it, when,
// from what source, and whether it was later marked entered in error; the
// registry's audit records both (devices.RecordPatientAudit).
package observations

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/ingest"
)

// Source is how an observation reached the ward.
type Source string

// The sources of an entry.
const (
	Telephone         Source = "telephone"
	HomeVisit         Source = "home_visit"
	Carer             Source = "carer"
	CareHomeStaff     Source = "care_home_staff"
	PatientSelfReport Source = "patient_self_report"
)

// Sources lists every source, in the order the board offers them.
var Sources = []Source{Telephone, HomeVisit, Carer, CareHomeStaff, PatientSelfReport}

// DevicePrefix begins the device id of every entered reading: the root
// package's vward.PersonDevicePrefix.
const DevicePrefix = vward.PersonDevicePrefix

// Device is the device id an entry's readings are stored under.
func (s Source) Device() vward.DeviceID { return vward.DeviceID(DevicePrefix + string(s)) }

// Entered reports whether a reading was entered by a person.
func Entered(r vward.Reading) bool { return r.Entered() }

// ParseSource reads a source's name.
func ParseSource(s string) (Source, error) {
	if slices.Contains(Sources, Source(s)) {
		return Source(s), nil
	}
	names := make([]string, len(Sources))
	for i, src := range Sources {
		names[i] = string(src)
	}
	if s == "" {
		return "", vward.Errorf(vward.ErrInvalid, "source is required: one of %s", strings.Join(names, ", "))
	}
	return "", vward.Errorf(vward.ErrInvalid, "source %q is not one of %s", s, strings.Join(names, ", "))
}

// Input is an entry as a person gives it: values by reading kind, as device
// protocol v1 writes them (a number; true or false for supplemental_oxygen;
// an ACVPU letter for consciousness).
type Input struct {
	Readings   map[string]json.RawMessage `json:"readings"`
	MeasuredAt string                     `json:"measured_at"` // RFC 3339; "" is now
	Source     string                     `json:"source"`
}

// parsed is a valid Input.
type parsed struct {
	source   Source
	at       time.Time
	readings []vward.Reading // Kind, Value and At only
}

// parse checks an input as ingest checks a device message, naming each
// refused field; it returns vward.ErrInvalid with every problem.
func parse(in Input, now time.Time, lim ingest.Limits) (parsed, error) {
	var problems []string
	src, err := ParseSource(in.Source)
	if err != nil {
		problems = append(problems, err.Error())
	}
	at := now.UTC()
	if in.MeasuredAt != "" {
		t, err := time.Parse(time.RFC3339Nano, in.MeasuredAt)
		if err == nil {
			t, err = ingest.CheckMeasuredAt(t, "measured_at "+in.MeasuredAt, now, lim)
		} else {
			err = fmt.Errorf("measured_at %q is not an RFC 3339 time such as 2026-03-01T14:05:00Z", in.MeasuredAt)
		}
		if err != nil {
			problems = append(problems, err.Error())
		}
		at = t
	}
	kinds := make([]string, 0, len(in.Readings))
	for k := range in.Readings {
		kinds = append(kinds, k)
	}
	// In the protocol's order, so the answer and the audit read the same way each time.
	slices.SortFunc(kinds, func(a, b string) int { return cmp.Or(order(a)-order(b), strings.Compare(a, b)) })
	var rs []vward.Reading
	for _, k := range kinds {
		kind, v, err := ingest.ReadingValue(k, in.Readings[k])
		if err != nil {
			problems = append(problems, fmt.Sprintf("readings.%s: %v", k, err))
			continue
		}
		rs = append(rs, vward.Reading{Kind: kind, Value: v, At: at})
	}
	if len(in.Readings) == 0 {
		problems = append(problems, "readings is required: give at least one value by kind, e.g. {\"respiratory_rate\": 18}")
	}
	if len(problems) > 0 {
		return parsed{}, vward.Errorf(vward.ErrInvalid, "%s", strings.Join(problems, "; "))
	}
	return parsed{source: src, at: at, readings: rs}, nil
}

// order is a kind's place in vward.ReadingKinds; unknown kinds go last.
func order(kind string) int {
	if i := vward.ReadingKind(kind).Index(); i >= 0 {
		return i
	}
	return vward.NumReadingKinds
}

// Entry is one entered set of observations.
type Entry struct {
	ID         int64
	Patient    vward.PatientID
	Ward       vward.WardID
	Source     Source
	Author     string // who entered it: a clinician's username, "cli:<login>"
	MeasuredAt time.Time
	EnteredAt  time.Time
	Readings   []vward.Reading // attributed: Device, Patient, Ward, MsgID set
	// Stored: the readings are in the history (the node writes them;
	// an entry made with the CLI waits for a running node).
	Stored bool
	Error  *ErrorMark // set once marked entered in error
}

// ErrorMark says who marked an entry entered in error, when and why.
type ErrorMark struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// Name is the entry's id as people and the API write it, and its
// readings' msg_id in the history: "obs-12".
func (e Entry) Name() string { return Name(e.ID) }

// Name writes an entry id as "obs-<n>".
func Name(id int64) string { return "obs-" + strconv.FormatInt(id, 10) }

// ParseName reads "obs-12" or "12".
func ParseName(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "obs-"), 10, 64)
	if err != nil || n <= 0 {
		return 0, vward.Errorf(vward.ErrNotFound, "no observation entry %q", s)
	}
	return n, nil
}

// attribute sets each reading's device, patient, ward and msg_id.
func (e *Entry) attribute() {
	for i := range e.Readings {
		r := &e.Readings[i]
		r.Device, r.Patient, r.Ward, r.MsgID, r.At = e.Source.Device(), e.Patient, e.Ward, e.Name(), e.MeasuredAt
	}
}

// summary is the entry's readings as the audit and the CLI say them:
// "respiratory_rate 22/min, consciousness A".
func (e Entry) summary() string {
	parts := make([]string, len(e.Readings))
	for i, r := range e.Readings {
		parts[i] = string(r.Kind) + " " + r.Display() + r.Kind.Unit()
	}
	return strings.Join(parts, ", ")
}
