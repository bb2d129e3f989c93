package node_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/boardclient"
	"github.com/vward/vward/simulator"
)

// The heart failure scenario's run reaches vward whole, whatever its alert
// expectation says: each patient's care plan put over REST with the
// scenario as the reason, before any reading, and every morning's weight
// stored and charted, rising by more than 2 kg for the patient retaining
// fluid.
func TestScenarioHeartFailureWeights(t *testing.T) {
	sc, err := simulator.Load(filepath.Join("..", "..", "simulator", "scenarios", "heart-failure-weight.json"))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sc.Plan()
	if err != nil {
		t.Fatal(err)
	}
	s := startScenarioNode(t, plan)
	ctx := context.Background()
	began := time.Now()
	if _, err := simulator.RunScenario(ctx, sc, simulator.RunOptions{
		MQTTURL: s.brokerURL, Credentials: s.credentials, Board: &s.clinician, Grace: time.Second, Log: scenarioLog(t),
	}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	st, err := boardclient.Open(ctx, s.clinician, func(time.Time, []byte) {}, boardclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []vward.PatientID{"hf-01", "hf-02"} {
		v, err := s.node.CarePlans.Current(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if v.Plan.Template != "heart_failure" || v.Reason != "scenario heart-failure-weight" || v.Author != scenarioClinician || !v.At.After(began) {
			t.Errorf("%s: care plan %q by %s at %s for %q, want heart_failure by %s during the run", id, v.Plan.Template, v.Author, v.At, v.Reason, scenarioClinician)
		}
		var out struct {
			Readings []struct {
				Kind   vward.ReadingKind `json:"kind"`
				Value  float64           `json:"value"`
				At     time.Time         `json:"at"`
				Device vward.DeviceID    `json:"device"`
			} `json:"readings"`
		}
		if err := st.Get(ctx, "/api/v1/patients/"+string(id)+"/readings?hours=1", &out); err != nil {
			t.Fatal(err)
		}
		var weights []float64
		for _, r := range out.Readings {
			if r.Kind != vward.Weight {
				continue
			}
			if r.Device != vward.DeviceID(string(id)+"-scale") || r.At.Before(v.At) {
				t.Errorf("%s: weight %g from %s at %s, the plan put at %s", id, r.Value, r.Device, r.At, v.At)
			}
			weights = append(weights, r.Value)
		}
		t.Logf("%s: weights %v", id, weights)
		if len(weights) != 4 {
			t.Fatalf("%s: %d weights stored, want one a morning for 4 mornings: %v", id, len(weights), weights)
		}
		gain := weights[3] - weights[0]
		if id == "hf-01" && gain <= 2 || id == "hf-02" && (gain > 1 || gain < -1) {
			t.Errorf("%s: weight from %g to %g kg", id, weights[0], weights[3])
		}
	}
}
