package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

// The registry's REST routes: wards, patients' stays and devices. Every
// route is behind sign-in (Handler mounts them in the api mux). Reads show
// only the user's wards; changes are for admins, except the SpO2 scale,
// which a clinician of the patient's ward may prescribe. A patient or ward
// the user may not see is answered 404, as elsewhere on the API.
func (s *Server) registryRoutes(api *http.ServeMux) {
	if s.Registry == nil {
		return
	}
	api.HandleFunc("GET /api/v1/wards", s.listWards)
	api.HandleFunc("POST /api/v1/wards", s.addWard)
	api.HandleFunc("GET /api/v1/wards/{id}/report", s.wardReport)
	api.HandleFunc("GET /api/v1/wards/{id}/patients", s.wardPatients)
	api.HandleFunc("POST /api/v1/patients", s.admitPatient)
	api.HandleFunc("POST /api/v1/patients/{id}/pause", s.changeStay(s.Registry.Pause))
	api.HandleFunc("POST /api/v1/patients/{id}/resume", s.changeStay(s.Registry.Resume))
	api.HandleFunc("POST /api/v1/patients/{id}/discharge", s.dischargePatient)
	api.HandleFunc("POST /api/v1/patients/{id}/spo2-scale", s.setSpO2Scale)
	api.HandleFunc("GET /api/v1/patients/{id}/audit", s.patientAudit)
	api.HandleFunc("GET /api/v1/devices", s.listDevices)
	api.HandleFunc("POST /api/v1/devices", s.addDevice)
	api.HandleFunc("POST /api/v1/devices/{id}/assign", s.assignDevice)
	api.HandleFunc("POST /api/v1/devices/{id}/unassign", s.unassignDevice)
	api.HandleFunc("POST /api/v1/devices/{id}/rotate-secret", s.rotateSecret)
}

// requireAdmin answers 403 unless the user is an admin.
func requireAdmin(w http.ResponseWriter, r *http.Request) (User, bool) {
	u, _ := CurrentUser(r)
	if u.Role != RoleAdmin {
		writeError(w, http.StatusForbidden, "only an admin may change the registry")
		return u, false
	}
	return u, true
}

// decodeBody reads a JSON body into v, refusing unknown fields so that a
// typo ("reson") is an error rather than silently dropped. An empty body
// leaves v as it is.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeBodyUpTo(w, r, v, 64<<10)
}

// decodeBodyUpTo is decodeBody for a body of at most limit bytes.
func decodeBodyUpTo(w http.ResponseWriter, r *http.Request, v any, limit int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

// registryError answers with the status a registry error means.
func (s *Server) registryError(w http.ResponseWriter, r *http.Request, err error) {
	if status, refused := kindStatus(err); refused {
		writeError(w, status, err.Error())
		return
	}
	s.log.Error("registry", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "the registry is unavailable")
}

// acting returns the request's context naming the user for the audit.
func acting(r *http.Request, u User) *http.Request {
	return r.WithContext(devices.WithActor(r.Context(), u.Username))
}

// stayOf returns a patient's registry record, discharged or not, if the
// request's user may see it; another ward's patient is vward.ErrNotFound.
func (s *Server) stayOf(r *http.Request, id vward.PatientID) (devices.Patient, error) {
	u, _ := CurrentUser(r)
	p, err := s.Registry.Patient(r.Context(), id)
	if err == nil && !u.Sees(p.Ward) {
		return devices.Patient{}, vward.Errorf(vward.ErrNotFound, "patient %s not found", id)
	}
	return p, err
}

// visibleStay returns a patient's registry record if the user may see it.
func (s *Server) visibleStay(w http.ResponseWriter, r *http.Request) (devices.Patient, bool) {
	p, err := s.stayOf(r, vward.PatientID(r.PathValue("id")))
	if errors.Is(err, vward.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such patient")
		return devices.Patient{}, false
	}
	if err != nil {
		s.registryError(w, r, err)
		return devices.Patient{}, false
	}
	return p, true
}

func (s *Server) listWards(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	all, err := s.Registry.Wards(r.Context())
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	out := []devices.Ward{}
	for _, wd := range all {
		if u.Sees(wd.ID) {
			out = append(out, wd)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"wards": out})
}

func (s *Server) addWard(w http.ResponseWriter, r *http.Request) {
	u, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	var in devices.Ward
	if !decodeBody(w, r, &in) {
		return
	}
	if err := s.Registry.AddWard(acting(r, u).Context(), in); err != nil {
		s.registryError(w, r, err)
		return
	}
	wd, err := s.Registry.Ward(r.Context(), in.ID)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, wd)
}

