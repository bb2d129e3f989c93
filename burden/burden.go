// Package burden reports a ward's alarm burden: how many alerts its
// patients raised per patient-day, how fast they were acknowledged, how
// often they escalated, were shelved or cleared unacknowledged, and who
// raised most (docs/alerts.md, "Alarm burden report"). It joins the alert
// audit (alerting) with the registry's stays (devices).
package burden

import (
	"context"
	"math"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
)

// Bounds of a report's window and of its list of patients.
const (
	DefaultDays = 7
	MaxDays     = 90
	DefaultTop  = 10
	MaxTop      = 100
	// MinPatientDays is the least a rate per patient-day is given for.
	MinPatientDays = 1
)

// Alerts is what the report needs of alerting (Engine or Store).
type Alerts interface {
	AlarmBurden(ctx context.Context, ward vward.WardID, from, to time.Time) (alerting.Burden, error)
}

// Stays is what the report needs of the registry.
type Stays interface {
	Ward(ctx context.Context, id vward.WardID) (devices.Ward, error)
	StayDays(ctx context.Context, ward vward.WardID, from, to time.Time) ([]devices.StayDays, error)
}

// Report is a ward's alarm burden over a window.
type Report struct {
	Ward     vward.WardID `json:"ward"`
	WardName string       `json:"ward_name"`
	At       time.Time    `json:"at"`
	// From is midnight Days days back, today included, in the report's
	// time zone, as for the ward report.
	From time.Time `json:"from"`
	Days int       `json:"days"`

	// Patients counts the stays on the ward at any time in the window.
	Patients int `json:"patients"`
	// PatientDays are the days those patients were on the ward and
	// monitored, the denominator of every rate; PausedDays, while paused
	// in hospital, are counted apart.
	PatientDays float64 `json:"patient_days"`
	PausedDays  float64 `json:"paused_days"`

	Alerts int `json:"alerts"`
	// PerPatientDay is Alerts / PatientDays, absent below MinPatientDays.
	PerPatientDay *float64 `json:"per_patient_day,omitempty"`
	ByQueue       []Count  `json:"by_queue"`
	ByCondition   []Count  `json:"by_condition"`
	News2ByRisk   []Count  `json:"news2_by_risk"`

	TimeToAcknowledge []alerting.ResponseTime `json:"time_to_acknowledge"`
	Upgrades          int                     `json:"upgrades"`
	Reraised          int                     `json:"reraised"`
	Escalations       []alerting.TierReached  `json:"escalations"`
	Reminders         int                     `json:"reminders"`
	Shelves           alerting.Shelves        `json:"shelves"`
	// ClearedUnacknowledged counts the times an alert returned to normal
	// before anyone acknowledged it: a sign of alarms nobody needed, or
	// nobody saw.
	ClearedUnacknowledged int          `json:"cleared_unacknowledged"`
	TopPatients           []TopPatient `json:"top_patients"`
}

// Count is the alerts raised of one queue, condition or risk, and their
// rate per patient-day.
type Count struct {
	Queue     alerting.Queue     `json:"queue,omitempty"`
	Condition alerting.Condition `json:"condition,omitempty"`
	Risk      *news2.Risk        `json:"risk,omitempty"`
	Alerts    int                `json:"alerts"`
	// PerPatientDay is absent below MinPatientDays.
	PerPatientDay *float64 `json:"per_patient_day,omitempty"`
	// ClearedUnacknowledged is given per condition.
	ClearedUnacknowledged *int `json:"cleared_unacknowledged,omitempty"`
}

// TopPatient is one of the patients who raised most.
type TopPatient struct {
	Patient     vward.PatientID            `json:"patient"`
	Name        string                     `json:"name"`
	Alerts      int                        `json:"alerts"`
	ByCondition map[alerting.Condition]int `json:"by_condition"`
	PatientDays float64                    `json:"patient_days"`
}

// Build reports on ward over the last days days (today included) as of
// at, days counted in loc, listing the top patients who raised most.
func Build(ctx context.Context, alerts Alerts, stays Stays, ward vward.WardID, days, top int, at time.Time, loc *time.Location) (Report, error) {
	if days < 1 || days > MaxDays {
		return Report{}, vward.Errorf(vward.ErrInvalid, "days=%d: an alarm burden report covers 1 to %d days", days, MaxDays)
	}
	if top < 1 || top > MaxTop {
		return Report{}, vward.Errorf(vward.ErrInvalid, "top=%d: list 1 to %d patients", top, MaxTop)
	}
	if loc == nil {
		loc = time.Local
	}
	w, err := stays.Ward(ctx, ward)
	if err != nil {
		return Report{}, err
	}
	at = at.In(loc)
	y, m, d := at.Date()
	from := time.Date(y, m, d-(days-1), 0, 0, 0, 0, loc)
	ss, err := stays.StayDays(ctx, ward, from, at)
	if err != nil {
		return Report{}, err
	}
	b, err := alerts.AlarmBurden(ctx, ward, from, at)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Ward: w.ID, WardName: w.Name, At: at, From: from, Days: days, Patients: len(ss),
		TimeToAcknowledge: b.TimeToAcknowledge, Upgrades: b.Upgraded, Reraised: b.Reraised,
		Escalations: b.Escalations, Reminders: b.Reminders, Shelves: b.Shelves}
	byPatient := make(map[vward.PatientID]devices.StayDays, len(ss))
	for _, s := range ss {
		rep.PatientDays += s.Days
		rep.PausedDays += s.PausedDays
		byPatient[s.Patient] = s
	}
	// A rate over less than one patient-day (a ward's first hours) says
	// nothing about the ward: it is left out rather than shown huge.
	rate := func(n int) *float64 {
		if round2(rep.PatientDays) < MinPatientDays {
			return nil
		}
		r := math.Round(float64(n)/rep.PatientDays*1000) / 1000
		return &r
	}
	queues := map[alerting.Queue]int{}
	for _, c := range alerting.Conditions {
		n, cleared := b.Raised[c], b.Cleared[c]
		rep.Alerts += n
		rep.ClearedUnacknowledged += cleared
		queues[c.Queue()] += n
		rep.ByCondition = append(rep.ByCondition, Count{Condition: c, Queue: c.Queue(), Alerts: n, PerPatientDay: rate(n), ClearedUnacknowledged: &cleared})
	}
	rep.PerPatientDay = rate(rep.Alerts)
	for _, q := range []alerting.Queue{alerting.Clinical, alerting.Technical} {
		rep.ByQueue = append(rep.ByQueue, Count{Queue: q, Alerts: queues[q], PerPatientDay: rate(queues[q])})
	}
	for _, r := range []news2.Risk{news2.High, news2.Medium, news2.LowMedium} {
		rep.News2ByRisk = append(rep.News2ByRisk, Count{Risk: &r, Alerts: b.News2Raised[r], PerPatientDay: rate(b.News2Raised[r])})
	}
	rep.TopPatients = []TopPatient{}
	for _, p := range b.Patients[:min(top, len(b.Patients))] {
		s := byPatient[p.Patient]
		rep.TopPatients = append(rep.TopPatients, TopPatient{Patient: p.Patient, Name: s.Name, Alerts: p.Alerts,
			ByCondition: p.ByCondition, PatientDays: round2(s.Days)})
	}
	rep.PatientDays, rep.PausedDays = round2(rep.PatientDays), round2(rep.PausedDays)
	return rep, nil
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
