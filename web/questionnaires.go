package web

import (
	"net/http"
	"time"

	"github.com/vward/vward"
)

// questionnaireRoutes serves what patients and carers answered on their
// devices (docs/device-protocol.md, "Questionnaires"): read-only, since a
// questionnaire comes from a device, never from the board. Another ward's
// patient is answered 404, and a questionnaire answered while the patient
// was on a ward the user does not see is left out.
func (s *Server) questionnaireRoutes(api *http.ServeMux) {
	if s.Questionnaires == nil {
		return
	}
	api.HandleFunc("GET /api/v1/patients/{id}/questionnaires", s.listQuestionnaires)
}

func (s *Server) listQuestionnaires(w http.ResponseWriter, r *http.Request) {
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
	qs, err := s.questionnairesSeen(r, id, time.Now().Add(-span))
	if err != nil {
		s.log.Error("list questionnaires", "patient", id, "err", err)
		writeError(w, http.StatusInternalServerError, "questionnaires could not be read")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"patient": id, "questionnaires": qs})
}

// questionnairesSeen is the patient's questionnaires since from, newest
// first, of the wards the user sees.
func (s *Server) questionnairesSeen(r *http.Request, id vward.PatientID, from time.Time) ([]vward.Answered, error) {
	u, _ := CurrentUser(r)
	qs, err := s.Questionnaires.List(r.Context(), id, from, timelineLimit)
	if err != nil {
		return nil, err
	}
	seen := qs[:0]
	for _, q := range qs {
		if u.Sees(q.Ward) {
			seen = append(seen, q)
		}
	}
	return seen, nil
}
