// Package web serves the clinicians' board: the page itself (embedded in
// the binary), the REST API and the live websocket stream.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/notes"
	"github.com/vward/vward/notify"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/planstore"
	"github.com/vward/vward/questionnaires"
	"github.com/vward/vward/registrysync"
	"github.com/vward/vward/tokens"
)

//go:embed static
var static embed.FS

// Check is one dependency's readiness probe, for /readyz.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
	// Degrades says a failure is reported in /readyz's answer but leaves
	// the node ready: it works on without the dependency for now (the
	// history behind the journal).
	Degrades bool
}

// SystemStatus is what the board tells clinicians of vward itself: whether
// readings reach the history and whether alerts are live.
type SystemStatus struct {
	// History is "ok", "delayed" (the history is behind; alerts are
	// live) or "stalled" (new readings wait at the broker; alerts can
	// stall).
	History string `json:"history"`
	// BehindSeconds is how far the history is behind, when delayed.
	BehindSeconds float64 `json:"behind_seconds,omitempty"`
	// Message is the banner's text; empty when all is well.
	Message string `json:"message,omitempty"`
}

// History states of SystemStatus.
const (
	HistoryOK      = "ok"
	HistoryDelayed = "delayed"
	HistoryStalled = "stalled"
)

// WardDirectory lists the wards, for the board's header and filters.
type WardDirectory interface {
	Wards(ctx context.Context) ([]devices.Ward, error)
}

// Deps are what the HTTP side is built from.
type Deps struct {
	Auth    *Auth
	Monitor *alerting.Monitor
	History history.Store
	Hub     *Hub
	Wards   WardDirectory
	Checks  []Check // readiness probes, for /readyz
	// Status says how vward itself is, for the board's banner; nil
	// always answers ok.
	Status func() SystemStatus
	Ops    Ops          // dead letters and metrics, for operators (ops.go)
	Alerts AlertService // the alert API (alerts.go); nil answers 503
	// Registry serves the registry API: wards, patients' stays, devices
	// (registry.go); nil leaves those routes out.
	Registry *devices.Registry
	// Sync tells the monitor of each registry change made here at once
	// (registrysync); nil builds one of Registry into Monitor.
	Sync RegistrySync
	// Observations serves the observations people enter
	// (observations.go); nil leaves those routes out.
	Observations *observations.Service
	// Notes serves the patients' notes and contact log (notes.go); nil
	// leaves those routes out.
	Notes *notes.Store
	// Questionnaires serves what patients and carers answered on their
	// devices (questionnaires.go); nil leaves those routes out.
	Questionnaires *questionnaires.Store
	// CarePlans serves the patients' care plans (careplans.go); nil
	// leaves those routes out.
	CarePlans *planstore.Store
	// CarePlanSync tells the monitor of each care plan change made here at
	// once (planstore.Follower); nil builds one of CarePlans into Monitor.
	CarePlanSync CarePlanSync
	// Handovers hands patients over from alerts (handovers.go) and adds
	// the ward report's step-up figures; nil leaves those out.
	Handovers HandoverService
	// Notify serves the delivery logs and the notification settings
	// (notify.go); nil leaves those routes out.
	Notify *notify.Dispatcher
	// Tokens lets machine clients read FHIR with a Bearer token, and
	// admins manage the tokens (tokens.go); nil leaves both out.
	Tokens *tokens.Store
	Log    *slog.Logger
}

// RegistrySync brings the monitor up to date with the registry after a
// change (registrysync.Sync).
type RegistrySync interface {
	Patient(ctx context.Context, id vward.PatientID) error
	Device(ctx context.Context, id vward.DeviceID)
}

// CarePlanSync brings the monitor up to date with a patient's care plan
// after a change (planstore.Follower).
type CarePlanSync interface {
	Patient(ctx context.Context, id vward.PatientID) error
}

