package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/ingest"
)

// RejectionLister reads the dead-letter store, newest first.
type RejectionLister interface {
	List(ctx context.Context, q ingest.RejectionQuery) ([]ingest.Rejection, error)
}

// Ops is what the operators' endpoints read: the dead letters behind
// GET /api/v1/rejections and the registry behind GET /metrics (the node's
// own, not Prometheus's global one).
type Ops struct {
	Rejections RejectionLister
	Metrics    prometheus.Gatherer
	// Registerer takes the HTTP metrics; nil counts nothing.
	Registerer prometheus.Registerer
}

// maxRejections caps one page of GET /api/v1/rejections.
const maxRejections = 1000

// rejections lists kept dead letters, newest first:
// GET /api/v1/rejections?device=ID&limit=N&before=ID (limit 1–1000,
// default 100; before pages on from the last id of the page before).
// Admins only: a dead letter holds a device's raw payload, whatever ward
// its patient is on.
func (s *Server) rejections(w http.ResponseWriter, r *http.Request) {
	if u, _ := CurrentUser(r); u.Role != RoleAdmin {
		writeError(w, http.StatusForbidden, "rejected messages are for administrators")
		return
	}
	if s.Ops.Rejections == nil {
		writeError(w, http.StatusNotFound, "this node keeps no dead letters")
		return
	}
	q := r.URL.Query()
	device := q.Get("device")
	if device != "" {
		if err := devices.ValidID(device); err != nil {
			writeError(w, http.StatusBadRequest, "device: "+err.Error())
			return
		}
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > maxRejections {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to 1000")
			return
		}
		limit = n
	}
	var before int64
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "before must be a rejection's id, from the last page")
			return
		}
		before = n
	}
	rs, err := s.Ops.Rejections.List(r.Context(), ingest.RejectionQuery{Device: vward.DeviceID(device), Before: before, Limit: limit})
	if err != nil {
		s.log.Error("list rejections", "err", err)
		writeError(w, http.StatusInternalServerError, "the dead-letter store is unavailable")
		return
	}
	if rs == nil {
		rs = []ingest.Rejection{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rejections": rs})
}

// metrics serves the node's Prometheus registry. It is public like
// /healthz: it carries counts, never patient data; restrict it at the
// network if the board is exposed.
func (s *Server) metrics() http.Handler {
	if s.Ops.Metrics == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(s.Ops.Metrics, promhttp.HandlerOpts{})
}
