package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/fhir"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/tokens"
)

// The read-only FHIR R4 interface (docs/fhir.md). The CapabilityStatement
// is public, as FHIR clients read it before they sign in; everything else
// needs a board session or a machine client's API token and shows only
// its wards: another ward's patient is not found, as on the rest of the
// API.

// FHIR paging: a page holds fhirDefaultCount entries unless _count says
// otherwise, and never more than fhirMaxCount.
const (
	fhirDefaultCount = 50
	fhirMaxCount     = 500
)

// fhirContentType is the FHIR JSON media type every answer carries.
const fhirContentType = "application/fhir+json"

func (s *Server) fhirRoutes(mux *http.ServeMux) {
	if s.Registry == nil {
		return
	}
	mux.HandleFunc("GET /fhir/R4/metadata", s.fhirMetadata(time.Now()))
	mux.Handle("/fhir/R4/", s.fhirSession(s.fhirAPI()))
}

// fhirMetadata answers the CapabilityStatement, dated when the server
// started: what it serves changes only with a new vward.
func (s *Server) fhirMetadata(started time.Time) http.HandlerFunc {
	since := fhir.DateTime(started.Truncate(time.Second))
	return func(w http.ResponseWriter, _ *http.Request) {
		writeFHIR(w, http.StatusOK, fhir.Capability(since, ""))
	}
}

// fhirAPI is the routes behind sign-in. Each is in fhir.Served or
// fhir.ServedOperations, which
// the CapabilityStatement lists (TestFHIRServesWhatItSays).
func (s *Server) fhirAPI() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /fhir/R4/Patient/{id}", s.fhirPatient)
	api.HandleFunc("GET /fhir/R4/Patient", s.fhirPatients)
	api.HandleFunc("GET /fhir/R4/EpisodeOfCare/{id}", s.fhirEpisode)
	api.HandleFunc("GET /fhir/R4/Device/{id}", s.fhirDevice)
	api.HandleFunc("GET /fhir/R4/Observation", s.fhirObservations)
	api.HandleFunc("GET /fhir/R4/Observation/{id}", s.fhirObservation)
	api.HandleFunc("GET /fhir/R4/Flag", s.fhirFlags)
	api.HandleFunc("GET /fhir/R4/Flag/{id}", s.fhirFlag)
	api.HandleFunc("GET /fhir/R4/$export", s.fhirExport)
	api.HandleFunc("/fhir/R4/", func(w http.ResponseWriter, r *http.Request) {
		writeFHIR(w, http.StatusNotFound, fhir.Outcome("not-supported",
			fmt.Sprintf("%s %s is not served: GET /fhir/R4/metadata lists what is", r.Method, r.URL.Path)))
	})
	return api
}

// fhirSession is Auth.Require for FHIR clients: a board session, or a
// machine client's Bearer token, which reads as a viewer of the token's
// wards; a refusal is an OperationOutcome. Every FHIR route is a GET, so
// there is no CSRF token to check. A request that sends an Authorization
// header is judged by it alone, never by a cookie beside it.
func (s *Server) fhirSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			u, ok := s.tokenUser(w, r, h)
			if ok {
				next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
			}
			return
		}
		sess, ok := s.auth.session(r)
		if !ok {
			writeFHIR(w, http.StatusUnauthorized, fhir.Outcome("login", "sign in first, or send Authorization: Bearer <API token>"))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), sess.User)))
	})
}

// tokenUser reads an Authorization header's Bearer token, audited as a
// use by the token store.
func (s *Server) tokenUser(w http.ResponseWriter, r *http.Request, header string) (User, bool) {
	scheme, secret, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || s.Tokens == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vward"`)
		writeFHIR(w, http.StatusUnauthorized, fhir.Outcome("login", "Authorization: want Bearer and an API token"))
		return User{}, false
	}
	t, err := s.Tokens.Authenticate(r.Context(), strings.TrimSpace(secret), r.Method+" "+auditedRequest(r.URL))
	if errors.Is(err, tokens.ErrRefused) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vward", error="invalid_token"`)
		writeFHIR(w, http.StatusUnauthorized, fhir.Outcome("login", "the API token is unknown or revoked"))
		return User{}, false
	}
	if err != nil {
		s.fhirFailed(w, r, "the API tokens", err)
		return User{}, false
	}
	return User{Username: "token:" + t.Name, Role: RoleViewer, Wards: t.Wards}, true
}

