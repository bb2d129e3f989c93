package alerting

import (
	"fmt"
	"testing"
	"time"

	"github.com/vward/vward"
)

// BenchmarkAlertObserve measures the delivery path: one SpO2 reading folded
// into a patient's set, scored, and assessed by the engine. "quiet" patients
// score 0; "alerting" ones have an open high alert the reading only confirms.
func BenchmarkAlertObserve(b *testing.B) {
	for _, tc := range []struct {
		name   string
		v      vitals
		engine bool
	}{
		{"monitor-only", normal, false},
		{"quiet", normal, true},
		{"alerting", high, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			clk := &clock{t: t0}
			r := newRig(b, dbPath(b), clk, Config{})
			if !tc.engine {
				r.monitor.SetEngine(nil)
			}
			const patients = 100
			for i := range patients {
				p := vward.PatientID(fmt.Sprintf("p%d", i))
				r.monitor.Admit(PatientInfo{ID: p, Ward: "w1"})
				r.monitor.Observe(tc.v.readings(p, t0, "m0"))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				p := vward.PatientID(fmt.Sprintf("p%d", i%patients))
				at := t0.Add(time.Duration(i+1) * time.Millisecond)
				r.monitor.Observe([]vward.Reading{{Device: "d", Patient: p, Ward: "w1", Kind: vward.SpO2, Value: tc.v.spo2, At: at}})
			}
		})
	}
}
