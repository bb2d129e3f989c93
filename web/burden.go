package web

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/burden"
)

// burdenRoutes registers the alarm burden report (docs/alerts.md, "Alarm
// burden report"); it needs both the registry's stays and the alerts.
func (s *Server) burdenRoutes(api *http.ServeMux) {
	if s.Registry == nil {
		return
	}
	api.HandleFunc("GET /api/v1/wards/{id}/alarm-burden", s.alarmBurden)
}

// alarmBurden handles GET /api/v1/wards/{id}/alarm-burden?days=7&top=10.
// Anyone who sees the ward may read it, viewers included; another ward is
// not found.
func (s *Server) alarmBurden(w http.ResponseWriter, r *http.Request) {
	u, ok := s.alertsUser(w, r)
	if !ok {
		return
	}
	id := vward.WardID(r.PathValue("id"))
	if !u.Sees(id) {
		writeError(w, http.StatusNotFound, "no such ward")
		return
	}
	q := r.URL.Query()
	for k := range q {
		if k != "days" && k != "top" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q: give days=N (1–%d) and top=N (1–%d)", k, burden.MaxDays, burden.MaxTop))
			return
		}
	}
	days, ok := intParam(w, q.Get("days"), "days", burden.DefaultDays, burden.MaxDays)
	if !ok {
		return
	}
	top, ok := intParam(w, q.Get("top"), "top", burden.DefaultTop, burden.MaxTop)
	if !ok {
		return
	}
	rep, err := burden.Build(r.Context(), s.Alerts, s.Registry, id, days, top, time.Now(), time.Local)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// intParam reads a whole number from 1 to most, def when left out,
// answering anything else with a 400 that names the parameter.
func intParam(w http.ResponseWriter, v, name string, def, most int) (int, bool) {
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s=%q: want a whole number from 1 to %d", name, v, most))
		return 0, false
	}
	return n, true
}
