package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vward/vward/devices"
	"github.com/vward/vward/planstore"
)

// carePlanAPI serves the care plan routes on a real registry, store and
// monitor: p1 on w1, p2 on w2.
type carePlanAPI struct {
	*alertAPI
	reg *devices.Registry
}

func newCarePlanAPI(t *testing.T) *carePlanAPI {
	t.Helper()
	r := newWardsRig(t, adaAndBea())
	ctx, log, db, reg, m := r.ctx, r.log, r.db, r.reg, r.monitor
	plans, err := planstore.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ctx, Deps{Monitor: m, Registry: reg, CarePlans: plans, Log: log})
	mux := http.NewServeMux()
	s.carePlanRoutes(mux)
	s.timelineRoutes(mux)
	srv := asTestUser(t, mux)
	return &carePlanAPI{alertAPI: &alertAPI{url: srv.URL, monitor: m}, reg: reg}
}

const carePlanJSON = `{"version": 1, "name": "Watch SpO2",
	"expected": [{"kind": "spo2", "every": "4h"}],
	"rules": [{"id": "low-spo2", "name": "SpO2 92% or less", "risk": "medium", "type": "threshold", "kind": "spo2", "op": "<=", "value": 92}],
	"escalation_plan": {"ceiling": "no_critical_care", "text": "For admission, not for intubation.", "decided_by": "dr.patel", "decided_at": "2026-11-20T15:30:00Z"}}`

type carePlanAnswer struct {
	CarePlan planstore.View `json:"care_plan"`
	Error    string         `json:"error"`
	Problems []planstore.ProblemView
}

func (a *carePlanAPI) call(t *testing.T, user, method, path, body string) (int, carePlanAnswer, string) {
	t.Helper()
	code, b := a.do(t, user, method, path, body)
	var out carePlanAnswer
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: %d %s: %v", method, path, code, b, err)
	}
	return code, out, string(b)
}