func (s *Server) wardReport(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	id := vward.WardID(r.PathValue("id"))
	if !u.Sees(id) {
		writeError(w, http.StatusNotFound, "no such ward")
		return
	}
	days := 30
	if d := r.URL.Query().Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 366 {
			writeError(w, http.StatusBadRequest, "days must be a whole number from 1 to 366")
			return
		}
		days = n
	}
	rep, err := s.Registry.WardReport(r.Context(), id, days, time.Now(), time.Local)
	if err == nil {
		err = s.stepUp(r.Context(), &rep)
	}
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) wardPatients(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	id := vward.WardID(r.PathValue("id"))
	if !u.Sees(id) {
		writeError(w, http.StatusNotFound, "no such ward")
		return
	}
	if _, err := s.Registry.Ward(r.Context(), id); err != nil {
		s.registryError(w, r, err)
		return
	}
	discharged := r.URL.Query().Get("discharged") == "true"
	ps, err := s.Registry.ListPatients(r.Context(), devices.PatientQuery{Ward: id, Discharged: discharged})
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ward": id, "patients": ps})
}

// admission is the body of POST /api/v1/patients. Its tags are checked
// before anything is registered: an admission on scale 2 is two changes of
// the registry, and the first must not be made if the second would be
// refused. The registry checks the rest.
type admission struct {
	ID          vward.PatientID   `json:"id"` // optional: one is made up
	Ward        vward.WardID      `json:"ward"`
	NHSNumber   string            `json:"nhs_number" validate:"notblank"`
	Name        string            `json:"name"`
	Born        string            `json:"born"`
	ExpectedEnd string            `json:"expected_end"`
	Contacts    []devices.Contact `json:"escalation_contacts"`
	// SpO2Scale 2 at admission needs SpO2ScaleReason, as a later change does.
	SpO2Scale       int    `json:"spo2_scale" validate:"oneof=0 1 2"`
	SpO2ScaleReason string `json:"spo2_scale_reason" validate:"notblank_if=SpO2Scale 2"`
}

func (*admission) refusals() map[string]string {
	return map[string]string{
		"NHSNumber notblank":          "nhs_number is required",
		"SpO2Scale oneof":             "spo2_scale must be 1 or 2",
		"SpO2ScaleReason notblank_if": "spo2_scale 2 needs spo2_scale_reason; it is kept in the audit",
	}
}

func (s *Server) admitPatient(w http.ResponseWriter, r *http.Request) {
	u, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	var in admission
	if !decodeBody(w, r, &in) {
		return
	}
	if why := checkBody(&in); why != "" {
		writeError(w, http.StatusBadRequest, why)
		return
	}
	if in.ID == "" {
		id, err := devices.NewPatientID()
		if err != nil {
			s.registryError(w, r, err)
			return
		}
		in.ID = id
	}
	ctx := acting(r, u).Context()
	p := devices.Patient{ID: in.ID, Ward: in.Ward, NHSNumber: in.NHSNumber, Name: in.Name, Born: in.Born,
		ExpectedEnd: in.ExpectedEnd, Contacts: in.Contacts}
	if err := s.Registry.Admit(ctx, p); err != nil {
		s.registryError(w, r, err)
		return
	}
	if in.SpO2Scale == 2 {
		if err := s.Registry.SetSpO2Scale(ctx, in.ID, 2, in.SpO2ScaleReason); err != nil {
			s.registryError(w, r, fmt.Errorf("admitted %s, but setting SpO2 scale 2 failed: %w", in.ID, err))
			return
		}
	}
	s.answerStay(w, r, in.ID, http.StatusCreated)
}

