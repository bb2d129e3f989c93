package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/planstore"
	"github.com/vward/vward/sqlitedb"
	"github.com/vward/vward/web"
)

// carePlanTEP is a plan with a treatment escalation plan, as a clinician
// would put it. Its times are at noon UTC, so that the board shows the
// same dates in any browser's time zone.
const carePlanTEP = `{"version": 1, "name": "Heart failure", "template": "heart_failure",
	"expected": [{"kind": "weight", "every": "1d", "by": "10:00"}, {"kind": "spo2", "every": "12h"}],
	"rules": [{"id": "hf-weight-gain-3d", "name": "Weight up more than 2 kg in 3 days", "risk": "medium", "type": "change",
		"kind": "weight", "direction": "rise", "op": ">", "value": 2, "window": "3d", "basis": "ESC 2021 heart failure guidelines."}],
	"escalation_plan": {"ceiling": "no_critical_care", "text": "For admission and NIV; not for intubation. Discussed with Mrs Smith and her daughter.",
		"decided_by": "dr.patel", "decided_at": "2026-11-20T12:00:00Z", "review_by": "2027-02-20T12:00:00Z"}}`

type carePlanAnswer struct {
	CarePlan planstore.View `json:"care_plan"`
	Error    string         `json:"error"`
	Problems []planstore.ProblemView
}

// A clinician of the ward puts a care plan over REST and reads it back;
// another ward's clinician can neither read nor write it, a viewer reads
// but cannot write; the versions and the audit keep every change.
func TestCarePlanOverREST(t *testing.T) {
	s := start(t)
	url := s.node.URL()
	n, v, other := signIn(t, url, nurse), signIn(t, url, viewer), signIn(t, url, otherNurse)
	path := "/api/v1/patients/" + string(patient) + "/careplan"
	var out carePlanAnswer
	if code := n.do("GET", path, nil, &out); code != http.StatusNotFound {
		t.Errorf("before any plan: %d %+v", code, out)
	}
	put := map[string]any{"plan": json.RawMessage(carePlanTEP), "reason": "Admitted with decompensated heart failure"}
	if code := n.do("PUT", path, put, &out); code != http.StatusOK || out.CarePlan.Version != 1 || out.CarePlan.Author != nurse {
		t.Fatalf("nurse puts: %d %+v", code, out)
	}
	out = carePlanAnswer{}
	if code := v.do("GET", path, nil, &out); code != http.StatusOK || out.CarePlan.Plan == nil || out.CarePlan.Plan.Escalation == nil ||
		out.CarePlan.Plan.Escalation.DecidedBy != "dr.patel" || out.CarePlan.Reason != "Admitted with decompensated heart failure" ||
		len(out.CarePlan.Words.Rules) != 1 || !strings.Contains(out.CarePlan.Words.Rules[0], "weight up more than 2 kg") {
		t.Errorf("viewer reads: %d %+v", code, out)
	}
	for _, c := range []struct {
		name   string
		who    *session
		method string
		path   string
		body   any
		code   int
	}{
		{"another ward reads", other, "GET", path, nil, http.StatusNotFound},
		{"another ward's history", other, "GET", path + "/history", nil, http.StatusNotFound},
		{"another ward writes", other, "PUT", path, put, http.StatusNotFound},
		{"another ward ends", other, "DELETE", path, map[string]string{"reason": "x"}, http.StatusNotFound},
		{"viewer writes", v, "PUT", path, put, http.StatusForbidden},
		{"viewer ends", v, "DELETE", path, map[string]string{"reason": "x"}, http.StatusForbidden},
		{"no reason", n, "PUT", path, map[string]any{"plan": json.RawMessage(carePlanTEP)}, http.StatusBadRequest},
	} {
		var ans carePlanAnswer
		if code := c.who.do(c.method, c.path, c.body, &ans); code != c.code {
			t.Errorf("%s: %d %+v, want %d", c.name, code, ans, c.code)
		}
	}
	var bad carePlanAnswer
	badPlan := map[string]any{"plan": json.RawMessage(`{"version": 1, "name": "x", "rules": [{"id": "r", "name": "r", "risk": "medium", "type": "threshold", "kind": "wieght", "op": "<", "value": 1}]}`), "reason": "x"}
	if code := n.do("PUT", path, badPlan, &bad); code != http.StatusBadRequest || len(bad.Problems) == 0 || bad.Problems[0].Field != "rules[0].kind" {
		t.Errorf("an invalid plan: %d %+v", code, bad)
	}
	if code := n.do("PUT", path, map[string]any{"template": "heart_failure", "reason": "back to the template"}, &out); code != http.StatusOK || out.CarePlan.Version != 2 {
		t.Fatalf("nurse puts the template: %d %+v", code, out)
	}
	if code := n.do("DELETE", path, map[string]string{"reason": "discharged to the HF clinic"}, &out); code != http.StatusOK || !out.CarePlan.Ended {
		t.Fatalf("nurse ends the plan: %d %+v", code, out)
	}
	var hist struct{ Versions []planstore.View }
	if code := v.do("GET", path+"/history", nil, &hist); code != http.StatusOK || len(hist.Versions) != 3 ||
		!hist.Versions[0].Ended || hist.Versions[1].Plan.Escalation != nil || hist.Versions[2].Plan.Escalation == nil {
		t.Errorf("history: %d %+v", code, hist)
	}
	var tmpl struct{ Templates []struct{ Name string } }
	if code := v.do("GET", "/api/v1/careplan/templates", nil, &tmpl); code != http.StatusOK || len(tmpl.Templates) != 4 {
		t.Errorf("templates: %d %+v", code, tmpl)
	}
	audit, err := s.node.Registry.PatientAudit(context.Background(), patient, 20)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, e := range audit {
		if strings.HasPrefix(e.Action, "careplan.") {
			changes = append(changes, e.Action+" by "+e.Actor+": "+e.Reason)
		}
	}
	want := "careplan.end by nurse: discharged to the HF clinic, careplan.set by nurse: back to the template, " +
		"careplan.set by nurse: Admitted with decompensated heart failure"
	if strings.Join(changes, ", ") != want {
		t.Errorf("the patient's audit of care plans:\n%v\nwant\n%s", changes, want)
	}
}

