package simulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/simulator"
)

func loadPlan(t *testing.T, file string) *simulator.Plan {
	t.Helper()
	sc, err := simulator.Load(filepath.Join("scenarios", file))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sc.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// In the heart failure scenario's dry run, the patient retaining fluid
// holds the weight rule once, at the fourth morning's weighing, while
// NEWS2 never leaves low; the patient whose weight only wanders holds
// nothing.
func TestHeartFailureDryRun(t *testing.T) {
	plan := loadPlan(t, "heart-failure-weight.json")
	obs, _ := simulator.DryRun(plan, plan.Scenario.NewClock(origin, 0))
	var alerts []simulator.Observation
	scored := 0
	for _, o := range obs {
		switch o.Source {
		case simulator.FromAlert:
			alerts = append(alerts, o)
		case simulator.FromNEWS2:
			scored++
			if o.Risk != news2.Low || o.Score > 2 {
				t.Errorf("%s: NEWS2 %d %s at %s, want low (0–2)", o.Patient, o.Score, o.Risk, o.At)
			}
		}
	}
	if scored < 20 {
		t.Errorf("only %d NEWS2 scores in four days", scored)
	}
	if len(alerts) != 1 {
		t.Fatalf("care plan alerts %+v, want one", alerts)
	}
	a := alerts[0]
	if a.Patient != "hf-01" || a.Condition != "care_plan" || a.Risk != news2.Medium || !strings.Contains(a.Detail, "hf-weight-gain-3d") {
		t.Errorf("alert %+v, want hf-01's medium care_plan alert of hf-weight-gain-3d", a)
	}
	if d := a.At.Hours(); d < 95 || d > 96 {
		t.Errorf("the weight rule held at %s, want at the 07:30 weighing of day 4 (95h30m)", a.At)
	}
}

// An expected care_plan alert of medium does not excuse a NEWS2 of
// medium, nor a NEWS2 alert: NEWS2 must stay low unless the scenario says
// otherwise. An expected NEWS2 band still covers the news2 alert.
func TestCarePlanExpectationCoversOnlyItsAlerts(t *testing.T) {
	plan := loadPlan(t, "heart-failure-weight.json")
	for _, c := range []struct {
		name       string
		obs        simulator.Observation
		unexpected bool
	}{
		{"care plan alert", simulator.Observation{Source: simulator.FromAlert, Condition: "care_plan", Patient: "hf-01", Risk: news2.Medium, At: 95 * time.Hour}, false},
		{"NEWS2 medium", simulator.Observation{Source: simulator.FromNEWS2, Patient: "hf-01", Risk: news2.Medium, Score: 5, At: time.Hour}, true},
		{"news2 alert", simulator.Observation{Source: simulator.FromAlert, Condition: "news2", Patient: "hf-01", Risk: news2.Medium, At: time.Hour}, true},
		{"care plan alert of the other patient", simulator.Observation{Source: simulator.FromAlert, Condition: "care_plan", Patient: "hf-02", Risk: news2.Medium, At: time.Hour}, true},
		{"NEWS2 low-medium", simulator.Observation{Source: simulator.FromNEWS2, Patient: "hf-01", Risk: news2.LowMedium, Score: 3, At: time.Hour}, false},
	} {
		rep := simulator.Evaluate(plan, []simulator.Observation{c.obs})
		if got := len(rep.Unexpected) > 0; got != c.unexpected {
			t.Errorf("%s: unexpected = %v, want %v", c.name, got, c.unexpected)
		}
	}
	overnight := loadPlan(t, "overnight-sepsis.json")
	rep := simulator.Evaluate(overnight, []simulator.Observation{{Source: simulator.FromAlert, Condition: "news2", Patient: "sep-01", Risk: news2.High, At: 5 * time.Hour}})
	if len(rep.Unexpected) > 0 {
		t.Errorf("an expected NEWS2 band no longer covers its news2 alert: %+v", rep.Unexpected)
	}
}

// Each patient with a care plan has it put, as a clinician would, with
// the scenario as the reason; a refusal names the patient.
func TestPutCarePlans(t *testing.T) {
	plan := loadPlan(t, "heart-failure-weight.json")
	got := map[string]string{}
	put := func(_ context.Context, path string, body, _ any) error {
		b, err := json.Marshal(body)
		got[path] = string(b)
		return err
	}
	if err := simulator.PutCarePlans(context.Background(), put, plan); err != nil {
		t.Fatal(err)
	}
	want := `{"template":"heart_failure","reason":"scenario heart-failure-weight"}`
	for _, id := range []vward.PatientID{"hf-01", "hf-02"} {
		if b := got["/api/v1/patients/"+string(id)+"/careplan"]; b != want {
			t.Errorf("%s: put %s, want %s", id, b, want)
		}
	}
	if len(got) != 2 {
		t.Errorf("put %d care plans, want 2: %v", len(got), got)
	}
	refuse := func(context.Context, string, any, any) error { return errors.New("status 403") }
	if err := simulator.PutCarePlans(context.Background(), refuse, plan); err == nil || !strings.Contains(err.Error(), "hf-01") {
		t.Errorf("a refused plan: %v, want an error naming hf-01", err)
	}
	if none := loadPlan(t, "copd-scale2.json"); none.HasCarePlans() {
		t.Error("copd-scale2 has care plans")
	}
}