// auditedRequest is a request as a token's audit records it: the path and
// the search, but an NHS number searched for, which stays out of audits.
func auditedRequest(u *url.URL) string {
	q := u.Query()
	if q.Has("identifier") {
		q.Set("identifier", "…")
	}
	if len(q) == 0 {
		return u.Path
	}
	return u.Path + "?" + q.Encode()
}

func writeFHIR(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", fhirContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// badParam answers 400 with an OperationOutcome naming the parameter.
func badParam(w http.ResponseWriter, param, format string, args ...any) {
	writeFHIR(w, http.StatusBadRequest, fhir.Outcome("invalid", fmt.Sprintf(format, args...), param))
}

func (s *Server) fhirFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error("FHIR "+what, "path", r.URL.Path, "err", err)
	writeFHIR(w, http.StatusInternalServerError, fhir.Outcome("exception", what+" is unavailable"))
}

func fhirNotFound(w http.ResponseWriter, what string) {
	writeFHIR(w, http.StatusNotFound, fhir.Outcome("not-found", "no such "+what))
}

// fhirStay reads the stay a FHIR id names, if the user may see it.
func (s *Server) fhirStay(w http.ResponseWriter, r *http.Request, id string) (devices.Patient, bool) {
	pid, ok := fhir.ParseID(id)
	if !ok {
		fhirNotFound(w, "patient")
		return devices.Patient{}, false
	}
	p, err := s.stayOf(r, vward.PatientID(pid))
	if errors.Is(err, vward.ErrNotFound) {
		fhirNotFound(w, "patient")
		return devices.Patient{}, false
	}
	if err != nil {
		s.fhirFailed(w, r, "the registry", err)
		return devices.Patient{}, false
	}
	return p, true
}

func (s *Server) fhirPatient(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.fhirStay(w, r, r.PathValue("id")); ok {
		writeFHIR(w, http.StatusOK, fhir.PatientOf(p))
	}
}

func (s *Server) fhirEpisode(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.fhirStay(w, r, r.PathValue("id")); ok {
		writeFHIR(w, http.StatusOK, fhir.EpisodeOfCareOf(p))
	}
}

// fhirDevice reads a device bound to a patient of the user's wards; an
// admin reads any.
func (s *Server) fhirDevice(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	id, ok := fhir.ParseID(r.PathValue("id"))
	if !ok {
		fhirNotFound(w, "device")
		return
	}
	d, err := s.Registry.Device(r.Context(), vward.DeviceID(id))
	if errors.Is(err, vward.ErrNotFound) || err == nil && u.Role != RoleAdmin && (d.Ward == "" || !u.Sees(d.Ward)) {
		fhirNotFound(w, "device")
		return
	}
	if err != nil {
		s.fhirFailed(w, r, "the registry", err)
		return
	}
	writeFHIR(w, http.StatusOK, fhir.DeviceOf(d))
}

// fhirBase is the server's FHIR base URL as the client reached it, for
// the links of a Bundle.
func (s *Server) fhirBase(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil || s.auth != nil && s.auth.isTLS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/fhir/R4"
}

// paging is a search's _count and _offset.
type paging struct{ count, offset int }

// searchQuery splits a search's query: unknown parameters are refused
// (a misspelt "_cout" is not the default page), _count and _offset are
// read, and the rest returned for the Bundle's links.
func searchQuery(q url.Values, known ...string) (url.Values, paging, error) {
	pg := paging{count: fhirDefaultCount}
	rest := url.Values{}
	// In order, so that of two bad parameters the same one is named each time.
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vs := q[k]
		switch {
		case k == "_count" || k == "_offset":
			if len(vs) != 1 {
				return nil, pg, paramError{k, fmt.Sprintf("%s is given %d times; give it once", k, len(vs))}
			}
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 0 {
				return nil, pg, paramError{k, fmt.Sprintf("%s=%q: want a whole number, 0 or more", k, vs[0])}
			}
			if k == "_count" {
				pg.count = min(n, fhirMaxCount)
			} else {
				pg.offset = n
			}
		case slices.Contains(known, k):
			rest[k] = vs
		default:
			return nil, pg, paramError{k, fmt.Sprintf("unknown search parameter %q: this search takes %s, _count and _offset", k, strings.Join(known, ", "))}
		}
	}
	return rest, pg, nil
}

// paramError is a refused search parameter.
type paramError struct{ param, msg string }

func (e paramError) Error() string { return e.msg }

