package web

import (
	"net/http"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/notes"
)

// The notes and contact log routes (docs/notes.md): a clinician or an
// admin of the patient's ward writes a note or an addendum to one; a
// viewer may only read them. There is no route to change or remove a
// note. Another ward's patient, or their note, is answered 404.
func (s *Server) noteRoutes(api *http.ServeMux) {
	if s.Notes == nil {
		return
	}
	api.HandleFunc("POST /api/v1/patients/{id}/notes", s.addNote)
	api.HandleFunc("GET /api/v1/patients/{id}/notes", s.listNotes)
	api.HandleFunc("POST /api/v1/notes/{id}/addenda", s.addAddendum)
}

// noteLimit bounds the notes listed at once, newest first.
const noteLimit = 200

type addendumBody struct {
	Text string `json:"text"`
}

func (s *Server) addNote(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	if _, ok := s.visiblePatient(r, id); !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	u, _ := CurrentUser(r)
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "a viewer may not write notes")
		return
	}
	var in notes.Input
	if !decodeBody(w, r, &in) {
		return
	}
	n, err := s.Notes.Add(acting(r, u).Context(), id, in)
	if err != nil {
		s.noteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"note": notes.Present(n)})
}

func (s *Server) listNotes(w http.ResponseWriter, r *http.Request) {
	id := vward.PatientID(r.PathValue("id"))
	if _, ok := s.visiblePatient(r, id); !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	ns, err := s.Notes.List(r.Context(), id, time.Time{}, noteLimit)
	if err != nil {
		s.noteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"patient": id, "notes": notes.Thread(ns)})
}

func (s *Server) addAddendum(w http.ResponseWriter, r *http.Request) {
	n, err := notes.ParseName(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "no such note")
		return
	}
	orig, err := s.Notes.Note(r.Context(), n)
	if err == nil {
		if _, ok := s.visiblePatient(r, orig.Patient); !ok {
			err = vward.ErrNotFound
		}
	}
	if err != nil {
		if status, _ := kindStatus(err); status == http.StatusNotFound {
			writeError(w, http.StatusNotFound, "no such note")
			return
		}
		s.noteError(w, r, err)
		return
	}
	u, _ := CurrentUser(r)
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "a viewer may not write addenda")
		return
	}
	var in addendumBody
	if !decodeBody(w, r, &in) {
		return
	}
	a, err := s.Notes.Addendum(acting(r, u).Context(), n, in.Text)
	if err != nil {
		s.noteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"note": notes.Present(a)})
}

func (s *Server) noteError(w http.ResponseWriter, r *http.Request, err error) {
	if status, refused := kindStatus(err); refused {
		writeError(w, status, err.Error())
		return
	}
	s.log.Error("notes", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "the notes are unavailable")
}
