package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/observations"
)

// obsAPI serves the observation routes on a real registry, monitor, alert
// engine and in-memory history; the user comes from X-Test-User as in
// alertAPI.
type obsAPI struct {
	*alertAPI
	reg     *devices.Registry
	history *history.Memory
	entries *observations.Store
}

func newObsAPI(t *testing.T) *obsAPI {
	t.Helper()
	r := newWardsRig(t, []devices.Patient{{ID: "p1", Ward: "w1", Name: "Ada"}, {ID: "p2", Ward: "w2", Name: "Bea"}, {ID: "p3", Ward: "w1", Name: "Cy"}})
	ctx, log, db, reg, e, m := r.ctx, r.log, r.db, r.reg, r.engine, r.monitor
	store, err := observations.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	hist := history.NewMemory(1000)
	s := NewServer(ctx, Deps{Monitor: m, History: hist, Registry: reg,
		Observations: observations.NewService(store, hist, m, log), Log: log})
	mux := http.NewServeMux()
	s.observationRoutes(mux)
	srv := asTestUser(t, mux)
	return &obsAPI{alertAPI: &alertAPI{url: srv.URL, engine: e, monitor: m}, reg: reg, history: hist, entries: store}
}

// enter posts an entry and decodes the answer.
func (a *obsAPI) enter(t *testing.T, user string, p vward.PatientID, body string) (int, entryAnswer, string) {
	t.Helper()
	code, b := a.do(t, user, "POST", "/api/v1/patients/"+string(p)+"/observations", body)
	var out entryAnswer
	_ = json.Unmarshal(b, &out)
	return code, out, string(b)
}

