package web

import (
	"encoding/json"
	"net/http"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
	"github.com/vward/vward/planstore"
)

// The care plan routes (docs/careplans.md): anyone who may see the
// patient reads their plan and its versions; a clinician or an admin of
// the patient's ward puts a new version or ends the plan, each with a
// reason. Another ward's patient is answered 404, as for notes.
func (s *Server) carePlanRoutes(api *http.ServeMux) {
	if s.CarePlans == nil {
		return
	}
	api.HandleFunc("GET /api/v1/patients/{id}/careplan", s.carePlan)
	api.HandleFunc("PUT /api/v1/patients/{id}/careplan", s.putCarePlan)
	api.HandleFunc("DELETE /api/v1/patients/{id}/careplan", s.endCarePlan)
	api.HandleFunc("GET /api/v1/patients/{id}/careplan/history", s.carePlanHistory)
	api.HandleFunc("GET /api/v1/careplan/templates", s.carePlanTemplates)
}

// carePlanBody is a new version: the plan in careplan's format (or, with
// template, a pathway template's copy), why it changes and, optionally,
// the version it was made from.
type carePlanBody struct {
	Plan        json.RawMessage `json:"plan"`
	Template    string          `json:"template"`
	Reason      string          `json:"reason"`
	BaseVersion int             `json:"base_version"`
}

func (s *Server) carePlan(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	if _, ok := s.visiblePatient(r, id); !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	v, err := s.CarePlans.Current(r.Context(), id)
	if err != nil {
		s.carePlanError(w, r, err)
		return
	}
	out := map[string]any{"care_plan": planstore.Present(v)}
	if s.Alerts != nil && !v.Ended() {
		// When each expected measurement was last made and falls due.
		out["expected"] = s.Alerts.Expected(id)
	}
	writeJSON(w, http.StatusOK, out)
}

// mayChangeCarePlan answers 404 or 403 unless the request's user may
// change the patient's plan.
func (s *Server) mayChangeCarePlan(w http.ResponseWriter, r *http.Request, id vward.PatientID) (User, bool) {
	if _, ok := s.visiblePatient(r, id); !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return User{}, false
	}
	u, _ := CurrentUser(r)
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "a viewer may not change a care plan")
		return User{}, false
	}
	return u, true
}

func (s *Server) putCarePlan(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	u, ok := s.mayChangeCarePlan(w, r, id)
	if !ok {
		return
	}
	var in carePlanBody
	// A plan may be as large as careplan allows, and the body holds it
	// with its reason.
	if !decodeBodyUpTo(w, r, &in, careplan.MaxPlanBytes+8<<10) {
		return
	}
	if string(in.Plan) == "null" {
		in.Plan = nil
	}
	v, err := s.CarePlans.Set(acting(r, u).Context(), id, planstore.Change{Plan: in.Plan, Template: in.Template, Reason: in.Reason, Base: in.BaseVersion})
	if err != nil {
		s.carePlanError(w, r, err)
		return
	}
	s.followCarePlan(r, id)
	writeJSON(w, http.StatusOK, map[string]any{"care_plan": planstore.Present(v)})
}

func (s *Server) endCarePlan(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	u, ok := s.mayChangeCarePlan(w, r, id)
	if !ok {
		return
	}
	var in reasonBody
	if !decodeBody(w, r, &in) {
		return
	}
	v, err := s.CarePlans.End(acting(r, u).Context(), id, in.Reason)
	if err != nil {
		s.carePlanError(w, r, err)
		return
	}
	s.followCarePlan(r, id)
	writeJSON(w, http.StatusOK, map[string]any{"care_plan": planstore.Present(v)})
}

// followCarePlan tells the monitor of the change at once, so that the
// plan's rules alert from the next reading; failing that, the follower's
// next read of the store does.
func (s *Server) followCarePlan(r *http.Request, id vward.PatientID) {
	if s.CarePlanSync == nil {
		return
	}
	if err := s.CarePlanSync.Patient(r.Context(), id); err != nil {
		s.log.Warn("care plan changed but not yet watched; the next read of the plans retries", "patient", id, "err", err)
	}
}

func (s *Server) carePlanHistory(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	if _, ok := s.visiblePatient(r, id); !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	vs, err := s.CarePlans.History(r.Context(), id)
	if err != nil {
		s.carePlanError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"patient": id, "versions": planstore.PresentAll(vs)})
}

// carePlanTemplate is a pathway template as the API lists it.
type carePlanTemplate struct {
	Name string         `json:"name"`
	Plan *careplan.Plan `json:"plan"`
}

func (s *Server) carePlanTemplates(w http.ResponseWriter, r *http.Request) {
	out := []carePlanTemplate{}
	for _, name := range careplan.TemplateNames() {
		p, err := careplan.Template(name)
		if err != nil {
			s.carePlanError(w, r, err)
			return
		}
		out = append(out, carePlanTemplate{Name: name, Plan: p})
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": out})
}

// carePlanError answers a refusal with its status; an invalid plan with
// its problems, each naming the field, as well as the message.
func (s *Server) carePlanError(w http.ResponseWriter, r *http.Request, err error) {
	if status, refused := kindStatus(err); refused {
		if ps := planstore.Problems(err); ps != nil {
			writeJSON(w, status, map[string]any{"error": err.Error(), "problems": ps})
			return
		}
		writeError(w, status, err.Error())
		return
	}
	s.log.Error("care plans", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "the care plans are unavailable")
}