// Server is the HTTP side of vward.
type Server struct {
	Deps
	auth    *Auth
	monitor *alerting.Monitor
	history history.Store
	hub     *Hub
	checks  []Check
	log     *slog.Logger
	ctx     context.Context // ends the websocket streams at shutdown
	httpm   *httpMetrics    // nil: no registry to count requests in
}

// NewServer wires the board. ctx ends every stream when it is cancelled.
func NewServer(ctx context.Context, d Deps) *Server {
	if d.Sync == nil && d.Registry != nil && d.Monitor != nil {
		d.Sync = registrysync.New(d.Registry, d.Monitor, d.Log)
	}
	if d.CarePlanSync == nil && d.CarePlans != nil && d.Monitor != nil {
		d.CarePlanSync = planstore.NewFollower(d.CarePlans, d.Monitor, nil, d.Log)
	}
	s := &Server{Deps: d, auth: d.Auth, monitor: d.Monitor, history: d.History, hub: d.Hub, checks: d.Checks, log: d.Log.With("component", "web"), ctx: ctx}
	if d.Ops.Registerer != nil {
		var err error
		if s.httpm, err = newHTTPMetrics(d.Ops.Registerer); err != nil {
			s.log.Error("HTTP metrics not registered", "err", err)
		}
	}
	return s
}

// Handler returns the routes. The page, sign-in and health probes are
// public; everything else under /api/ needs a session (and, to change
// anything, the session's CSRF token), and shows only the user's wards.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	// Not "GET /": that would conflict with "/api/" below, which takes
	// every method.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "the board's files are read-only")
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("POST /api/v1/login", s.auth.login)
	mux.HandleFunc("GET /api/v1/me", s.auth.me)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /metrics", s.metrics())

	api := http.NewServeMux()
	api.HandleFunc("POST /api/v1/logout", s.auth.logout)
	api.HandleFunc("GET /api/v1/patients", s.patients)
	api.HandleFunc("GET /api/v1/patients/{id}", s.patient)
	api.HandleFunc("GET /api/v1/patients/{id}/readings", s.readings) // charts.go
	api.HandleFunc("GET /api/v1/patients/{id}/scores", s.scores)
	api.HandleFunc("GET /api/v1/stream", s.stream)
	api.HandleFunc("GET /api/v1/status", s.status)
	api.HandleFunc("GET /api/v1/rejections", s.rejections)
	s.alertRoutes(api)         // /api/v1/alerts…, /api/v1/reports/response-times (alerts.go)
	s.registryRoutes(api)      // /api/v1/wards…, patients' stays, /api/v1/devices… (registry.go)
	s.observationRoutes(api)   // /api/v1/patients/{id}/observations, /api/v1/observations… (observations.go)
	s.noteRoutes(api)          // /api/v1/patients/{id}/notes, /api/v1/notes… (notes.go)
	s.carePlanRoutes(api)      // /api/v1/patients/{id}/careplan…, /api/v1/careplan/templates (careplans.go)
	s.timelineRoutes(api)      // /api/v1/patients/{id}/timeline (timeline.go)
	s.questionnaireRoutes(api) // /api/v1/patients/{id}/questionnaires (questionnaires.go)
	s.handoverRoutes(api)      // /api/v1/alerts/{id}/handover(s), /api/v1/handovers/{id}/outcome (handovers.go)
	s.burdenRoutes(api)        // /api/v1/wards/{id}/alarm-burden (burden.go)
	s.notifyRoutes(api)        // /api/v1/alerts/{id}/notifications, /api/v1/notify/… (notify.go)
	s.tokenRoutes(api)         // /api/v1/tokens… (tokens.go)
	mux.Handle("/api/", s.auth.Require(api))
	s.fhirRoutes(mux) // /fhir/R4/… (fhir.go)
	h := secure(mux)
	if s.httpm != nil {
		h = s.httpm.instrument(h, func(r *http.Request) string {
			_, p := mux.Handler(r)
			if p == "/api/" {
				_, p = api.Handler(r)
			}
			return p
		})
	}
	return h
}