// The devices measure SpO2, pulse, blood pressure and temperature; the
// telephone call adds respiratory rate, consciousness and oxygen: together
// they make a complete NEWS2, merged by measurement time.
func TestEnterObservationsCompletesTheSet(t *testing.T) {
	api := newObsAPI(t)
	at := time.Now().Add(-10 * time.Minute)
	var dev []vward.Reading
	for k, v := range map[vward.ReadingKind]float64{vward.SpO2: 96, vward.HeartRate: 80, vward.SystolicBP: 125, vward.Temperature: 37.0} {
		dev = append(dev, vward.Reading{Device: "ox-1", Patient: "p1", Ward: "w1", Kind: k, Value: v, At: at})
	}
	api.monitor.Observe(dev)
	if row, _ := api.monitor.Patient("p1"); row.Result.Complete {
		t.Fatal("the devices alone made a complete set")
	}

	code, got, raw := api.enter(t, alice, "p1", `{"source":"telephone","readings":{"respiratory_rate":25,"consciousness":"A","supplemental_oxygen":false}}`)
	if code != http.StatusCreated {
		t.Fatalf("enter: %d %s", code, raw)
	}
	e := got.Entry
	if e.ID != "obs-1" || e.Source != observations.Telephone || e.Author != "alice" || !e.Current || !e.Stored || e.EnteredInError != nil {
		t.Errorf("entry: %+v", e)
	}
	if e.Readings["respiratory_rate"] != 25.0 || e.Readings["consciousness"] != "A" || e.Readings["supplemental_oxygen"] != false {
		t.Errorf("entry's readings: %v", e.Readings)
	}
	if time.Since(e.MeasuredAt) > time.Minute || time.Since(e.MeasuredAt) < 0 {
		t.Errorf("measured_at %v, want now by default", e.MeasuredAt)
	}
	// RR 25 scores 3, the rest 0: complete, and 3 in one parameter.
	if got.Patient == nil || got.Patient.News2 == nil {
		t.Fatalf("the answer has no scored patient: %s", raw)
	}
	n := got.Patient.News2
	if !n.Complete || n.Score != 3 || n.Subscores["respiratory_rate"] != 3 {
		t.Fatalf("patient after the entry: %+v", got.Patient)
	}
	if v := got.Patient.Vitals["consciousness"]; v.Display != "A" {
		t.Errorf("consciousness vital %+v", v)
	}
	rs, err := api.history.Readings(context.Background(), "p1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	entered := 0
	for _, r := range rs {
		if r.Device == "person:telephone" {
			entered++
			if r.MsgID != "obs-1" || r.Ward != "w1" {
				t.Errorf("stored reading %+v", r)
			}
		}
	}
	if entered != 3 {
		t.Errorf("history holds %d entered readings, want 3: %+v", entered, rs)
	}
	audit, err := api.reg.PatientAudit(context.Background(), "p1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) == 0 || audit[0].Action != "observation.enter" || audit[0].Actor != "alice" ||
		!strings.Contains(audit[0].Detail, "obs-1 by telephone") || !strings.Contains(audit[0].Detail, "respiratory_rate 25/min") {
		t.Errorf("audit: %+v", audit)
	}
	code, b := api.do(t, vera, "GET", "/api/v1/patients/p1/observations", "")
	if code != 200 || !strings.Contains(string(b), `"id":"obs-1"`) {
		t.Errorf("viewer's list: %d %s", code, b)
	}
}

func TestEnterObservationsRefusals(t *testing.T) {
	api := newObsAPI(t)
	ok := `{"source":"telephone","readings":{"respiratory_rate":18}}`
	future := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name, user string
		patient    vward.PatientID
		body       string
		code       int
		says       []string
	}{
		{"viewer", vera, "p1", ok, 403, []string{"viewer"}},
		{"another ward's patient", alice, "p2", ok, 404, []string{"no such patient"}},
		{"unknown patient", alice, "p9", ok, 404, []string{"no such patient"}},
		{"unknown kind", alice, "p1", `{"source":"telephone","readings":{"steps":6100}}`, 400, []string{"readings.steps", "unknown reading type"}},
		{"out of range", alice, "p1", `{"source":"telephone","readings":{"spo2":105,"heart_rate":70}}`, 400, []string{"readings.spo2", "outside the possible range 0–100"}},
		{"not a number", alice, "p1", `{"source":"telephone","readings":{"temperature":"hot"}}`, 400, []string{"readings.temperature", "not a number"}},
		{"bad ACVPU", alice, "p1", `{"source":"telephone","readings":{"consciousness":"X"}}`, 400, []string{"readings.consciousness", "A, C, V, P, U"}},
		{"no readings", alice, "p1", `{"source":"telephone","readings":{}}`, 400, []string{"readings is required"}},
		{"no source", alice, "p1", `{"readings":{"heart_rate":70}}`, 400, []string{"source is required", "care_home_staff"}},
		{"unknown source", alice, "p1", `{"source":"fax","readings":{"heart_rate":70}}`, 400, []string{"fax", "is not one of"}},
		{"future", alice, "p1", fmt.Sprintf(`{"source":"carer","measured_at":%q,"readings":{"heart_rate":70}}`, future), 400, []string{"measured_at", "in the future", "allowed skew 2m0s"}},
		{"too old", alice, "p1", fmt.Sprintf(`{"source":"carer","measured_at":%q,"readings":{"heart_rate":70}}`, time.Now().Add(-8*24*time.Hour).UTC().Format(time.RFC3339)), 400, []string{"measured_at", "older than"}},
		{"bad time", alice, "p1", `{"source":"carer","measured_at":"14:00","readings":{"heart_rate":70}}`, 400, []string{"measured_at", "RFC 3339"}},
		{"unknown field", alice, "p1", `{"source":"carer","reading":{"heart_rate":70}}`, 400, []string{"unknown field"}},
	} {
		code, _, raw := api.enter(t, c.user, c.patient, c.body)
		if code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, raw, c.code)
			continue
		}
		for _, s := range c.says {
			if !strings.Contains(raw, s) {
				t.Errorf("%s: %s does not say %q", c.name, raw, s)
			}
		}
	}
	if es, _ := api.entries.List(context.Background(), "p1", 10); len(es) != 0 {
		t.Errorf("refused entries were kept: %+v", es)
	}
	// Within the clock-skew allowance, as for a device.
	soon := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	if code, _, raw := api.enter(t, alice, "p1", fmt.Sprintf(`{"source":"carer","measured_at":%q,"readings":{"heart_rate":70}}`, soon)); code != 201 {
		t.Errorf("a minute ahead: %d %s", code, raw)
	}
}

