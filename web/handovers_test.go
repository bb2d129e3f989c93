package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/handover"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/notes"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/sqlitedb"
)

// handoverAPI serves the alert, handover and registry routes on a real
// registry, engine, monitor and handover store.
type handoverAPI struct {
	*alertAPI
	reg *devices.Registry
}

func newHandoverAPI(t *testing.T) *handoverAPI {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []vward.WardID{"w1", "w2"} {
		if err := reg.AddWard(ctx, devices.Ward{ID: w, Name: "Ward " + string(w), Pathway: "frailty"}); err != nil {
			t.Fatal(err)
		}
	}
	patients := []devices.Patient{
		{ID: "p1", Ward: "w1", Name: "Ada Whitfield", NHSNumber: "9434765919", Contacts: []devices.Contact{{Name: "Jo", Role: "daughter", Phone: "07700 900123"}}},
		{ID: "p2", Ward: "w2", Name: "Bea"},
	}
	e, err := alerting.OpenEngine(ctx, db, alerting.Config{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, e, log)
	for _, p := range patients {
		if err := reg.Admit(ctx, p); err != nil {
			t.Fatal(err)
		}
		m.Admit(alerting.PatientInfo{ID: p.ID, Ward: p.Ward, Name: p.Name})
	}
	entries, err := observations.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := handover.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := notes.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Add(devices.WithActor(ctx, "alice"), "p1", notes.Input{Kind: "phone_call", Text: "daughter says more breathless since lunch"}); err != nil {
		t.Fatal(err)
	}
	svc := handover.NewService(handover.Deps{Store: store, Alerts: e, Registry: reg,
		Sets: handover.NewLiveSets(m, entries, e.Store()), Notes: handover.NotesOf(ns), Policy: e.Config().PolicyFor})
	s := NewServer(ctx, Deps{Alerts: e, Monitor: m, Registry: reg, Handovers: svc, Log: log})
	mux := http.NewServeMux()
	s.alertRoutes(mux)
	s.registryRoutes(mux)
	s.handoverRoutes(mux)
	srv := asTestUser(t, mux)
	return &handoverAPI{alertAPI: &alertAPI{url: srv.URL, engine: e, monitor: m}, reg: reg}
}

// openAlert returns the patient's open NEWS2 alert.
func (a *handoverAPI) openAlert(t *testing.T, p vward.PatientID) alerting.Alert {
	t.Helper()
	as, err := a.engine.Alerts(context.Background(), alerting.Filter{State: "open", Patient: p, Condition: alerting.News2})
	if err != nil || len(as) != 1 {
		t.Fatalf("open NEWS2 alerts of %s: %v %v", p, as, err)
	}
	return as[0]
}

func TestHandoverAPI(t *testing.T) {
	api := newHandoverAPI(t)
	api.deteriorate("p1", "w1")
	api.deteriorate("p2", "w2")
	al := api.openAlert(t, "p1")
	other := api.openAlert(t, "p2")
	path := fmt.Sprintf("/api/v1/alerts/%d/handover", al.ID)
	body := `{"destination":"999","note":"daughter with her"}`

	refusals := []struct {
		name, user, path, body string
		code                   int
		says                   string
	}{
		{"a viewer", vera, path, body, http.StatusForbidden, "viewers may not hand patients over"},
		{"another ward's alert", alice, fmt.Sprintf("/api/v1/alerts/%d/handover", other.ID), body, http.StatusNotFound, "no such alert"},
		{"no such alert", alice, "/api/v1/alerts/9999/handover", body, http.StatusNotFound, "no such alert"},
		{"an unknown destination", alice, path, `{"destination":"a&e"}`, http.StatusBadRequest,
			`destination \"a\u0026e\" is not one of gp, single_point_of_access, urgent_community_response, 999`},
		{"no destination", alice, path, `{}`, http.StatusBadRequest, "destination is required: one of gp, single_point_of_access, urgent_community_response, 999"},
		{"a misspelt field", alice, path, `{"destinaton":"gp"}`, http.StatusBadRequest, `unknown field \"destinaton\"`},
		{"signed out", "", path, body, http.StatusUnauthorized, "sign in first"},
	}
	for _, r := range refusals {
		code, b := api.do(t, r.user, "POST", r.path, r.body)
		if code != r.code || !strings.Contains(string(b), r.says) {
			t.Errorf("%s: %d %s, want %d saying %q", r.name, code, b, r.code, r.says)
		}
	}

	code, b := api.do(t, alice, "POST", path, body)
	if code != http.StatusCreated {
		t.Fatalf("hand over: %d %s", code, b)
	}
	var h handover.Handover
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	if h.ID == 0 || h.AlertID != al.ID || h.Patient != "p1" || h.Ward != "w1" || h.Destination != handover.Emergency || h.By != "alice" || h.Outcome != "" {
		t.Errorf("handover: %+v", h)
	}
	sit := h.SBARD.Situation
	if sit.Name != "Ada Whitfield" || sit.NHSNumber != "9434765919" || sit.News2 == nil || sit.News2.Score != 8 || !sit.News2.Complete ||
		!strings.HasPrefix(sit.Response, "Emergency response") {
		t.Errorf("situation: %+v", sit)
	}
	if n := len(h.SBARD.Assessment.Observations); n != 7 || h.SBARD.Assessment.Observations[0].Source != "device d-p1" {
		t.Errorf("assessment: %+v", h.SBARD.Assessment)
	}
	for _, want := range []string{"NHS number 943 476 5919", "NEWS2 now: 8, high risk (complete set)", "Respiratory rate:      22 /min    [2]",
		"Escalation contacts: Jo (daughter) 07700 900123", "(phone call, alice): daughter says more breathless since lunch", "Handed over to: 999 emergency ambulance", "Note: daughter with her", "Handed over by alice"} {
		if !strings.Contains(h.Text, want) {
			t.Errorf("the text lacks %q:\n%s", want, h.Text)
		}
	}

	// The alert's audit has the handover; its state is as it was.
	code, b = api.do(t, alice, "GET", fmt.Sprintf("/api/v1/alerts/%d", al.ID), "")
	var full AlertWithAudit
	if err := json.Unmarshal(b, &full); code != http.StatusOK || err != nil {
		t.Fatalf("get alert: %d %s", code, b)
	}
	last := full.Audit[len(full.Audit)-1]
	if last.Action != alerting.ActHandover || last.Actor != "alice" || last.Note != "daughter with her" || last.From != alerting.Raised || last.To != alerting.Raised ||
		!strings.Contains(last.Reason, "handed over to 999 emergency ambulance (999)") || len(last.Observations) == 0 {
		t.Errorf("last audit entry: %+v", last)
	}
	if full.State != alerting.Raised || full.Version != al.Version {
		t.Errorf("the handover changed the alert: %+v", full.Alert)
	}
	pa, err := api.reg.PatientAudit(context.Background(), "p1", 1)
	if err != nil || len(pa) != 1 || pa[0].Action != "patient.handover" || pa[0].Actor != "alice" {
		t.Errorf("patient audit: %+v %v", pa, err)
	}

	// Listed for the ward's viewer; not for another ward.
	list := fmt.Sprintf("/api/v1/alerts/%d/handovers", al.ID)
	code, b = api.do(t, vera, "GET", list, "")
	if code != http.StatusOK || !strings.Contains(string(b), `"destination":"999"`) {
		t.Errorf("list as a viewer: %d %s", code, b)
	}
	if code, b = api.do(t, bob, "GET", list, ""); code != http.StatusNotFound {
		t.Errorf("list from another ward: %d %s", code, b)
	}

	// The outcome: refused to a viewer, another ward, a bad outcome; then once.
	out := fmt.Sprintf("/api/v1/handovers/%d/outcome", h.ID)
	for _, r := range []struct {
		name, user, path, body string
		code                   int
		says                   string
	}{
		{"a viewer", vera, out, `{"outcome":"admitted"}`, http.StatusForbidden, "viewers may not record the outcome"},
		{"another ward", bob, out, `{"outcome":"admitted"}`, http.StatusNotFound, "no such handover"},
		{"no such handover", alice, "/api/v1/handovers/999/outcome", `{"outcome":"admitted"}`, http.StatusNotFound, "no such handover"},
		{"an unknown outcome", alice, out, `{"outcome":"died"}`, http.StatusBadRequest, `outcome \"died\" is not one of seen_at_home, conveyed, admitted, no_further_action`},
	} {
		code, b := api.do(t, r.user, "POST", r.path, r.body)
		if code != r.code || !strings.Contains(string(b), r.says) {
			t.Errorf("outcome, %s: %d %s, want %d saying %q", r.name, code, b, r.code, r.says)
		}
	}
	code, b = api.do(t, alice, "POST", out, `{"outcome":"conveyed","note":"to QEQM"}`)
	if code != http.StatusOK || !strings.Contains(string(b), `"outcome":"conveyed"`) || !strings.Contains(string(b), `"outcome_by":"alice"`) {
		t.Fatalf("outcome: %d %s", code, b)
	}
	code, b = api.do(t, alice, "POST", out, `{"outcome":"admitted"}`)
	if code != http.StatusConflict || !strings.Contains(string(b), "already has its outcome: conveyed, recorded by alice") {
		t.Errorf("a second outcome: %d %s, want 409 naming the first", code, b)
	}
	_, full.Audit, _ = api.engine.Alert(context.Background(), al.ID)
	last = full.Audit[len(full.Audit)-1]
	if last.Action != alerting.ActHandoverOutcome || last.Actor != "alice" || last.Note != "to QEQM" || !strings.Contains(last.Reason, "conveyed to hospital") {
		t.Errorf("the outcome's audit entry: %+v", last)
	}

	// The ward report counts it.
	code, b = api.do(t, alice, "GET", "/api/v1/wards/w1/report?days=7", "")
	var rep devices.WardReport
	if err := json.Unmarshal(b, &rep); code != http.StatusOK || err != nil {
		t.Fatalf("report: %d %s", code, b)
	}
	if su := rep.StepUp; su == nil || su.Handovers != 1 || su.ByDestination["999"] != 1 || su.Outcomes["conveyed"] != 1 || su.Awaiting != 0 {
		t.Errorf("step-up: %+v", rep.StepUp)
	}
}

// A device's alert is not a clinical one to hand over from.
func TestHandoverRefusesATechnicalAlert(t *testing.T) {
	api := newHandoverAPI(t)
	low := 0.1
	api.engine.ObserveDevice("d-p1", "p1", "w1", &low, time.Now())
	as, err := api.engine.Alerts(context.Background(), alerting.Filter{State: "open", Patient: "p1", Condition: alerting.BatteryLow})
	if err != nil || len(as) != 1 {
		t.Fatalf("battery alerts: %v %v", as, err)
	}
	code, b := api.do(t, alice, "POST", fmt.Sprintf("/api/v1/alerts/%d/handover", as[0].ID), `{"destination":"gp"}`)
	if code != http.StatusConflict || !strings.Contains(string(b), "not a clinical alert") {
		t.Errorf("hand over from a battery alert: %d %s", code, b)
	}
}
