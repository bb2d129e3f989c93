package web

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/notes"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/planstore"
)

// Timeline is a patient's one timeline (GET /api/v1/patients/{id}/timeline):
// observations people entered, notes and contacts with their addenda,
// changes of the care plan, questionnaires answered on devices, and every
// change of the patient's alerts, newest first.
type Timeline struct {
	Patient vward.PatientID `json:"patient"`
	// From is where the timeline starts: the start of the hours asked
	// for, or later when Truncated.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Truncated says one source had more than the timeline holds: the
	// items before From are left out rather than shown with gaps.
	Truncated bool           `json:"truncated"`
	Items     []TimelineItem `json:"items"`
	// Unavailable names the sources that could not be read: the
	// timeline is shown without them, and says so.
	Unavailable []string `json:"unavailable,omitempty"`
}

// TimelineItem is one line of the timeline: when, who, and what, which is
// one of Observation, Note, CarePlan, or Alert with Event.
type TimelineItem struct {
	At          time.Time             `json:"at"`
	Type        string                `json:"type"` // "observation", "note", "careplan", "questionnaire" or "alert"
	By          string                `json:"by"`
	Observation *observations.View    `json:"observation,omitempty"`
	Note        *notes.View           `json:"note,omitempty"`
	CarePlan    *planstore.ChangeView `json:"care_plan,omitempty"`
	// Questionnaire is one a patient or carer answered on a device.
	Questionnaire *vward.Answered `json:"questionnaire,omitempty"`
	// Alert is the alert as it is now, for its actions; Event the change
	// this item records (without its evidence, which GET
	// /api/v1/alerts/{id} gives).
	Alert *alerting.Alert      `json:"alert,omitempty"`
	Event *alerting.AuditEntry `json:"event,omitempty"`
}

// The kinds of timeline item.
const (
	ItemObservation   = "observation"
	ItemNote          = "note"
	ItemCarePlan      = "careplan"
	ItemQuestionnaire = "questionnaire"
	ItemAlert         = "alert"
)

// timelineRoutes serves the patient's timeline: observations, notes and
// alert events in one answer, so that the patient view makes one call.
func (s *Server) timelineRoutes(api *http.ServeMux) {
	api.HandleFunc("GET /api/v1/patients/{id}/timeline", s.timeline)
}

// timelineLimit bounds the items of each source in one timeline.
const timelineLimit = 500

// timelinePart is what one source gave: its items newest first, and
// whether it had more than it gave.
type timelinePart struct {
	items     []TimelineItem
	truncated bool
}

// mergeTimeline merges the sources' items, newest first. When a source
// was truncated, the timeline starts at its oldest item: before that it
// would show the other sources' items without that one's.
func mergeTimeline(from time.Time, parts ...timelinePart) ([]TimelineItem, time.Time, bool) {
	truncated := false
	for _, p := range parts {
		if p.truncated && len(p.items) > 0 {
			truncated = true
			if oldest := p.items[len(p.items)-1].At; oldest.After(from) {
				from = oldest
			}
		}
	}
	out := []TimelineItem{}
	for _, p := range parts {
		for _, it := range p.items {
			if !it.At.Before(from) {
				out = append(out, it)
			}
		}
	}
	// Ties keep the sources' order and each source's own order.
	slices.SortStableFunc(out, func(a, b TimelineItem) int { return b.At.Compare(a.At) })
	return out, from, truncated
}

// timelineHours reads ?hours=, 24 unless given.
func timelineHours(r *http.Request) (time.Duration, error) {
	h := r.URL.Query().Get("hours")
	if h == "" {
		return 24 * time.Hour, nil
	}
	n, err := strconv.Atoi(h)
	if err != nil || n < 1 || n > 744 {
		return 0, fmt.Errorf("hours=%q: want a whole number of hours from 1 to 744", h)
	}
	return time.Duration(n) * time.Hour, nil
}

