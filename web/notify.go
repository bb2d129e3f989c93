package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/notify"
)

// The notification routes (docs/operator.md, "Configuring notification
// channels"). An alert's delivery log is for whoever sees the alert; the
// channels, routes, contacts and rotas are for admins, every change
// audited in the notify store. Secrets are never answered back.
func (s *Server) notifyRoutes(api *http.ServeMux) {
	if s.Notify == nil {
		return
	}
	api.HandleFunc("GET /api/v1/alerts/{id}/notifications", s.alertNotifications)
	api.HandleFunc("GET /api/v1/notify/channels", s.notifyAdmin(s.listChannels))
	api.HandleFunc("PUT /api/v1/notify/channels/{name}", s.notifyAdmin(s.putChannel))
	api.HandleFunc("DELETE /api/v1/notify/channels/{name}", s.notifyAdmin(s.removeChannel))
	api.HandleFunc("GET /api/v1/notify/routes", s.notifyAdmin(s.listRoutes))
	api.HandleFunc("POST /api/v1/notify/routes", s.notifyAdmin(s.addRoute))
	api.HandleFunc("DELETE /api/v1/notify/routes/{id}", s.notifyAdmin(s.removeRoute))
	api.HandleFunc("PUT /api/v1/notify/contacts/{user}/{channel}", s.notifyAdmin(s.setContact))
	api.HandleFunc("GET /api/v1/notify/shifts", s.notifyAdmin(s.listShifts))
	api.HandleFunc("POST /api/v1/notify/shifts", s.notifyAdmin(s.addShift))
	api.HandleFunc("DELETE /api/v1/notify/shifts/{id}", s.notifyAdmin(s.removeShift))
	api.HandleFunc("POST /api/v1/notify/test-send", s.notifyAdmin(s.testSend))
	api.HandleFunc("GET /api/v1/notify/audit", s.notifyAdmin(s.notifyAudit))
}

// notifyAdmin lets only admins through, with the request acting for them.
func (s *Server) notifyAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, _ := CurrentUser(r)
		if u.Role != RoleAdmin {
			writeError(w, http.StatusForbidden, "only an admin may configure notifications")
			return
		}
		h(w, acting(r, u))
	}
}

func (s *Server) notifyError(w http.ResponseWriter, r *http.Request, err error) {
	if status, refused := kindStatus(err); refused {
		writeError(w, status, err.Error())
		return
	}
	s.log.Error("notify", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "notifications are unavailable")
}

// alertNotifications handles GET /api/v1/alerts/{id}/notifications: the
// alert's delivery log, oldest first.
func (s *Server) alertNotifications(w http.ResponseWriter, r *http.Request) {
	u, ok := s.alertsUser(w, r)
	if !ok {
		return
	}
	a, _, ok := s.visibleAlert(w, r, u)
	if !ok {
		return
	}
	ds, err := s.Notify.Store().Deliveries(r.Context(), a.ID)
	if err != nil {
		s.notifyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alert_id": a.ID, "notifications": ds})
}

func (s *Server) listChannels(w http.ResponseWriter, r *http.Request) {
	cs, err := s.Notify.Store().Channels(r.Context())
	if err != nil {
		s.notifyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": cs})
}

func (s *Server) putChannel(w http.ResponseWriter, r *http.Request) {
	var c notify.ChannelConfig
	if !decodeBody(w, r, &c) {
		return
	}
	if c.Name != "" && c.Name != r.PathValue("name") {
		writeError(w, http.StatusBadRequest, "the body's name "+strconv.Quote(c.Name)+" is not the path's")
		return
	}
	c.Name = r.PathValue("name")
	if err := s.Notify.Store().PutChannel(r.Context(), c); err != nil {
		s.notifyError(w, r, err)
		return
	}
	got, err := s.Notify.Store().Channel(r.Context(), c.Name)
	if err != nil {
		s.notifyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, got.View())
}

func (s *Server) removeChannel(w http.ResponseWriter, r *http.Request) {
	if err := s.Notify.Store().RemoveChannel(r.Context(), r.PathValue("name")); err != nil {
		s.notifyError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listRoutes(w http.ResponseWriter, r *http.Request) {
	rs, err := s.Notify.Store().Routes(r.Context(), vward.WardID(r.URL.Query().Get("ward")))
	if err != nil {
		s.notifyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": rs})
}

func (s *Server) addRoute(w http.ResponseWriter, r *http.Request) {
	var rt notify.Route
	if !decodeBody(w, r, &rt) {
		return
	}
	if s.Registry != nil {
		if _, err := s.Registry.Ward(r.Context(), rt.Ward); err != nil && rt.Ward != "" {
			s.notifyError(w, r, err)
			return
		}
	}
	if rt.Queue == "" {
		rt.Queue = alerting.Clinical
	}
	got, err := s.Notify.Store().AddRoute(r.Context(), rt)
	if err != nil {
		s.notifyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, got)
}

func pathID(w http.ResponseWriter, r *http.Request, what string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such "+what)
		return 0, false
	}
	return id, true
}

func (s *Server) removeRoute(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "route")
	if !ok {
		return
	}
	if err := s.Notify.Store().RemoveRoute(r.Context(), id); err != nil {
		s.notifyError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setContact(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Address string `json:"address"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	user := r.PathValue("user")
	if s.Registry != nil {
		if _, err := s.Registry.Clinician(r.Context(), user); err != nil {
			s.notifyError(w, r, err)
			return
		}
	}
	if err := s.Notify.Store().SetContact(r.Context(), user, r.PathValue("channel"), body.Address); err != nil {
		s.notifyError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) listShifts(w http.ResponseWriter, r *http.Request) {
	since := time.Now()
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since must be an RFC 3339 time")
			return
		}
		since = t
	}
	ss, err := s.Notify.Store().Shifts(r.Context(), r.URL.Query().Get("rota"), since)
	if err != nil {
		s.notifyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"shifts": ss})
}

func (s *Server) addShift(w http.ResponseWriter, r *http.Request) {
	var sh notify.Shift
	if !decodeBody(w, r, &sh) {
		return
	}
	got, err := s.Notify.Store().AddShift(r.Context(), sh)
	if err != nil {
		s.notifyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, got)
}

func (s *Server) removeShift(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "shift")
	if !ok {
		return
	}
	if err := s.Notify.Store().RemoveShift(r.Context(), id); err != nil {
		s.notifyError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// testSend handles POST /api/v1/notify/test-send {"channel", "recipient"}:
// one notification, sent now; a failure is answered 502 with its cause.
func (s *Server) testSend(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Channel   string `json:"channel"`
		Recipient string `json:"recipient"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Channel == "" || body.Recipient == "" {
		writeError(w, http.StatusBadRequest, "give the channel and the recipient (a username)")
		return
	}
	if err := s.Notify.TestSend(r.Context(), body.Channel, body.Recipient); err != nil {
		if status, refused := kindStatus(err); refused {
			writeError(w, status, err.Error())
			return
		}
		writeError(w, http.StatusBadGateway, "not delivered: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "sent"})
}

func (s *Server) notifyAudit(w http.ResponseWriter, r *http.Request) {
	es, err := s.Notify.Store().Audit(r.Context(), 200)
	if err != nil {
		s.notifyError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"audit": es})
}