// afHeartRate is a plan for a patient in rate-controlled atrial
// fibrillation: a heart rate above 100 means the rate is no longer
// controlled, though NEWS2 scores it 1 or 2.
const afHeartRate = `{"version": 1, "name": "Rate-controlled AF",
	"rules": [{"id": "af-hr-above-100", "name": "Heart rate above 100 in rate-controlled AF", "risk": "medium",
		"type": "threshold", "kind": "heart_rate", "op": ">", "value": 100,
		"basis": "Resting ventricular rate under 110, ideally under 100 (ESC 2020 AF guidelines, lenient rate control)."}]}`

// A plan put over REST watches the patient from the next reading: a device
// publishes a heart rate that breaks the plan's rule while NEWS2 stays
// low, and a care_plan alert naming the rule reaches the board and the
// alerts API, with no NEWS2 alert. A plan changed outside the web server
// (the CLI) without the rule withdraws its alert within seconds.
func TestCarePlanAlertOverMQTT(t *testing.T) {
	s := start(t)
	n := signIn(t, s.node.URL(), nurse)
	board := feed(t, n.dialBoard())
	board.next("snapshot", func(e boardEvent) bool { return e.Type == "snapshot" })
	path := "/api/v1/patients/" + string(patient) + "/careplan"
	var out carePlanAnswer
	put := map[string]any{"plan": json.RawMessage(afHeartRate), "reason": "AF, rate control with bisoprolol"}
	if code := n.do("PUT", path, put, &out); code != http.StatusOK {
		t.Fatalf("put the plan: %d %+v", code, out)
	}
	if v := s.node.Monitor.CarePlanVersion(patient); v != out.CarePlan.Version {
		t.Fatalf("the monitor watches version %d, want %d at once", v, out.CarePlan.Version)
	}

	// RR 16, SpO2 97, SBP 124, HR 112 → 2, 37.0 °C: NEWS2 2, low.
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	publish(t, s.broker.URL, "ox-1-client", vward.ReadingsTopic(device), vitalsMessage("ox-1-cp-1", at, 16, 97, 124, 112, "A", 37.0))
	raised := board.alert(alerting.ActRaised)
	a := raised.Alert
	if a.Condition != alerting.CarePlan || a.Rule != "af-hr-above-100" || a.Patient != patient || a.Risk != news2.Medium ||
		!raised.Page || !strings.Contains(a.Reason, "Heart rate above 100 in rate-controlled AF: heart_rate 112") {
		t.Fatalf("raised %+v (page %v), want the care plan rule's alert", a, raised.Page)
	}
	var open struct{ Alerts []alerting.Alert }
	if code := n.do("GET", "/api/v1/alerts?state=open&ward=w1", nil, &open); code != http.StatusOK ||
		len(open.Alerts) != 1 || open.Alerts[0].ID != a.ID || open.Alerts[0].Rule != "af-hr-above-100" {
		t.Fatalf("open alerts: %d %+v, want the care plan alert alone", code, open.Alerts)
	}
	for cond, want := range map[string]int{"care_plan": 1, "news2": 0} {
		var of struct{ Alerts []alerting.Alert }
		if code := n.do("GET", "/api/v1/alerts?state=open&condition="+cond, nil, &of); code != http.StatusOK || len(of.Alerts) != want {
			t.Errorf("open %s alerts: %d %+v, want %d", cond, code, of.Alerts, want)
		}
	}
	var one web.AlertWithAudit
	if code := n.do("GET", fmt.Sprintf("/api/v1/alerts/%d", a.ID), nil, &one); code != http.StatusOK || len(one.Audit) == 0 ||
		!strings.Contains(string(one.Audit[0].Observations), `"id":"af-hr-above-100"`) {
		t.Fatalf("alert %d: %d %+v", a.ID, code, one)
	}
	row, ok := s.node.Monitor.Patient(patient)
	if !ok || row.Result.Score != 2 || row.Result.Risk != news2.Low {
		t.Errorf("NEWS2 %+v, want 2, low", row.Result)
	}

	// Changed as the CLI does, from outside the web server: the rule is
	// gone, so its alert is withdrawn.
	ctx := devices.WithActor(context.Background(), "cli:ward-manager")
	if _, err := s.node.CarePlans.PutTemplate(ctx, patient, "acute_respiratory_infection", "AF settled; watching the chest infection"); err != nil {
		t.Fatal(err)
	}
	gone := board.alert(alerting.ActResolved)
	if gone.Alert.ID != a.ID || gone.Alert.State != alerting.Resolved || !strings.Contains(gone.Alert.Reason, "af-hr-above-100 removed from the plan") {
		t.Fatalf("resolved %+v", gone.Alert)
	}
}

