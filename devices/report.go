package devices

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/vward/vward"
)

// WardReport is a ward's capacity and flow: how full it is now, and who
// came and went over the last days.
type WardReport struct {
	Ward Ward      `json:"ward"`
	At   time.Time `json:"at"`
	// From is the start of the reporting window: midnight, Days days back
	// including today, in the report's time zone.
	From time.Time `json:"from"`
	Days int       `json:"days"`

	Managed  int `json:"managed"` // on the ward now: admitted + paused
	Admitted int `json:"admitted"`
	Paused   int `json:"paused"` // in hospital for now
	Capacity int `json:"capacity"`
	// Occupancy is Managed / Capacity; absent when the ward has no capacity set.
	Occupancy *float64 `json:"occupancy,omitempty"`
	// PastExpectedEnd counts patients on the ward beyond their expected end.
	PastExpectedEnd int `json:"past_expected_end"`

	Flow       []DayFlow `json:"flow"` // one row per day, oldest first
	Admissions int       `json:"admissions"`
	Discharges int       `json:"discharges"`
	// LengthOfStay is of the stays that ended in the window.
	LengthOfStay StayStats `json:"length_of_stay"`
	// CurrentStay is how long the patients on the ward now have been on it.
	CurrentStay StayStats `json:"current_stay"`
	// Outcomes counts the window's discharges by outcome.
	Outcomes map[string]int `json:"outcomes"`
	// StepUp counts the window's handovers from alerts to other services
	// and what came of them (package handover fills it in); absent where
	// handovers are not kept.
	StepUp *StepUp `json:"step_up,omitempty"`
}

// StepUp is a ward's step-up figures over a report's window: the patients
// handed over from an alert to another service (999, the GP, …), by
// destination, and what came of each handover.
type StepUp struct {
	Handovers int `json:"handovers"`
	// ByDestination counts the handovers by destination id ("999", "gp").
	ByDestination map[string]int `json:"by_destination"`
	// Outcomes counts the handovers by recorded outcome ("seen_at_home",
	// "conveyed", "admitted", "no_further_action"); Awaiting those with
	// none yet.
	Outcomes map[string]int `json:"outcomes"`
	Awaiting int            `json:"awaiting_outcome"`
}

// DayFlow is one day's admissions and discharges.
type DayFlow struct {
	Date       string `json:"date"` // YYYY-MM-DD in the report's time zone
	Admissions int    `json:"admissions"`
	Discharges int    `json:"discharges"`
}

// StayStats summarises lengths of stay in days.
type StayStats struct {
	Count      int     `json:"count"`
	MeanDays   float64 `json:"mean_days"`
	MedianDays float64 `json:"median_days"`
	MaxDays    float64 `json:"max_days"`
}

func stayStats(days []float64) StayStats {
	if len(days) == 0 {
		return StayStats{}
	}
	sort.Float64s(days)
	sum := 0.0
	for _, d := range days {
		sum += d
	}
	n := len(days)
	median := days[n/2]
	if n%2 == 0 {
		median = (days[n/2-1] + days[n/2]) / 2
	}
	round := func(f float64) float64 { return math.Round(f*10) / 10 }
	return StayStats{Count: n, MeanDays: round(sum / float64(n)), MedianDays: round(median), MaxDays: round(days[n-1])}
}

// WardReport reports on a ward over the last days days (including today)
// as of at, counting days in loc (the ward's local time: a day's
// admissions are those a person there would call that day's).
func (r *Registry) WardReport(ctx context.Context, id vward.WardID, days int, at time.Time, loc *time.Location) (WardReport, error) {
	if days < 1 {
		return WardReport{}, invalidf("a report covers at least 1 day, not %d", days)
	}
	if days > 366 {
		return WardReport{}, invalidf("a report covers at most 366 days, not %d", days)
	}
	if loc == nil {
		loc = time.Local
	}
	w, err := r.Ward(ctx, id)
	if err != nil {
		return WardReport{}, err
	}
	ps, err := r.ListPatients(ctx, PatientQuery{Ward: id, Discharged: true})
	if err != nil {
		return WardReport{}, err
	}
	at = at.In(loc)
	y, m, d := at.Date()
	from := time.Date(y, m, d-(days-1), 0, 0, 0, 0, loc)
	rep := WardReport{Ward: w, At: at, From: from, Days: days, Capacity: w.Capacity, Outcomes: map[string]int{}}
	index := make(map[string]int, days)
	for i := range days {
		date := time.Date(y, m, d-(days-1)+i, 0, 0, 0, 0, loc).Format(DateLayout)
		rep.Flow = append(rep.Flow, DayFlow{Date: date})
		index[date] = i
	}
	today := at.Format(DateLayout)
	var ended, current []float64
	for _, p := range ps {
		if i, ok := index[p.Admitted.In(loc).Format(DateLayout)]; ok && !p.Admitted.After(at) {
			rep.Flow[i].Admissions++
			rep.Admissions++
		}
		switch p.Status {
		case StatusAdmitted, StatusPaused:
			rep.Managed++
			if p.Status == StatusPaused {
				rep.Paused++
			} else {
				rep.Admitted++
			}
			if p.ExpectedEnd != "" && p.ExpectedEnd < today {
				rep.PastExpectedEnd++
			}
			current = append(current, at.Sub(p.Admitted).Hours()/24)
		case StatusDischarged:
			if p.Discharged == nil {
				continue
			}
			i, ok := index[p.Discharged.In(loc).Format(DateLayout)]
			if !ok || p.Discharged.After(at) {
				continue
			}
			rep.Flow[i].Discharges++
			rep.Discharges++
			rep.Outcomes[p.Outcome]++
			ended = append(ended, p.Discharged.Sub(p.Admitted).Hours()/24)
		}
	}
	rep.LengthOfStay = stayStats(ended)
	rep.CurrentStay = stayStats(current)
	if w.Capacity > 0 {
		o := math.Round(float64(rep.Managed)/float64(w.Capacity)*1000) / 1000
		rep.Occupancy = &o
	}
	return rep, nil
}