func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	if _, ok := s.visiblePatient(r, id); !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	span, err := timelineHours(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	u, _ := CurrentUser(r)
	ctx := r.Context()
	now := time.Now().UTC()
	from := now.Add(-span)
	out := Timeline{Patient: id, To: now}
	var parts []timelinePart
	unavailable := func(what string, err error) {
		s.log.Error("patient timeline", "patient", id, "source", what, "err", err)
		out.Unavailable = append(out.Unavailable, what)
	}

	if s.Observations != nil {
		es, err := s.Observations.Store().List(ctx, id, timelineLimit)
		if err != nil {
			unavailable("entered observations", err)
		} else {
			var p timelinePart
			f := s.monitor.Freshness()
			for _, e := range es {
				if e.MeasuredAt.Before(from) {
					break
				}
				v := observations.Present(e, now, f)
				p.items = append(p.items, TimelineItem{At: e.MeasuredAt, Type: ItemObservation, By: e.Author, Observation: &v})
			}
			p.truncated = len(es) == timelineLimit && len(p.items) == len(es)
			parts = append(parts, p)
		}
	}
	if s.Notes != nil {
		ns, err := s.Notes.List(ctx, id, from, timelineLimit)
		if err != nil {
			unavailable("notes", err)
		} else {
			th := notes.Thread(ns)
			p := timelinePart{truncated: len(th) == timelineLimit}
			for i := range th {
				p.items = append(p.items, TimelineItem{At: th[i].OccurredAt, Type: ItemNote, By: th[i].Author, Note: &th[i]})
			}
			parts = append(parts, p)
		}
	}
	if s.CarePlans != nil {
		vs, err := s.CarePlans.Since(ctx, id, from, timelineLimit)
		if err != nil {
			unavailable("care plan changes", err)
		} else {
			p := timelinePart{truncated: len(vs) == timelineLimit}
			for _, v := range vs {
				c := planstore.PresentChange(v)
				p.items = append(p.items, TimelineItem{At: v.At, Type: ItemCarePlan, By: v.Author, CarePlan: &c})
			}
			parts = append(parts, p)
		}
	}
	if s.Questionnaires != nil {
		qs, err := s.questionnairesSeen(r, id, from)
		if err != nil {
			unavailable("questionnaires", err)
		} else {
			p := timelinePart{truncated: len(qs) == timelineLimit}
			for i := range qs {
				p.items = append(p.items, TimelineItem{At: qs[i].At, Type: ItemQuestionnaire, By: string(qs[i].AnsweredBy), Questionnaire: &qs[i]})
			}
			parts = append(parts, p)
		}
	}
	if s.Alerts != nil {
		p, err := s.alertEvents(r, u, id, from)
		if err != nil {
			unavailable("alert events", err)
		} else {
			parts = append(parts, p)
		}
	} else {
		out.Unavailable = append(out.Unavailable, "alert events")
	}
	out.Items, out.From, out.Truncated = mergeTimeline(from, parts...)
	writeJSON(w, http.StatusOK, out)
}

// alertEvents is every change of the patient's alerts since from, each
// with its alert as it is now; alerts of wards the user does not see
// (before a transfer) are left out.
func (s *Server) alertEvents(r *http.Request, u User, id vward.PatientID, from time.Time) (timelinePart, error) {
	f := alerting.Filter{Patient: id, Limit: 1000}
	if u.Role != RoleAdmin {
		f.Wards = append([]vward.WardID{}, u.Wards...)
	}
	as, err := s.Alerts.Alerts(r.Context(), f)
	if err != nil {
		return timelinePart{}, err
	}
	byID := make(map[int64]*alerting.Alert, len(as))
	for i := range as {
		byID[as[i].ID] = &as[i]
	}
	es, err := s.Alerts.PatientAudit(r.Context(), id, from, timelineLimit)
	if err != nil {
		return timelinePart{}, err
	}
	p := timelinePart{truncated: len(es) == timelineLimit}
	for i := range es {
		e := &es[i]
		a, ok := byID[e.AlertID]
		if !ok || !u.Sees(e.Ward) {
			continue
		}
		e.Observations = nil
		p.items = append(p.items, TimelineItem{At: e.At, Type: ItemAlert, By: cmp.Or(e.Actor, alerting.System), Alert: a, Event: e})
	}
	return p, nil
}
