package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
)

// AlertService is what the alert API needs of alerting.Engine.
type AlertService interface {
	Alerts(ctx context.Context, f alerting.Filter) ([]alerting.Alert, error)
	Alert(ctx context.Context, id int64) (alerting.Alert, []alerting.AuditEntry, error)
	Acknowledge(ctx context.Context, id int64, actor, note string) (alerting.Alert, error)
	Resolve(ctx context.Context, id int64, actor, note string) (alerting.Alert, error)
	Shelve(ctx context.Context, id int64, actor string, d time.Duration, reason string) (alerting.Alert, error)
	ResponseTimes(ctx context.Context, wards []vward.WardID, since time.Time) ([]alerting.ResponseTime, error)
	// AlarmBurden is a ward's alert figures over a window, for the alarm
	// burden report (burden.go).
	AlarmBurden(ctx context.Context, ward vward.WardID, from, to time.Time) (alerting.Burden, error)
	// PatientAudit is every change of a patient's alerts since a time,
	// newest first: the alert events of the patient's timeline.
	PatientAudit(ctx context.Context, patient vward.PatientID, since time.Time, limit int) ([]alerting.AuditEntry, error)
	// Expected is what the patient's care plan expects, with when each was
	// last made and falls due: the care plan panel's.
	Expected(patient vward.PatientID) []alerting.ExpectedStatus
}

// alertRoutes registers the alert API (docs/alerts.md) on mux.
func (s *Server) alertRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/alerts", s.listAlerts)
	mux.HandleFunc("GET /api/v1/alerts/{id}", s.getAlert)
	mux.HandleFunc("POST /api/v1/alerts/{id}/ack", s.ackAlert)
	mux.HandleFunc("POST /api/v1/alerts/{id}/resolve", s.resolveAlert)
	mux.HandleFunc("POST /api/v1/alerts/{id}/shelve", s.shelveAlert)
	mux.HandleFunc("GET /api/v1/reports/response-times", s.responseTimes)
}

// publishAlert queues an alert event for every client that sees its ward, in
// order and without coalescing: each change of an alert is news. A client
// whose queue is full is dropped rather than slowing the publisher or losing
// an alert quietly; it reconnects and reads the open alerts afresh.
func (h *Hub) publishAlert(e alerting.Event) {
	b, err := json.Marshal(eventOf(e))
	if err != nil {
		h.log.Error("encode alert event", "err", err)
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.clients {
		if !c.sees(e.Alert.Ward) {
			continue
		}
		c.mu.Lock()
		c.stampLocked()
		if len(c.alerts) >= maxQueuedAlerts {
			c.alertOverflow = true
		} else {
			c.alerts = append(c.alerts, b)
		}
		c.mu.Unlock()
		c.wakeWriter()
	}
}

// maxQueuedAlerts bounds the alert events waiting for one board client.
const maxQueuedAlerts = 1024

// alertsUser answers 401 without a signed-in user and 503 without alerting.
func (s *Server) alertsUser(w http.ResponseWriter, r *http.Request) (User, bool) {
	u, ok := CurrentUser(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "sign in first")
		return User{}, false
	}
	if s.Alerts == nil {
		writeError(w, http.StatusServiceUnavailable, "alerting is not running")
		return User{}, false
	}
	return u, true
}

// visibleWards returns the wards a user's query covers: the one asked for,
// or all the user's (nil for an admin, meaning every ward). A ward the user
// does not have is not found.
func visibleWards(w http.ResponseWriter, u User, ward string) ([]vward.WardID, bool) {
	if ward != "" {
		if !u.Sees(vward.WardID(ward)) {
			writeError(w, http.StatusNotFound, "no such ward")
			return nil, false
		}
		return []vward.WardID{vward.WardID(ward)}, true
	}
	if u.Role == RoleAdmin {
		return nil, true
	}
	return append([]vward.WardID{}, u.Wards...), true
}

var alertStates = map[string]bool{
	"": true, "open": true, string(alerting.Raised): true, string(alerting.Acknowledged): true,
	string(alerting.Shelved): true, string(alerting.Cleared): true, string(alerting.Resolved): true,
}

// listAlerts handles GET /api/v1/alerts?state=&ward=&patient=&condition=&queue=&limit=.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	u, ok := s.alertsUser(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := alerting.Filter{
		State: q.Get("state"), Patient: vward.PatientID(q.Get("patient")),
		Condition: alerting.Condition(q.Get("condition")), Queue: alerting.Queue(q.Get("queue")),
	}
	if !alertStates[f.State] {
		writeError(w, http.StatusBadRequest, "state must be open, raised, acknowledged, shelved, cleared or resolved")
		return
	}
	switch f.Condition {
	case "", alerting.News2, alerting.Overdue, alerting.DeviceOffline, alerting.BatteryLow, alerting.ChannelFailing, alerting.CarePlan, alerting.Concern:
	default:
		writeError(w, http.StatusBadRequest, "condition must be news2, overdue, device_offline, battery_low, channel_failing, care_plan or concern")
		return
	}
	if f.Queue != "" && f.Queue != alerting.Clinical && f.Queue != alerting.Technical {
		writeError(w, http.StatusBadRequest, "queue must be clinical or technical")
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "limit must be 1 to 1000")
			return
		}
		f.Limit = n
	}
	if f.Wards, ok = visibleWards(w, u, q.Get("ward")); !ok {
		return
	}
	as, err := s.Alerts.Alerts(r.Context(), f)
	if err != nil {
		s.log.Error("list alerts", "err", err)
		writeError(w, http.StatusInternalServerError, "alerts are unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": as})
}