func TestCarePlanAPI(t *testing.T) {
	api := newCarePlanAPI(t)
	if code, _, raw := api.call(t, alice, "GET", "/api/v1/patients/p1/careplan", ""); code != 404 || !strings.Contains(raw, "no current care plan") {
		t.Errorf("before any plan: %d %s", code, raw)
	}
	code, out, raw := api.call(t, alice, "PUT", "/api/v1/patients/p1/careplan", `{"template": "heart_failure", "reason": "admitted with heart failure"}`)
	if code != 200 || out.CarePlan.Version != 1 || out.CarePlan.Plan.Template != "heart_failure" || out.CarePlan.Author != "alice" {
		t.Fatalf("put a template: %d %s", code, raw)
	}
	code, out, raw = api.call(t, alice, "PUT", "/api/v1/patients/p1/careplan", `{"plan": `+carePlanJSON+`, "reason": "SpO2 only, agreed with the HF team", "base_version": 1}`)
	if code != 200 || out.CarePlan.Version != 2 {
		t.Fatalf("put: %d %s", code, raw)
	}
	// A viewer of the ward reads the current plan, as put.
	code, out, raw = api.call(t, vera, "GET", "/api/v1/patients/p1/careplan", "")
	if code != 200 || out.CarePlan.Version != 2 || out.CarePlan.Author != "alice" || out.CarePlan.Reason != "SpO2 only, agreed with the HF team" ||
		out.CarePlan.Plan.Escalation == nil || out.CarePlan.Plan.Escalation.DecidedBy != "dr.patel" || out.CarePlan.Ward != "w1" {
		t.Errorf("viewer reads: %d %s", code, raw)
	}
	code, out, raw = api.call(t, alice, "DELETE", "/api/v1/patients/p1/careplan", `{"reason": "no longer needed"}`)
	if code != 200 || out.CarePlan.Version != 3 || !out.CarePlan.Ended || out.CarePlan.Plan != nil {
		t.Fatalf("end: %d %s", code, raw)
	}
	if code, _, raw := api.call(t, alice, "GET", "/api/v1/patients/p1/careplan", ""); code != 404 {
		t.Errorf("after the end: %d %s", code, raw)
	}
	code, b := api.do(t, vera, "GET", "/api/v1/patients/p1/careplan/history", "")
	var hist struct{ Versions []planstore.View }
	_ = json.Unmarshal(b, &hist)
	if code != 200 || len(hist.Versions) != 3 || hist.Versions[0].Version != 3 || !hist.Versions[0].Ended || hist.Versions[2].Reason != "admitted with heart failure" {
		t.Errorf("history: %d %s", code, b)
	}
	audit, err := api.reg.PatientAudit(context.Background(), "p1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) < 3 || audit[0].Action != "careplan.end" || audit[1].Action != "careplan.set" || audit[1].Actor != "alice" || audit[1].Reason != "SpO2 only, agreed with the HF team" {
		t.Errorf("audit: %+v", audit)
	}
	// Each change is a line of the patient's timeline, newest first.
	code, b = api.do(t, vera, "GET", "/api/v1/patients/p1/timeline", "")
	var tl Timeline
	_ = json.Unmarshal(b, &tl)
	var lines []string
	for _, it := range tl.Items {
		if it.Type == ItemCarePlan {
			c := it.CarePlan
			lines = append(lines, fmt.Sprintf("%d %s %v %s by %s: %s", c.Version, c.Name, c.Ended, c.Ceiling, it.By, c.Reason))
		}
	}
	want := []string{"3  true  by alice: no longer needed", "2 Watch SpO2 false no_critical_care by alice: SpO2 only, agreed with the HF team",
		"1 Heart failure false  by alice: admitted with heart failure"}
	if code != 200 || !slices.Equal(lines, want) {
		t.Errorf("timeline: %d\n%s\nwant\n%s", code, strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	code, b = api.do(t, vera, "GET", "/api/v1/careplan/templates", "")
	var tmpl struct {
		Templates []struct {
			Name string
			Plan json.RawMessage
		}
	}
	_ = json.Unmarshal(b, &tmpl)
	if code != 200 || len(tmpl.Templates) != 4 || tmpl.Templates[0].Name != "acute_respiratory_infection" || !strings.Contains(string(tmpl.Templates[0].Plan), `"rules"`) {
		t.Errorf("templates: %d %s", code, b)
	}
}

func TestCarePlanAPIRefusals(t *testing.T) {
	api := newCarePlanAPI(t)
	if code, _, raw := api.call(t, bob, "PUT", "/api/v1/patients/p2/careplan", `{"plan": `+carePlanJSON+`, "reason": "start"}`); code != 200 {
		t.Fatalf("put on w2: %d %s", code, raw)
	}
	ok := `{"plan": ` + carePlanJSON + `, "reason": "start"}`
	for _, c := range []struct {
		name, user, method, path, body string
		code                           int
		says                           string
	}{
		{"viewer puts", vera, "PUT", "/api/v1/patients/p1/careplan", ok, 403, "viewer"},
		{"viewer ends", vera, "DELETE", "/api/v1/patients/p1/careplan", `{"reason": "x"}`, 403, "viewer"},
		{"another ward's plan", alice, "GET", "/api/v1/patients/p2/careplan", "", 404, "no such patient"},
		{"another ward's history", alice, "GET", "/api/v1/patients/p2/careplan/history", "", 404, "no such patient"},
		{"another ward's put", alice, "PUT", "/api/v1/patients/p2/careplan", ok, 404, "no such patient"},
		{"another ward's end", alice, "DELETE", "/api/v1/patients/p2/careplan", `{"reason": "x"}`, 404, "no such patient"},
		{"unknown patient", alice, "PUT", "/api/v1/patients/p9/careplan", ok, 404, "no such patient"},
		{"no reason", alice, "PUT", "/api/v1/patients/p1/careplan", `{"plan": ` + carePlanJSON + `}`, 400, "reason is required"},
		{"no plan", alice, "PUT", "/api/v1/patients/p1/careplan", `{"reason": "start"}`, 400, "plan is required"},
		{"plan and template", alice, "PUT", "/api/v1/patients/p1/careplan", `{"plan": ` + carePlanJSON + `, "template": "frailty", "reason": "x"}`, 400, "not both"},
		{"from an older version", bob, "PUT", "/api/v1/patients/p2/careplan", `{"template": "frailty", "reason": "x", "base_version": 7}`, 409, "version 1 by bob is the newest"},
		{"unknown template", alice, "PUT", "/api/v1/patients/p1/careplan", `{"template": "gout", "reason": "x"}`, 404, "no care plan template"},
		{"unknown body field", alice, "PUT", "/api/v1/patients/p1/careplan", `{"plan": ` + carePlanJSON + `, "reason": "x", "by": "me"}`, 400, "unknown field"},
		{"nothing to end", alice, "DELETE", "/api/v1/patients/p1/careplan", `{"reason": "x"}`, 404, "no current care plan"},
		{"end without a reason", bob, "DELETE", "/api/v1/patients/p2/careplan", `{}`, 400, "reason is required"},
	} {
		code, _, raw := api.call(t, c.user, c.method, c.path, c.body)
		if code != c.code || !strings.Contains(raw, c.says) {
			t.Errorf("%s: %d %s, want %d saying %q", c.name, code, raw, c.code, c.says)
		}
	}
	// An invalid plan is refused with its problems, each naming the field.
	code, out, raw := api.call(t, alice, "PUT", "/api/v1/patients/p1/careplan",
		`{"plan": {"version": 1, "name": "x", "rules": [{"id": "r", "name": "r", "risk": "severe", "type": "threshold", "kind": "spo2", "op": "<", "value": 90, "window": "3d"}]}, "reason": "x"}`)
	if code != 400 || len(out.Problems) != 2 || out.Problems[0].Field != "rules[0].risk" || out.Problems[1].Field != "rules[0].window" ||
		!strings.Contains(out.Error, "invalid care plan") {
		t.Errorf("invalid plan: %d %s", code, raw)
	}
	// A body a little over careplan's bound reaches careplan, which says
	// what is too large; a body far over it is cut off before.
	for _, c := range []struct {
		size int
		says string
	}{{60 << 10, `"field":"note"`}, {66 << 10, "more than the 65536 allowed"}, {200 << 10, "too large"}} {
		note := strings.Repeat("a", c.size)
		code, _, raw := api.call(t, alice, "PUT", "/api/v1/patients/p1/careplan", `{"plan": {"version": 1, "name": "x", "note": "`+note+`"}, "reason": "x"}`)
		if code != 400 || !strings.Contains(raw, c.says) {
			t.Errorf("a plan of %d bytes: %d %.300s, want it to say %s", c.size, code, raw, c.says)
		}
	}
	// Nothing refused was written.
	if code, b := api.do(t, admin, "GET", "/api/v1/patients/p1/careplan/history", ""); code != 200 || !strings.Contains(string(b), `"versions":[]`) {
		t.Errorf("p1's history after refusals: %d %s", code, b)
	}
	// An admin sees every ward.
	if code, out, raw := api.call(t, admin, "GET", "/api/v1/patients/p2/careplan", ""); code != 200 || out.CarePlan.Author != "bob" {
		t.Errorf("admin reads w2's plan: %d %s", code, raw)
	}
}
