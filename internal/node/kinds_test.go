package node_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/vward/vward"
)

// The kinds beyond NEWS2's, for care plans, travel the whole reading path:
// published over MQTT, stored in InfluxDB, read back for the charts and
// shown in the board's row. NEWS2 does not read them: the patient's score
// is the same with them as without.
func TestCarePlanKindsReachHistoryNotNEWS2(t *testing.T) {
	s := start(t)
	ws := signIn(t, s.node.URL(), nurse).dialBoard()
	if snap := readBoard(t, ws); snap.Type != "snapshot" {
		t.Fatalf("first board message = %+v, want the snapshot", snap)
	}
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Minute)
	publish(t, s.broker.URL, "ox-1-client", vward.ReadingsTopic(device), fmt.Appendf(nil,
		`{"msg_id":"ox-1-000001","ts":%q,"readings":[{"type":"heart_rate","value":115},{"type":"temperature","value":38.3}]}`, at.Format(time.RFC3339)))
	first := readBoard(t, ws)
	if first.Patient == nil || first.Patient.News2 == nil {
		t.Fatalf("board message = %+v, want the patient's NEWS2", first)
	}
	publish(t, s.broker.URL, "ox-1-client", vward.ReadingsTopic(device), fmt.Appendf(nil,
		`{"msg_id":"ox-1-000002","ts":%q,"readings":[
			{"type":"weight","value":82.4},{"type":"blood_glucose","value":6.1},{"type":"peak_flow","value":320},
			{"type":"pain_score","value":4},{"type":"fall_event","value":true}]}`, at.Format(time.RFC3339)))
	m := readBoard(t, ws)
	if m.Patient == nil || m.Patient.News2 == nil {
		t.Fatalf("board message = %+v, want the patient's row", m)
	}
	if got, want := *m.Patient.News2, *first.Patient.News2; got.Score != want.Score || got.Complete != want.Complete || got.Risk != want.Risk {
		t.Errorf("NEWS2 after the care plan kinds = %+v, before = %+v: they must not change it", got, want)
	}
	if got := m.Patient.Vitals["weight"]; got.Value != 82.4 || !got.At.Equal(at) {
		t.Errorf("board weight = %+v, want 82.4 at %s", got, at)
	}

	want := map[string]float64{"heart_rate": 115, "temperature": 38.3, "weight": 82.4, "blood_glucose": 6.1, "peak_flow": 320, "pain_score": 4, "fall_event": 1}
	var hist struct {
		Readings []struct {
			Kind  string  `json:"kind"`
			Value float64 `json:"value"`
		} `json:"readings"`
	}
	nurseSession := signIn(t, s.node.URL(), nurse)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code := nurseSession.do("GET", "/api/v1/patients/"+string(patient)+"/readings", nil, &hist); code != http.StatusOK {
			t.Fatalf("history: status %d", code)
		}
		if len(hist.Readings) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := map[string]float64{}
	for _, r := range hist.Readings {
		got[r.Kind] = r.Value
	}
	if len(hist.Readings) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %v, want %v", hist.Readings, want)
	}
}