// wardsOf returns the wards a user may see, nil meaning every ward.
func wardsOf(u User) map[vward.WardID]bool {
	if u.Role == RoleAdmin {
		return nil
	}
	m := make(map[vward.WardID]bool, len(u.Wards))
	for _, w := range u.Wards {
		m[w] = true
	}
	return m
}

// visiblePatient returns a patient's row if the request's user may see it.
// A patient of another ward is answered as not found, not forbidden, so
// that a clinician cannot learn who is on wards they do not work on.
func (s *Server) visiblePatient(r *http.Request, id vward.PatientID) (PatientView, bool) {
	u, _ := CurrentUser(r)
	row, ok := s.monitor.Patient(id)
	if !ok || !u.Sees(row.Ward) {
		return PatientView{}, false
	}
	return newPatientView(&row), true
}

// Snapshot is the first message on the stream and the body of
// GET /api/v1/patients: every row the client may see, most acute first,
// and the wards they are on.
type Snapshot struct {
	Type       string         `json:"type"` // "snapshot"
	ServerTime time.Time      `json:"server_time"`
	Storage    string         `json:"storage"`
	Wards      []devices.Ward `json:"wards"`
	Patients   []PatientView  `json:"patients"`
}

func (s *Server) snapshot(ctx context.Context, u User) Snapshot {
	snap := Snapshot{Type: "snapshot", ServerTime: time.Now().UTC(), Storage: s.history.Describe(),
		Wards: []devices.Ward{}, Patients: patientViews(s.monitor.Snapshot(u.Sees))}
	if s.Wards != nil {
		ws, err := s.Wards.Wards(ctx)
		if err != nil {
			s.log.Error("list wards for the board", "err", err)
		}
		for _, w := range ws {
			if u.Sees(w.ID) {
				snap.Wards = append(snap.Wards, w)
			}
		}
	}
	return snap
}

func (s *Server) patients(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	writeJSON(w, http.StatusOK, s.snapshot(r.Context(), u))
}

func (s *Server) patient(w http.ResponseWriter, r *http.Request) {
	v, ok := s.visiblePatient(r, vward.PatientID(r.PathValue("id")))
	if !ok {
		writeError(w, http.StatusNotFound, "no such patient")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	conn, batch, err := upgrade(w, r)
	if err != nil {
		return // Upgrade has answered the client
	}
	u, _ := CurrentUser(r)
	// The stream keeps the rights it was opened with only while its
	// session stands: a sign-out, a password, role or ward change ends it.
	ctx, stop := s.auth.watchStream(s.ctx, r)
	defer stop()
	s.hub.serve(ctx, conn, batch, wardsOf(u), func() ([]byte, error) {
		return json.Marshal(s.snapshot(r.Context(), u))
	})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	status := http.StatusOK
	out := map[string]string{}
	for _, c := range s.checks {
		if err := c.Run(ctx); err != nil {
			out[c.Name] = err.Error()
			if !c.Degrades {
				status = http.StatusServiceUnavailable
			}
		} else {
			out[c.Name] = "ok"
		}
	}
	writeJSON(w, status, out)
}

// status answers the board's poll of vward's own state.
func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	st := SystemStatus{History: HistoryOK}
	if s.Deps.Status != nil {
		st = s.Deps.Status()
	}
	writeJSON(w, http.StatusOK, st)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// kindStatus is the status that answers a refusal of one of vward's error
// kinds, whichever package refused; refused is false for any other error
// (nil included), which is the server's own failure.
func kindStatus(err error) (status int, refused bool) {
	switch {
	case errors.Is(err, vward.ErrNotFound):
		return http.StatusNotFound, true
	case errors.Is(err, vward.ErrInvalid):
		return http.StatusBadRequest, true
	case errors.Is(err, vward.ErrConflict):
		return http.StatusConflict, true
	}
	return http.StatusInternalServerError, false
}

// Serve serves h on ln until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: RequestReadTimeout,
		IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) {
		return e
	}
	return err
}
