package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/handover"
)

// HandoverService is what the handover API needs (handover.Service).
type HandoverService interface {
	Handover(ctx context.Context, alertID int64, destination, note string) (handover.Handover, error)
	Handovers(ctx context.Context, alertID int64) ([]handover.Handover, error)
	Get(ctx context.Context, id int64) (handover.Handover, error)
	RecordOutcome(ctx context.Context, id int64, outcome, note string) (handover.Handover, error)
	StepUp(ctx context.Context, ward vward.WardID, from, to time.Time) (devices.StepUp, error)
}

// handoverRoutes registers the handover API (docs/alerts.md, "Handing
// over (SBARD)"): a clinician of the alert's ward hands the patient over
// and later records the outcome; a viewer may only read them.
func (s *Server) handoverRoutes(api *http.ServeMux) {
	if s.Handovers == nil {
		return
	}
	api.HandleFunc("POST /api/v1/alerts/{id}/handover", s.handOver)
	api.HandleFunc("GET /api/v1/alerts/{id}/handovers", s.listHandovers)
	api.HandleFunc("POST /api/v1/handovers/{id}/outcome", s.handoverOutcome)
}

// handoverBody is the body of a handover.
type handoverBody struct {
	Destination string `json:"destination"`
	Note        string `json:"note"`
}

// outcomeBody is the body of an outcome.
type outcomeBody struct {
	Outcome string `json:"outcome"`
	Note    string `json:"note"`
}

func (s *Server) handOver(w http.ResponseWriter, r *http.Request) {
	u, ok := s.alertsUser(w, r)
	if !ok {
		return
	}
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "viewers may not hand patients over")
		return
	}
	a, _, ok := s.visibleAlert(w, r, u)
	if !ok {
		return
	}
	var in handoverBody
	if !decodeBody(w, r, &in) {
		return
	}
	h, err := s.Handovers.Handover(acting(r, u).Context(), a.ID, in.Destination, in.Note)
	if err != nil {
		s.handoverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, h)
}

func (s *Server) listHandovers(w http.ResponseWriter, r *http.Request) {
	u, ok := s.alertsUser(w, r)
	if !ok {
		return
	}
	a, _, ok := s.visibleAlert(w, r, u)
	if !ok {
		return
	}
	hs, err := s.Handovers.Handovers(r.Context(), a.ID)
	if err != nil {
		s.handoverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alert": a.ID, "handovers": hs})
}

func (s *Server) handoverOutcome(w http.ResponseWriter, r *http.Request) {
	u, ok := CurrentUser(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "sign in first")
		return
	}
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "viewers may not record the outcome of a handover")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such handover")
		return
	}
	h, err := s.Handovers.Get(r.Context(), id)
	if err == nil && !u.Sees(h.Ward) {
		err = vward.ErrNotFound
	}
	if err != nil {
		s.handoverError(w, r, err)
		return
	}
	var in outcomeBody
	if !decodeBody(w, r, &in) {
		return
	}
	if h, err = s.Handovers.RecordOutcome(acting(r, u).Context(), id, in.Outcome, in.Note); err != nil {
		s.handoverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) handoverError(w http.ResponseWriter, r *http.Request, err error) {
	switch status, refused := kindStatus(err); {
	case status == http.StatusNotFound:
		writeError(w, status, "no such handover or alert")
	case refused:
		writeError(w, status, err.Error())
	default:
		s.log.Error("handovers", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "handovers are unavailable")
	}
}

// stepUp adds a ward report's step-up figures, when handovers are kept.
func (s *Server) stepUp(ctx context.Context, rep *devices.WardReport) error {
	if s.Handovers == nil {
		return nil
	}
	su, err := s.Handovers.StepUp(ctx, rep.Ward.ID, rep.From, rep.At)
	if err != nil {
		return err
	}
	rep.StepUp = &su
	return nil
}
