package bench

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/web"
)

// patientEvent is v's board event, as the board sends it (encoding/json's
// bytes, web's TestPatientAppendEventMatchesRow).
func patientEvent(t testing.TB, v web.PatientView) []byte {
	t.Helper()
	b, err := json.Marshal(web.Event{Type: "patient", Patient: &v})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The board scanner reads what a JSON decoder reads from a patient event.
func TestScanPatientEvent(t *testing.T) {
	at := time.Date(2026, 11, 24, 1, 2, 3, 456789000, time.UTC)
	// An update carries the trend only when it changed, so it may have
	// neither a score nor a trend after its vitals.
	for _, tc := range []struct{ withScore, withTrend bool }{{false, true}, {true, true}, {true, false}, {false, false}} {
		withScore := tc.withScore
		v := web.PatientView{Patient: "bench-p00001", Ward: "bench", Name: "Bench Patient", SpO2Scale: 1, LastSeen: at,
			Vitals: map[string]web.Vital{
				"spo2":       {Value: 96, Display: "96", Unit: "%", At: at.Add(-time.Second)},
				"heart_rate": {Value: 72, Display: "72", Unit: "/min", At: at},
			},
		}
		if tc.withTrend {
			v.Trend = []alerting.TrendPoint{{At: at.Add(time.Hour), Score: 1}}
		}
		if withScore {
			v.News2 = &alerting.Score{Score: 1, Risk: "low", Missing: []string{}, Subscores: map[string]int{}}
		}
		msg := patientEvent(t, v)
		p, newest, ok := scanPatientEvent(msg)
		if !ok || p != "bench-p00001" || !newest.Equal(at) {
			t.Errorf("scan(%s) = %q, %v, %v; want the patient and %v", msg, p, newest, ok, at)
		}
		var e boardEvent
		if err := json.Unmarshal(msg, &e); err != nil || e.Patient.Patient != p {
			t.Errorf("decoder disagrees: %v %+v", err, e)
		}
	}
	if _, _, ok := scanPatientEvent([]byte(`{"type":"alert","alert":{}}`)); ok {
		t.Error("scanned an alert event as a patient event")
	}
}

// BenchmarkScanPatientEvent is the board client's cost to read a bench
// patient's event: four readings of one message, a partial score.
func BenchmarkScanPatientEvent(b *testing.B) {
	at := time.Date(2026, 11, 24, 1, 2, 3, 456789000, time.UTC)
	v := web.PatientView{Patient: "bench-p00001", Ward: "bench", Name: "Bench Patient", SpO2Scale: 1, LastSeen: at,
		Vitals: map[string]web.Vital{
			"heart_rate":       {Value: 72, Display: "72", Unit: "/min", At: at},
			"spo2":             {Value: 96, Display: "96", Unit: "%", At: at},
			"respiratory_rate": {Value: 14, Display: "14", Unit: "/min", At: at},
			"temperature":      {Value: 36.6, Display: "36.6", Unit: "°C", At: at},
		},
		News2: &alerting.Score{Score: 0, Risk: "low", Missing: []string{"systolic_bp", "consciousness", "supplemental_oxygen"}, Subscores: map[string]int{"heart_rate": 0}},
		Trend: []alerting.TrendPoint{{At: at.Add(-time.Hour), Score: 0, Partial: true}},
	}
	msg := patientEvent(b, v)
	b.ReportAllocs()
	for range b.N {
		if _, _, ok := scanPatientEvent(msg); !ok {
			b.Fatal("not scanned")
		}
	}
}