func answerParamError(w http.ResponseWriter, err error) {
	var pe paramError
	if errors.As(err, &pe) {
		badParam(w, pe.param, "%s", pe.msg)
		return
	}
	badParam(w, "", "%v", err)
}

// page answers one page of a search's results, all of them given.
func (s *Server) page(w http.ResponseWriter, r *http.Request, kind string, q url.Values, pg paging, all []fhir.Resource) {
	from := min(pg.offset, len(all))
	s.pageOf(w, r, kind, q, pg, all[from:min(from+pg.count, len(all))], len(all))
}

// pageOf answers a search with one page of its results, of total.
func (s *Server) pageOf(w http.ResponseWriter, r *http.Request, kind string, q url.Values, pg paging, page []fhir.Resource, total int) {
	p := fhir.Page{Base: s.fhirBase(r), Type: kind, Query: q, Count: pg.count, Offset: pg.offset, Total: total}
	writeFHIR(w, http.StatusOK, fhir.Searchset(p, page))
}

// patientParam reads a search's required patient=Patient/<id> or <id>.
func patientParam(q url.Values) (string, error) {
	vs := q["patient"]
	if len(vs) != 1 || vs[0] == "" {
		return "", paramError{"patient", "patient is required, once: patient=Patient/<id> or patient=<id>"}
	}
	return strings.TrimPrefix(vs[0], "Patient/"), nil
}

// fhirPatients searches the user's wards' patients, discharged stays too,
// by NHS number.
func (s *Server) fhirPatients(w http.ResponseWriter, r *http.Request) {
	q, pg, err := searchQuery(r.URL.Query(), "identifier")
	if err != nil {
		answerParamError(w, err)
		return
	}
	var nhs string
	if vs := q["identifier"]; len(vs) > 0 {
		sys, val, found := strings.Cut(vs[0], "|")
		if !found {
			sys, val = "", vs[0]
		}
		if len(vs) > 1 || (sys != "" && sys != fhir.NHSNumber) {
			badParam(w, "identifier", "identifier: give one, %s|<NHS number> or the number alone", fhir.NHSNumber)
			return
		}
		if nhs, err = devices.NormalizeNHSNumber(val); err != nil {
			badParam(w, "identifier", "identifier: %v", err)
			return
		}
	}
	u, _ := CurrentUser(r)
	ps, err := s.Registry.ListPatients(r.Context(), devices.PatientQuery{Discharged: true})
	if err != nil {
		s.fhirFailed(w, r, "the registry", err)
		return
	}
	var all []fhir.Resource
	for _, p := range ps {
		if u.Sees(p.Ward) && (nhs == "" || p.NHSNumber == nhs) && fhir.ID(string(p.ID)) != "" {
			all = append(all, fhir.PatientOf(p))
		}
	}
	s.page(w, r, "Patient", q, pg, all)
}

// fhirFlags lists a patient's alerts, open and past, most recently
// changed first.
func (s *Server) fhirFlags(w http.ResponseWriter, r *http.Request) {
	q, pg, err := searchQuery(r.URL.Query(), "patient", "_lastUpdated")
	var id string
	var from, to time.Time
	if err == nil {
		id, err = patientParam(q)
	}
	if err == nil {
		from, to, err = dateRange(q, "_lastUpdated")
	}
	if err != nil {
		answerParamError(w, err)
		return
	}
	p, ok := s.fhirStay(w, r, id)
	if !ok {
		return
	}
	if s.Alerts == nil {
		writeFHIR(w, http.StatusServiceUnavailable, fhir.Outcome("transient", "alerting is not running"))
		return
	}
	as, err := s.Alerts.Alerts(r.Context(), alerting.Filter{Patient: p.ID, Wards: []vward.WardID{p.Ward}})
	if err != nil {
		s.fhirFailed(w, r, "the alerts", err)
		return
	}
	var all []fhir.Resource
	for _, a := range as {
		if within(a.UpdatedAt, from, to) {
			all = append(all, fhir.FlagOf(a))
		}
	}
	s.page(w, r, "Flag", q, pg, all)
}

// fhirFlag reads one alert as a Flag, by its alert id. Another ward's
// alert is not found, as another ward's patient is.
func (s *Server) fhirFlag(w http.ResponseWriter, r *http.Request) {
	u, _ := CurrentUser(r)
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		fhirNotFound(w, "flag")
		return
	}
	if s.Alerts == nil {
		writeFHIR(w, http.StatusServiceUnavailable, fhir.Outcome("transient", "alerting is not running"))
		return
	}
	a, _, err := s.Alerts.Alert(r.Context(), id)
	if errors.Is(err, vward.ErrNotFound) || err == nil && u.Role != RoleAdmin && !u.Sees(a.Ward) {
		fhirNotFound(w, "flag")
		return
	}
	if err != nil {
		s.fhirFailed(w, r, "the alerts", err)
		return
	}
	writeFHIR(w, http.StatusOK, fhir.FlagOf(a))
}

