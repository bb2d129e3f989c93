package web

import (
	"net/http"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/observations"
)

// The observation entry routes (docs/observations.md): a clinician or an
// admin of the patient's ward enters observations taken by telephone, at a
// visit or by a carer, and marks a mistaken entry entered in error; a
// viewer may only list them. Another ward's patient is answered 404.
func (s *Server) observationRoutes(api *http.ServeMux) {
	if s.Observations == nil {
		return
	}
	api.HandleFunc("POST /api/v1/patients/{id}/observations", s.enterObservations)
	api.HandleFunc("GET /api/v1/patients/{id}/observations", s.listObservations)
	api.HandleFunc("POST /api/v1/observations/{id}/entered-in-error", s.markEnteredInError)
}

// entryAnswer is the answer to an entry or its mark: the entry and the
// patient's row rescored with it.
type entryAnswer struct {
	Entry   observations.View `json:"entry"`
	Patient *PatientView      `json:"patient,omitempty"`
}

func (s *Server) answerEntry(w http.ResponseWriter, r *http.Request, status int, e observations.Entry) {
	out := entryAnswer{Entry: observations.Present(e, time.Now(), s.monitor.Freshness())}
	if v, ok := s.visiblePatient(r, e.Patient); ok {
		out.Patient = &v
	}
	writeJSON(w, status, out)
}

func (s *Server) enterObservations(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	if _, ok := s.visiblePatient(r, id); !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	u, _ := CurrentUser(r)
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "a viewer may not enter observations")
		return
	}
	var in observations.Input
	if !decodeBody(w, r, &in) {
		return
	}
	e, err := s.Observations.Enter(acting(r, u).Context(), id, in)
	if err != nil {
		s.observationError(w, r, err)
		return
	}
	s.answerEntry(w, r, http.StatusCreated, e)
}

func (s *Server) listObservations(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	if _, ok := s.visiblePatient(r, id); !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	es, err := s.Observations.Store().List(r.Context(), id, 50)
	if err != nil {
		s.observationError(w, r, err)
		return
	}
	now, f := time.Now(), s.monitor.Freshness()
	out := make([]observations.View, len(es))
	for i, e := range es {
		out[i] = observations.Present(e, now, f)
	}
	writeJSON(w, http.StatusOK, map[string]any{"patient": id, "observations": out})
}

func (s *Server) markEnteredInError(w http.ResponseWriter, r *http.Request) {
	n, err := observations.ParseName(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "no such observation entry")
		return
	}
	e, err := s.Observations.Store().Entry(r.Context(), n)
	if err == nil {
		if _, ok := s.visiblePatient(r, e.Patient); !ok {
			err = vward.ErrNotFound
		}
	}
	if err != nil {
		if status, _ := kindStatus(err); status == http.StatusNotFound {
			writeError(w, http.StatusNotFound, "no such observation entry")
			return
		}
		s.observationError(w, r, err)
		return
	}
	u, _ := CurrentUser(r)
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "a viewer may not mark observations entered in error")
		return
	}
	var in reasonBody
	if !decodeBody(w, r, &in) {
		return
	}
	if e, err = s.Observations.MarkEnteredInError(acting(r, u).Context(), n, in.Reason); err != nil {
		s.observationError(w, r, err)
		return
	}
	s.answerEntry(w, r, http.StatusOK, e)
}

func (s *Server) observationError(w http.ResponseWriter, r *http.Request, err error) {
	if status, refused := kindStatus(err); refused {
		writeError(w, status, err.Error())
		return
	}
	s.log.Error("observation entries", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "the observation entries are unavailable")
}