// answerStay brings the board and the alerts up to date with a change of
// a stay at once (Deps.Sync), rather than at the registry watch, and
// answers with the stay.
func (s *Server) answerStay(w http.ResponseWriter, r *http.Request, id vward.PatientID, status int) {
	if err := s.Sync.Patient(r.Context(), id); err != nil {
		s.log.Error("the change is made, but the board did not take it; the minutely resync retries", "patient", id, "err", err)
	}
	p, err := s.Registry.Patient(r.Context(), id)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	writeJSON(w, status, p)
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// changeStay returns a handler for a change of a patient's stay that needs
// only a reason: pause (admitted to hospital) or resume.
func (s *Server) changeStay(change func(ctx context.Context, id vward.PatientID, reason string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := requireAdmin(w, r)
		if !ok {
			return
		}
		var in reasonBody
		if !decodeBody(w, r, &in) {
			return
		}
		id := vward.PatientID(r.PathValue("id"))
		if err := change(acting(r, u).Context(), id, in.Reason); err != nil {
			s.registryError(w, r, err)
			return
		}
		s.answerStay(w, r, id, http.StatusOK)
	}
}

func (s *Server) dischargePatient(w http.ResponseWriter, r *http.Request) {
	u, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	var in struct {
		Outcome string     `json:"outcome"`
		Reason  string     `json:"reason"`
		At      *time.Time `json:"at"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	var at time.Time
	if in.At != nil {
		at = *in.At
	}
	id := vward.PatientID(r.PathValue("id"))
	if err := s.Registry.Discharge(acting(r, u).Context(), id, in.Outcome, in.Reason, at); err != nil {
		s.registryError(w, r, err)
		return
	}
	s.answerStay(w, r, id, http.StatusOK)
}

// setSpO2Scale handles POST /api/v1/patients/{id}/spo2-scale
// {"scale": 2, "reason": "..."}: a clinician of the patient's ward (or an
// admin) prescribes the scale; a viewer may not.
func (s *Server) setSpO2Scale(w http.ResponseWriter, r *http.Request) {
	p, ok := s.visibleStay(w, r)
	if !ok {
		return
	}
	u, _ := CurrentUser(r)
	if !u.MayAct() {
		writeError(w, http.StatusForbidden, "a viewer may not prescribe the SpO2 scale")
		return
	}
	var in struct {
		Scale  int    `json:"scale"`
		Reason string `json:"reason"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	if err := s.Registry.SetSpO2Scale(acting(r, u).Context(), p.ID, in.Scale, in.Reason); err != nil {
		s.registryError(w, r, err)
		return
	}
	s.answerStay(w, r, p.ID, http.StatusOK)
}

func (s *Server) patientAudit(w http.ResponseWriter, r *http.Request) {
	p, ok := s.visibleStay(w, r)
	if !ok {
		return
	}
	es, err := s.Registry.PatientAudit(r.Context(), p.ID, 200)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"patient": p.ID, "audit": es})
}

// listDevices lists every device for an admin; for anyone else, the devices
// bound now to patients of their wards.
func (s *Server) listDevices(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	all, err := s.Registry.Devices(r.Context())
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	out := []devices.Device{}
	for _, d := range all {
		if u.Role == RoleAdmin || (d.Ward != "" && u.Sees(d.Ward)) {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out})
}

// credentialAnswer carries a device secret: shown this once, never cached.
func credentialAnswer(w http.ResponseWriter, status int, d devices.Device, secret string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]any{"device": d, "secret": secret})
}

func (s *Server) addDevice(w http.ResponseWriter, r *http.Request) {
	u, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	var in struct {
		ID     vward.DeviceID `json:"id"`
		Kind   string         `json:"kind"`
		Serial string         `json:"serial"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	secret, err := s.Registry.RegisterDevice(acting(r, u).Context(), devices.Device{ID: in.ID, Kind: in.Kind, Serial: in.Serial})
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	d, err := s.Registry.Device(r.Context(), in.ID)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	credentialAnswer(w, http.StatusCreated, d, secret)
}

func (s *Server) assignDevice(w http.ResponseWriter, r *http.Request) {
	u, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	var in struct {
		Patient vward.PatientID `json:"patient"`
		From    *time.Time      `json:"from"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	var from time.Time
	if in.From != nil {
		from = *in.From
	}
	id := vward.DeviceID(r.PathValue("id"))
	if err := s.Registry.Assign(acting(r, u).Context(), id, in.Patient, from); err != nil {
		s.registryError(w, r, err)
		return
	}
	s.answerDevice(w, r, id)
}

func (s *Server) unassignDevice(w http.ResponseWriter, r *http.Request) {
	u, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	var in struct {
		At *time.Time `json:"at"`
	}
	if !decodeBody(w, r, &in) {
		return
	}
	var at time.Time
	if in.At != nil {
		at = *in.At
	}
	id := vward.DeviceID(r.PathValue("id"))
	if err := s.Registry.Unassign(acting(r, u).Context(), id, at); err != nil {
		s.registryError(w, r, err)
		return
	}
	s.answerDevice(w, r, id)
}

// answerDevice stops the device's alerts for a patient it no longer
// belongs to at once (Deps.Sync), and answers with the device.
func (s *Server) answerDevice(w http.ResponseWriter, r *http.Request, id vward.DeviceID) {
	s.Sync.Device(r.Context(), id)
	d, err := s.Registry.Device(r.Context(), id)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	u, ok := requireAdmin(w, r)
	if !ok {
		return
	}
	var in reasonBody
	if !decodeBody(w, r, &in) {
		return
	}
	id := vward.DeviceID(r.PathValue("id"))
	secret, err := s.Registry.RotateSecret(acting(r, u).Context(), id, in.Reason)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	d, err := s.Registry.Device(r.Context(), id)
	if err != nil {
		s.registryError(w, r, err)
		return
	}
	credentialAnswer(w, http.StatusOK, d, secret)
}