// obsSearch is an Observation search's filters.
type obsSearch struct {
	codes    []codeToken
	from, to time.Time // effective time in [from, to); zero: open
	// meta.lastUpdated in [updFrom, updTo): when vward last changed
	// the record (fhir.Observation.Updated).
	updFrom, updTo time.Time
}

// codeToken is one [system|]code of a code parameter.
type codeToken struct{ system, code string }

func (c codeToken) matches(cc fhir.CodeableConcept) bool {
	for _, cd := range cc.Coding {
		if cd.Code == c.code && (c.system == "" || c.system == cd.System) {
			return true
		}
	}
	return false
}

// parseObsSearch reads an Observation search's code and date parameters.
func parseObsSearch(q url.Values) (obsSearch, error) {
	var o obsSearch
	for _, v := range q["code"] {
		for _, tok := range strings.Split(v, ",") {
			sys, code, found := strings.Cut(tok, "|")
			if !found {
				sys, code = "", tok
			}
			if code == "" {
				return o, paramError{"code", fmt.Sprintf("code=%q: want [system|]code, such as %s|8867-4", v, fhir.LOINC)}
			}
			o.codes = append(o.codes, codeToken{sys, code})
		}
	}
	var err error
	if o.from, o.to, err = dateRange(q, "date"); err != nil {
		return o, err
	}
	if o.updFrom, o.updTo, err = dateRange(q, "_lastUpdated"); err != nil {
		return o, err
	}
	return o, nil
}

// dateRange reads a date parameter's values, each [prefix]value, as the
// span [from, to) all of them allow; a zero from or to is open.
func dateRange(q url.Values, param string) (from, to time.Time, err error) {
	for _, v := range q[param] {
		lo, hi, prefix, err := parseDateParam(v)
		if err != nil {
			return from, to, paramError{param, param + " " + err.Error()}
		}
		var f, t time.Time
		switch prefix {
		case "eq":
			f, t = lo, hi
		case "ge":
			f = lo
		case "gt":
			f = hi
		case "le":
			t = hi
		case "lt":
			t = lo
		}
		if !f.IsZero() && (from.IsZero() || f.After(from)) {
			from = f
		}
		if !t.IsZero() && (to.IsZero() || t.Before(to)) {
			to = t
		}
	}
	return from, to, nil
}

