package planstore

import (
	"errors"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
)

// View is a version as the REST API and the CLI show it. Plan is in the
// format careplan.Parse reads, so a plan read can be edited and put back.
type View struct {
	Patient vward.PatientID `json:"patient"`
	Ward    vward.WardID    `json:"ward"`
	Version int             `json:"version"`
	// Plan is null for the version that ended the plan.
	Plan  *careplan.Plan `json:"plan"`
	Ended bool           `json:"ended,omitempty"`
	// Words are the plan in words, for people: what each rule watches
	// and how often each measurement is expected.
	Words     *Words    `json:"words,omitempty"`
	Author    string    `json:"author"`
	Reason    string    `json:"reason"`
	ChangedAt time.Time `json:"changed_at"`
}

// Words are a plan in words, in the plan's order.
type Words struct {
	Expected []string `json:"expected"`
	Rules    []string `json:"rules"` // each rule's Condition
}

// Present shows a version.
func Present(v Version) View {
	out := View{Patient: v.Patient, Ward: v.Ward, Version: v.Number, Plan: v.Plan, Ended: v.Ended(),
		Author: v.Author, Reason: v.Reason, ChangedAt: v.At}
	if p := v.Plan; p != nil {
		out.Words = &Words{Expected: make([]string, len(p.Expected)), Rules: make([]string, len(p.Rules))}
		for i, e := range p.Expected {
			out.Words.Expected[i] = Expectation(e)
		}
		for i, r := range p.Rules {
			out.Words.Rules[i] = Condition(r)
		}
	}
	return out
}

// PresentAll shows versions in the order given.
func PresentAll(vs []Version) []View {
	out := make([]View, len(vs))
	for i, v := range vs {
		out[i] = Present(v)
	}
	return out
}

// ProblemView is one of careplan's problems with a plan, as the REST API
// answers it.
type ProblemView struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Problems returns the problems err lists, if it is careplan's
// *InvalidError, and nil otherwise.
func Problems(err error) []ProblemView {
	var inv *careplan.InvalidError
	if !errors.As(err, &inv) {
		return nil
	}
	out := make([]ProblemView, len(inv.Problems))
	for i, p := range inv.Problems {
		out[i] = ProblemView{Field: p.Field, Message: p.Message}
	}
	return out
}

// ChangeView is a version as the patient's timeline shows it: what changed,
// by whom and why, without the plan itself.
type ChangeView struct {
	Version int    `json:"version"`
	Name    string `json:"name,omitempty"` // the plan's name; empty when ended
	Ended   bool   `json:"ended,omitempty"`
	Reason  string `json:"reason"`
	// Ceiling is the treatment escalation plan's ceiling of care, if any.
	Ceiling careplan.Ceiling `json:"ceiling,omitempty"`
}

// PresentChange shows a version for the timeline.
func PresentChange(v Version) ChangeView {
	c := ChangeView{Version: v.Number, Ended: v.Ended(), Reason: v.Reason}
	if v.Plan != nil {
		c.Name = v.Plan.Name
		if e := v.Plan.Escalation; e != nil {
			c.Ceiling = e.Ceiling
		}
	}
	return c
}