// visibleAlert reads the alert of the request's {id}, answering 404 for
// one the user may not see.
func (s *Server) visibleAlert(w http.ResponseWriter, r *http.Request, u User) (alerting.Alert, []alerting.AuditEntry, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "no such alert")
		return alerting.Alert{}, nil, false
	}
	a, audit, err := s.Alerts.Alert(r.Context(), id)
	switch {
	case errors.Is(err, vward.ErrNotFound) || err == nil && !u.Sees(a.Ward):
		writeError(w, http.StatusNotFound, "no such alert")
		return alerting.Alert{}, nil, false
	case err != nil:
		s.log.Error("read alert", "alert", id, "err", err)
		writeError(w, http.StatusInternalServerError, "alerts are unavailable")
		return alerting.Alert{}, nil, false
	}
	return a, audit, true
}

// AlertWithAudit is the body of GET /api/v1/alerts/{id}.
type AlertWithAudit struct {
	alerting.Alert
	Audit []alerting.AuditEntry `json:"audit"`
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) {
	u, ok := s.alertsUser(w, r)
	if !ok {
		return
	}
	a, audit, ok := s.visibleAlert(w, r, u)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, AlertWithAudit{Alert: a, Audit: audit})
}

// alertAction runs a clinician's action on the request's alert: 401 without
// a user, 403 for a viewer, 404 for an alert the user may not see.
func (s *Server) alertAction(w http.ResponseWriter, r *http.Request, b body, act func(ctx context.Context, id int64, actor string) (alerting.Alert, error)) {
	u, ok := s.alertsUser(w, r)
	if !ok {
		return
	}
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "viewers may not change alerts")
		return
	}
	a, _, ok := s.visibleAlert(w, r, u)
	if !ok {
		return
	}
	if err := decodeOptional(w, r, b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if why := checkBody(b); why != "" {
		// In the words alerting refuses an action with.
		writeError(w, http.StatusBadRequest, "invalid request: "+why)
		return
	}
	got, err := act(r.Context(), a.ID, u.Username)
	switch status, refused := kindStatus(err); {
	case err == nil:
		writeJSON(w, http.StatusOK, got)
	case status == http.StatusNotFound:
		writeError(w, status, "no such alert")
	case refused:
		writeError(w, status, err.Error())
	default:
		s.log.Error("alert action", "alert", a.ID, "user", u.Username, "err", err)
		writeError(w, http.StatusInternalServerError, "the alert could not be changed")
	}
}

// decodeOptional reads a JSON body into v; an empty body leaves v as is.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		return errors.New("the body is too large")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errors.New("the body is not the JSON this endpoint takes")
	}
	return nil
}

// noteBody is the body of an acknowledgement or a resolution. Free text in
// an audit record is at most 2000 characters.
type noteBody struct {
	Note string `json:"note" validate:"max=2000"`
}

func (*noteBody) refusals() map[string]string {
	return map[string]string{"Note max": "a note may be at most 2000 characters"}
}

// ackAlert handles POST /api/v1/alerts/{id}/ack {"note": "..."} (optional).
func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request) {
	var b noteBody
	s.alertAction(w, r, &b, func(ctx context.Context, id int64, actor string) (alerting.Alert, error) {
		return s.Alerts.Acknowledge(ctx, id, actor, strings.TrimSpace(b.Note))
	})
}

// resolveAlert handles POST /api/v1/alerts/{id}/resolve {"note": "..."} (optional).
func (s *Server) resolveAlert(w http.ResponseWriter, r *http.Request) {
	var b noteBody
	s.alertAction(w, r, &b, func(ctx context.Context, id int64, actor string) (alerting.Alert, error) {
		return s.Alerts.Resolve(ctx, id, actor, strings.TrimSpace(b.Note))
	})
}

// shelveBody is the body of a shelve. Alerting bounds the minutes by the
// ward's policy.
type shelveBody struct {
	Minutes int    `json:"minutes" validate:"min=1"`
	Reason  string `json:"reason" validate:"notblank,max=2000"`
}

func (*shelveBody) refusals() map[string]string {
	return map[string]string{
		"Minutes min":     `send {"minutes": N, "reason": "..."} with N at least 1`,
		"Reason notblank": "shelving needs a reason",
		"Reason max":      "a reason may be at most 2000 characters",
	}
}

// shelveAlert handles POST /api/v1/alerts/{id}/shelve {"minutes": N, "reason": "..."}.
func (s *Server) shelveAlert(w http.ResponseWriter, r *http.Request) {
	var b shelveBody
	s.alertAction(w, r, &b, func(ctx context.Context, id int64, actor string) (alerting.Alert, error) {
		return s.Alerts.Shelve(ctx, id, actor, time.Duration(b.Minutes)*time.Minute, b.Reason)
	})
}

// responseTimes handles GET /api/v1/reports/response-times?ward=&days=: time
// to acknowledge clinical alerts by ward and risk, over the last 30 days
// unless days (1–366) says otherwise.
func (s *Server) responseTimes(w http.ResponseWriter, r *http.Request) {
	u, ok := s.alertsUser(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	days := 30
	if d := q.Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 366 {
			writeError(w, http.StatusBadRequest, "days must be 1 to 366")
			return
		}
		days = n
	}
	wards, ok := visibleWards(w, u, q.Get("ward"))
	if !ok {
		return
	}
	since := time.Now().Add(-time.Duration(days) * 24 * time.Hour).UTC()
	rows, err := s.Alerts.ResponseTimes(r.Context(), wards, since)
	if err != nil {
		s.log.Error("response times", "err", err)
		writeError(w, http.StatusInternalServerError, "the report is unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"since": since, "days": days, "response_times": rows})
}