// A plan written two days ago by another process expects a daily weight
// that never came: the running node raises its overdue alert on the board
// and the REST API, beside nothing from NEWS2, and a weight sent over MQTT
// clears it.
func TestCarePlanExpectedWeight(t *testing.T) {
	var dataDir string
	s := start(t, func(c *node.Config) { dataDir = c.DataDir })
	n := signIn(t, s.node.URL(), nurse)
	board := feed(t, n.dialBoard())
	board.next("snapshot", func(e boardEvent) bool { return e.Type == "snapshot" })

	db, err := sqlitedb.Open(filepath.Join(dataDir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	written := time.Now().Add(-48 * time.Hour)
	if _, err := db.Exec(`INSERT INTO care_plan_versions (patient_id, version, ward_id, plan, author, reason, changed_at) VALUES (?, 1, ?, ?, 'cli:ward-manager', 'heart failure', ?)`,
		patient, ward, `{"version": 1, "name": "Heart failure", "expected": [{"kind": "weight", "every": "1d"}]}`, sqlitedb.FormatTime(written)); err != nil {
		t.Fatal(err)
	}
	isWeight := func(e boardEvent) bool {
		return e.Type == "alert" && e.Alert != nil && e.Alert.Condition == alerting.Overdue && e.Alert.Rule == alerting.ExpectedRule(vward.Weight)
	}
	raised := board.next("the weight's overdue alert", func(e boardEvent) bool { return isWeight(e) && e.Change == alerting.ActRaised })
	if a := raised.Alert; a.Patient != patient || !raised.Page || !strings.Contains(a.Reason, "no weight since the care plan began to expect it") {
		t.Fatalf("raised %+v (page %v)", a, raised.Page)
	}
	var open struct{ Alerts []alerting.Alert }
	if code := n.do("GET", "/api/v1/alerts?state=open&condition=overdue", nil, &open); code != http.StatusOK ||
		len(open.Alerts) != 1 || open.Alerts[0].ID != raised.Alert.ID {
		t.Fatalf("open overdue alerts: %d %+v, want the weight's alone", code, open.Alerts)
	}
	var one web.AlertWithAudit
	if code := n.do("GET", fmt.Sprintf("/api/v1/alerts/%d", raised.Alert.ID), nil, &one); code != http.StatusOK || len(one.Audit) == 0 ||
		!strings.Contains(string(one.Audit[0].Observations), `"expected":"every 1d"`) {
		t.Fatalf("alert %d: %d %+v", raised.Alert.ID, code, one)
	}

	expected := func() []alerting.ExpectedStatus {
		var out struct{ Expected []alerting.ExpectedStatus }
		if code := n.do("GET", "/api/v1/patients/"+string(patient)+"/careplan", nil, &out); code != http.StatusOK {
			t.Fatalf("the care plan: %d", code)
		}
		return out.Expected
	}
	if ex := expected(); len(ex) != 1 || ex[0].Kind != vward.Weight || !ex[0].Overdue || !ex[0].Last.IsZero() || ex[0].Expected != "every 1d" {
		t.Fatalf("the patient view's expected measurements: %+v, want the weight overdue", ex)
	}

	at := time.Now().UTC().Truncate(time.Second)
	publish(t, s.broker.URL, "ox-1-client", vward.ReadingsTopic(device), fmt.Appendf(nil,
		`{"msg_id":"ox-1-w1","ts":%q,"readings":[{"type":"weight","value":82.4}]}`, at.Format(time.RFC3339)))
	cleared := board.next("the weight's alert cleared", func(e boardEvent) bool { return isWeight(e) && e.Change == alerting.ActCleared })
	if cleared.Alert.ID != raised.Alert.ID || cleared.Alert.Active {
		t.Fatalf("cleared %+v", cleared.Alert)
	}
	if ex := expected(); len(ex) != 1 || ex[0].Overdue || !ex[0].Last.Equal(at) || !ex[0].Due.Equal(at.Add(24*time.Hour)) {
		t.Fatalf("after the weight: %+v, want it due a day after it", ex)
	}
}

// A plan given to a patient whose weights are already in the history reads
// them back: its three-day weight rule sees the gain at once, not only the
// weights sent after it. A restarted node reads back every plan's readings
// the same way.
func TestCarePlanReadsItsWindowBack(t *testing.T) {
	s := start(t)
	n := signIn(t, s.node.URL(), nurse)
	board := feed(t, n.dialBoard())
	board.next("snapshot", func(e boardEvent) bool { return e.Type == "snapshot" })
	// Weighed over the last three days by the scale the patient had then:
	// in the history, as they would be after a restart.
	now := time.Now().UTC().Truncate(time.Second)
	var weights []vward.Reading
	for i, w := range []struct {
		ago time.Duration
		kg  float64
	}{{60 * time.Hour, 80.0}, {30 * time.Hour, 81.2}, {time.Hour, 82.3}} {
		weights = append(weights, vward.Reading{Device: "scale-1", Patient: patient, Ward: ward, MsgID: fmt.Sprintf("scale-1-%d", i),
			Kind: vward.Weight, Value: w.kg, At: now.Add(-w.ago)})
	}
	if err := s.node.History.WriteReadings(context.Background(), weights); err != nil {
		t.Fatal(err)
	}

	var out carePlanAnswer
	put := map[string]any{"plan": json.RawMessage(carePlanTEP), "reason": "heart failure, home on diuretics"}
	if code := n.do("PUT", "/api/v1/patients/"+string(patient)+"/careplan", put, &out); code != http.StatusOK {
		t.Fatalf("put the plan: %d %+v", code, out)
	}
	raised := board.next("the weight rule's alert", func(e boardEvent) bool {
		return e.Type == "alert" && e.Alert != nil && e.Alert.Condition == alerting.CarePlan && e.Change == alerting.ActRaised
	})
	if a := raised.Alert; a.Rule != "hf-weight-gain-3d" || !strings.Contains(a.Reason, "read back from the history") {
		t.Fatalf("raised %+v", a)
	}
}
