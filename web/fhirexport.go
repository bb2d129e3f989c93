package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/fhir"
)

// fhirNDJSONType is the media type of a bulk export: one resource a line.
const fhirNDJSONType = "application/fhir+ndjson"

// exportTypes are the resource types an export writes, in its order.
var exportTypes = []string{"Patient", "EpisodeOfCare", "Device", "Observation", "Flag"}

// fhirExport streams a ward's records as NDJSON (docs/fhir.md, "Export").
// FHIR Bulk Data's $export is asynchronous (a 202, a status to poll, a
// manifest of files); this one answers at once, in the response body,
// which a ward of a few dozen patients allows. It is written as it is
// read, a patient at a time, so that a ward's export never sits in memory
// whole: one patient's records at most, as a search of them holds.
func (s *Server) fhirExport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "ward" && k != "_since" && k != "_type" {
			badParam(w, k, "unknown parameter %q: $export takes ward, _since and _type", k)
			return
		}
	}
	if len(q["ward"]) != 1 || q.Get("ward") == "" {
		badParam(w, "ward", "ward is required, once: ward=<ward id>")
		return
	}
	ward := vward.WardID(q.Get("ward"))
	var since time.Time
	if vs := q["_since"]; len(vs) > 0 {
		t, err := time.Parse(time.RFC3339Nano, vs[0])
		if len(vs) > 1 || err != nil {
			badParam(w, "_since", "_since: give one instant with its zone, such as 2026-03-02T08:00:00Z")
			return
		}
		since = t
	}
	types := exportTypes
	if vs := q["_type"]; len(vs) > 0 {
		types = nil
		for _, t := range strings.Split(strings.Join(vs, ","), ",") {
			if !slices.Contains(exportTypes, t) {
				badParam(w, "_type", "_type %q: want some of %s, comma-separated", t, strings.Join(exportTypes, ", "))
				return
			}
			types = append(types, t)
		}
	}
	// Another ward's export is not found, as its patients are not.
	u, _ := CurrentUser(r)
	if !u.Sees(ward) {
		fhirNotFound(w, "ward")
		return
	}
	if _, err := s.Registry.Ward(r.Context(), ward); errors.Is(err, vward.ErrNotFound) {
		fhirNotFound(w, "ward")
		return
	} else if err != nil {
		s.fhirFailed(w, r, "the registry", err)
		return
	}
	if slices.Contains(types, "Flag") && s.Alerts == nil {
		writeFHIR(w, http.StatusServiceUnavailable, fhir.Outcome("transient", "alerting is not running"))
		return
	}
	ps, err := s.Registry.ListPatients(r.Context(), devices.PatientQuery{Discharged: true})
	if err != nil {
		s.fhirFailed(w, r, "the registry", err)
		return
	}
	ps = slices.DeleteFunc(ps, func(p devices.Patient) bool { return p.Ward != ward || fhir.ID(string(p.ID)) == "" })

	w.Header().Set("Content-Type", fhirNDJSONType)
	w.WriteHeader(http.StatusOK)
	e := &exporter{w: w, enc: json.NewEncoder(w), types: types, since: since}
	if err := s.export(r.Context(), e, ward, ps); err != nil {
		// The status is sent: the last line says the export is not whole.
		s.log.Error("FHIR export", "ward", ward, "lines", e.lines, "err", err)
		_ = e.enc.Encode(fhir.Outcome("exception", "the export stopped part way: it is not whole"))
	}
}

// exporter writes an export's lines.
type exporter struct {
	w     http.ResponseWriter
	enc   *json.Encoder
	types []string
	since time.Time
	lines int
}

// write writes a resource of a type asked for as a line.
func (e *exporter) write(kind string, v any) error {
	if !slices.Contains(e.types, kind) {
		return nil
	}
	if err := e.enc.Encode(v); err != nil {
		return fmt.Errorf("write a %s: %w", kind, err)
	}
	e.lines++
	return nil
}

// flush sends what is written, so that a slow export is seen to progress
// and the server holds no more of it than the current patient's.
func (e *exporter) flush() {
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) export(ctx context.Context, e *exporter, ward vward.WardID, ps []devices.Patient) error {
	// Patients, stays and devices: vward keeps no time they last changed,
	// so _since leaves them all in.
	for _, p := range ps {
		if err := e.write("Patient", fhir.PatientOf(p)); err != nil {
			return err
		}
	}
	for _, p := range ps {
		if err := e.write("EpisodeOfCare", fhir.EpisodeOfCareOf(p)); err != nil {
			return err
		}
	}
	if slices.Contains(e.types, "Device") {
		ds, err := s.Registry.Devices(ctx)
		if err != nil {
			return fmt.Errorf("list the devices: %w", err)
		}
		for _, d := range ds {
			if d.Ward == ward {
				if err := e.write("Device", fhir.DeviceOf(d)); err != nil {
					return err
				}
			}
		}
	}
	e.flush()
	if slices.Contains(e.types, "Observation") {
		for _, p := range ps {
			err := s.observationsOf(ctx, p, time.Time{}, time.Time{}, func(o fhir.Observation) (bool, error) {
				if within(o.Updated(), e.since, time.Time{}) {
					return true, e.write("Observation", o)
				}
				return true, nil
			})
			if err != nil {
				return fmt.Errorf("the observations of %s: %w", p.ID, err)
			}
			e.flush()
		}
	}
	if slices.Contains(e.types, "Flag") {
		as, err := s.Alerts.Alerts(ctx, alerting.Filter{Wards: []vward.WardID{ward}})
		if err != nil {
			return fmt.Errorf("the alerts of %s: %w", ward, err)
		}
		for _, a := range as {
			if within(a.UpdatedAt, e.since, time.Time{}) {
				if err := e.write("Flag", fhir.FlagOf(a)); err != nil {
					return err
				}
			}
		}
	}
	return ctx.Err()
}