// within reports whether t is in [from, to), a zero bound open.
func within(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// parseDateParam reads [prefix]value of a date parameter as the span
// [lo, hi) the value stands for: a UTC day for YYYY-MM-DD, a single
// instant for a dateTime.
func parseDateParam(v string) (lo, hi time.Time, prefix string, err error) {
	prefix = "eq"
	if len(v) > 2 && v[0] >= 'a' && v[0] <= 'z' {
		prefix, v = v[:2], v[2:]
		switch prefix {
		case "eq", "ge", "gt", "le", "lt":
		default:
			return lo, hi, "", fmt.Errorf("prefix %q: want eq, ge, gt, le or lt", prefix)
		}
	}
	if d, err := time.Parse(time.DateOnly, v); err == nil {
		return d, d.Add(24 * time.Hour), prefix, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return lo, hi, "", fmt.Errorf("%q: want YYYY-MM-DD or a dateTime with its zone, such as 2026-03-02T08:00:00Z, after eq, ge, gt, le or lt", v)
	}
	return t, t.Add(time.Nanosecond), prefix, nil
}

func (o obsSearch) matches(ob fhir.Observation) bool {
	if !within(ob.At(), o.from, o.to) || !within(ob.Updated(), o.updFrom, o.updTo) {
		return false
	}
	if len(o.codes) == 0 {
		return true
	}
	for _, c := range o.codes {
		if c.matches(ob.Code) {
			return true
		}
	}
	return false
}

// fhirObservations searches a patient's readings and NEWS2 scores,
// oldest first.
func (s *Server) fhirObservations(w http.ResponseWriter, r *http.Request) {
	q, pg, err := searchQuery(r.URL.Query(), "patient", "code", "date", "_lastUpdated")
	var id string
	var search obsSearch
	if err == nil {
		id, err = patientParam(q)
	}
	if err == nil {
		search, err = parseObsSearch(q)
	}
	if err != nil {
		answerParamError(w, err)
		return
	}
	p, ok := s.fhirStay(w, r, id)
	if !ok {
		return
	}
	// Only the page is kept; the rest is counted for the total.
	var page []fhir.Resource
	total := 0
	err = s.observationsOf(r.Context(), p, search.from, search.to, func(o fhir.Observation) (bool, error) {
		if search.matches(o) {
			if total >= pg.offset && len(page) < pg.count {
				page = append(page, o)
			}
			total++
		}
		return true, nil
	})
	if err != nil {
		s.fhirFailed(w, r, "the reading history", err)
		return
	}
	s.pageOf(w, r, "Observation", q, pg, page, total)
}

// observationsOf gives each of a patient's readings' and NEWS2 scores'
// Observations effective in [from, to) to fn, oldest first (SortByTime);
// a zero from or to is open. The history is read a day at a time, so a
// wearable's months are never held at once; fn returning false stops it.
func (s *Server) observationsOf(ctx context.Context, p devices.Patient, from, to time.Time, fn func(fhir.Observation) (bool, error)) error {
	// Not bounded by the stay: a device bound before the admission (set
	// up at the bedside) measured for the patient, and the history holds
	// only what was attributed to them. An hour ahead: a device's clock
	// may run fast.
	lo, hi := from, time.Now().Add(time.Hour)
	if !to.IsZero() && to.Before(hi) {
		hi = to
	}
	f := s.monitor.Freshness()
	// Where the patient's history begins: nothing before it to read.
	first, measured, err := s.history.Earliest(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("read the history of %s: %w", p.ID, err)
	}
	if !measured {
		first = hi
	}
	if s.Observations != nil {
		es, err := s.Observations.Store().Measured(ctx, p.ID, time.Unix(0, 0), hi)
		if err != nil {
			return fmt.Errorf("read the entries of %s: %w", p.ID, err)
		}
		if len(es) > 0 && es[0].MeasuredAt.Before(first) {
			first = es[0].MeasuredAt
		}
	}
	if lo.Before(first) {
		lo = first
	}
	if !lo.Before(hi) {
		return nil
	}
	w := fhir.NewObservationStream(p.ID, news2.Scale(p.SpO2Scale), f, lo, hi)
	// From a window earlier: the score at lo is of the values current then.
	return s.byDay(ctx, p.ID, lo.Add(-slices.Max(f[:])), hi, func(crs []chartReading, end time.Time) (bool, error) {
		rs := make([]fhir.Reading, len(crs))
		for i, cr := range crs {
			rs[i] = fhir.Reading{Reading: cr.Reading, Entry: cr.entry}
		}
		for _, o := range w.Add(rs, end) {
			if more, err := fn(o); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	})
}

// fhirObservation reads an Observation by id. Its id names the patient
// (fhir.ObservationPatient), so the read is of that one patient's
// history, as a search without a date is; the few patients whose ids are
// too long to be named in one are searched in turn.
func (s *Server) fhirObservation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pid, named, ok := fhir.ObservationPatient(id)
	if !ok {
		fhirNotFound(w, "observation")
		return
	}
	var stays []devices.Patient
	if named {
		p, err := s.stayOf(r, pid)
		if errors.Is(err, vward.ErrNotFound) {
			fhirNotFound(w, "observation")
			return
		}
		if err != nil {
			s.fhirFailed(w, r, "the registry", err)
			return
		}
		stays = append(stays, p)
	} else {
		u, _ := CurrentUser(r)
		ps, err := s.Registry.ListPatients(r.Context(), devices.PatientQuery{Discharged: true})
		if err != nil {
			s.fhirFailed(w, r, "the registry", err)
			return
		}
		for _, p := range ps {
			if u.Sees(p.Ward) && !fhir.NamesPatient(p.ID) {
				stays = append(stays, p)
			}
		}
	}
	for _, p := range stays {
		var found *fhir.Observation
		err := s.observationsOf(r.Context(), p, time.Time{}, time.Time{}, func(o fhir.Observation) (bool, error) {
			if o.ID == id {
				found = &o
			}
			return found == nil, nil
		})
		if err != nil {
			s.fhirFailed(w, r, "the reading history", err)
			return
		}
		if found != nil {
			writeFHIR(w, http.StatusOK, *found)
			return
		}
	}
	fhirNotFound(w, "observation")
}
