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
	Plan      *careplan.Plan `json:"plan"`
	Ended     bool           `json:"ended,omitempty"`
	Author    string         `json:"author"`
	Reason    string         `json:"reason"`
	ChangedAt time.Time      `json:"changed_at"`
}

// Present shows a version.
func Present(v Version) View {
	return View{Patient: v.Patient, Ward: v.Ward, Version: v.Number, Plan: v.Plan, Ended: v.Ended(),
		Author: v.Author, Reason: v.Reason, ChangedAt: v.At}
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