// An entry older than the freshness window is kept and charted, but the
// answer says it is not part of the current NEWS2, and it does not score.
func TestEnterObservationsOlderThanTheWindow(t *testing.T) {
	api := newObsAPI(t)
	at := time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339)
	code, got, raw := api.enter(t, alice, "p1", fmt.Sprintf(`{"source":"home_visit","measured_at":%q,"readings":{"respiratory_rate":30}}`, at))
	if code != 201 {
		t.Fatalf("enter: %d %s", code, raw)
	}
	if got.Entry.Current || !strings.Contains(got.Entry.Note, "not part of the current NEWS2") || !strings.Contains(got.Entry.Note, "respiratory_rate") {
		t.Errorf("an entry 3 h old: current %v, note %q", got.Entry.Current, got.Entry.Note)
	}
	if got.Patient == nil || got.Patient.Vitals["respiratory_rate"].Value != 30 {
		t.Errorf("the old value is not shown as the latest: %+v", got.Patient)
	}
	if n := got.Patient.News2; n != nil && n.Subscores["respiratory_rate"] != 0 {
		t.Errorf("a value 3 h old scored: %+v", n)
	}
}

// Marking an entry entered in error takes its values out of the set: the
// device's earlier value comes back, and the patient is rescored.
func TestEnteredInError(t *testing.T) {
	api := newObsAPI(t)
	before := time.Now().Add(-20 * time.Minute)
	if err := api.history.WriteReadings(context.Background(), []vward.Reading{{Device: "rr-1", Patient: "p1", Ward: "w1", Kind: vward.RespiratoryRate, Value: 16, At: before}}); err != nil {
		t.Fatal(err)
	}
	api.monitor.Observe([]vward.Reading{{Device: "rr-1", Patient: "p1", Ward: "w1", Kind: vward.RespiratoryRate, Value: 16, At: before}})
	// Another entry, not in error, of another kind stays.
	if code, _, raw := api.enter(t, alice, "p1", `{"source":"carer","readings":{"temperature":38.5}}`); code != 201 {
		t.Fatalf("enter: %d %s", code, raw)
	}
	code, got, raw := api.enter(t, alice, "p1", `{"source":"telephone","readings":{"respiratory_rate":30,"temperature":36.5}}`)
	if code != 201 || got.Patient.News2.Subscores["respiratory_rate"] != 3 {
		t.Fatalf("enter the mistake: %d %s", code, raw)
	}
	id := got.Entry.ID

	mark := func(user, id, body string) (int, entryAnswer, string) {
		code, b := api.do(t, user, "POST", "/api/v1/observations/"+id+"/entered-in-error", body)
		var out entryAnswer
		_ = json.Unmarshal(b, &out)
		return code, out, string(b)
	}
	for _, c := range []struct {
		name, user, id, body string
		code                 int
	}{
		{"viewer", vera, id, `{"reason":"wrong patient"}`, 403},
		{"another ward", bob, id, `{"reason":"wrong patient"}`, 404},
		{"no such entry", alice, "obs-99", `{"reason":"wrong patient"}`, 404},
		{"not an id", alice, "x", `{"reason":"wrong patient"}`, 404},
		{"no reason", alice, id, `{}`, 400},
	} {
		if code, _, raw := mark(c.user, c.id, c.body); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, raw, c.code)
		}
	}
	code, got, raw = mark(alice, id, `{"reason":"read from the wrong patient's chart"}`)
	if code != 200 {
		t.Fatalf("mark: %d %s", code, raw)
	}
	if got.Entry.EnteredInError == nil || got.Entry.EnteredInError.By != "alice" || got.Entry.Current {
		t.Errorf("marked entry: %+v", got.Entry)
	}
	v := got.Patient.Vitals
	if v["respiratory_rate"].Value != 16 || v["temperature"].Value != 38.5 {
		t.Errorf("after the mark, vitals %+v; want the device's RR 16 and the carer's 38.5 back", v)
	}
	if s := got.Patient.News2.Subscores; s["respiratory_rate"] != 0 || s["temperature"] != 1 {
		t.Errorf("after the mark, subscores %v", s)
	}
	if code, _, raw := mark(alice, id, `{"reason":"again"}`); code != http.StatusConflict {
		t.Errorf("marked twice: %d %s", code, raw)
	}
	audit, _ := api.reg.PatientAudit(context.Background(), "p1", 10)
	if len(audit) == 0 || audit[0].Action != "observation.entered_in_error" || audit[0].Reason != "read from the wrong patient's chart" || audit[0].Actor != "alice" {
		t.Errorf("audit: %+v", audit)
	}
}
