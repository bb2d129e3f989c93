package devices

import (
	"context"
	"fmt"
	"time"

	"github.com/vward/vward"
)

// StayDays is how long one patient was on a ward within a window: the
// denominator of the alarm burden report's rates (package burden).
type StayDays struct {
	Patient vward.PatientID `json:"patient"`
	Name    string          `json:"name"`
	// Days are those on the ward and monitored; PausedDays those paused
	// (in hospital for now), counted apart.
	Days       float64 `json:"days"`
	PausedDays float64 `json:"paused_days"`
}

// pauseEdge is a pause or a resume of a stay, from the registry's audit.
type pauseEdge struct {
	at     time.Time
	paused bool // true for a pause, false for a resume
}

// StayDays returns, for every stay on the ward at any time in [from, to),
// the days it spent there monitored and paused, by name. A pause lasts from
// its audit record to the resume's (or the discharge, or to).
func (r *Registry) StayDays(ctx context.Context, ward vward.WardID, from, to time.Time) ([]StayDays, error) {
	ps, err := r.ListPatients(ctx, PatientQuery{Ward: ward, Discharged: true})
	if err != nil {
		return nil, err
	}
	rows, err := r.db.QueryContext(ctx, `SELECT a.subject, a.action, a.at FROM registry_audit a
		JOIN patients p ON a.subject = 'patient:' || p.id
		WHERE p.ward_id = ? AND a.action IN ('patient.pause', 'patient.resume') ORDER BY a.id`, ward)
	if err != nil {
		return nil, fmt.Errorf("read the pauses of ward %s: %w", ward, err)
	}
	defer rows.Close()
	edges := map[string][]pauseEdge{}
	for rows.Next() {
		var subject, action, at string
		if err := rows.Scan(&subject, &action, &at); err != nil {
			return nil, fmt.Errorf("read the pauses of ward %s: %w", ward, err)
		}
		edges[subject] = append(edges[subject], pauseEdge{at: parseTime(at), paused: action == "patient.pause"})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the pauses of ward %s: %w", ward, err)
	}
	out := []StayDays{}
	for _, p := range ps {
		end := to
		if p.Discharged != nil && p.Discharged.Before(end) {
			end = *p.Discharged
		}
		if !p.Admitted.Before(end) || !end.After(from) {
			continue
		}
		on, paused := stayWithin(p.Admitted, end, edges[patientSubject(string(p.ID))], from, to)
		out = append(out, StayDays{Patient: p.ID, Name: p.Name, Days: on.Hours() / 24, PausedDays: paused.Hours() / 24})
	}
	return out, nil
}

// stayWithin splits the part of a stay [start, end) inside [from, to) into
// time monitored and time paused, given the stay's pauses and resumes in
// order.
func stayWithin(start, end time.Time, edges []pauseEdge, from, to time.Time) (on, paused time.Duration) {
	overlap := func(a, b time.Time) time.Duration {
		a, b = later(a, later(start, from)), earlier(b, earlier(end, to))
		if b.After(a) {
			return b.Sub(a)
		}
		return 0
	}
	total := overlap(start, end)
	var since time.Time // start of the pause in force, zero if none
	for _, e := range edges {
		switch {
		case e.paused && since.IsZero():
			since = e.at
		case !e.paused && !since.IsZero():
			paused += overlap(since, e.at)
			since = time.Time{}
		}
	}
	if !since.IsZero() {
		paused += overlap(since, end)
	}
	return total - paused, paused
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
