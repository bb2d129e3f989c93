package alerting

import (
	"fmt"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
	"github.com/vward/vward/news2"
)

// BenchmarkAlertObserve measures the delivery path: one SpO2 reading folded
// into a patient's set, scored, and assessed by the engine. "quiet" patients
// score 0; "alerting" ones have an open high alert the reading only confirms;
// "care-plan" ones are quiet, with the acute respiratory infection plan's
// two SpO2 rules evaluated on every reading.
func BenchmarkAlertObserve(b *testing.B) {
	for _, tc := range []struct {
		name   string
		v      vitals
		engine bool
		plan   bool
	}{
		{"monitor-only", normal, false, false},
		{"quiet", normal, true, false},
		{"alerting", high, true, false},
		{"care-plan", normal, true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			clk := &clock{t: t0}
			r := newRig(b, dbPath(b), clk, Config{})
			if !tc.engine {
				r.monitor = NewMonitor(news2.DefaultFreshness(), nil, nil, quiet)
				r.monitor.now = clk.Now
			}
			const patients = 100
			for i := range patients {
				p := vward.PatientID(fmt.Sprintf("p%d", i))
				r.monitor.Admit(PatientInfo{ID: p, Ward: "w1"})
				if tc.plan {
					plan, err := careplan.Template("acute_respiratory_infection")
					if err != nil {
						b.Fatal(err)
					}
					r.monitor.SetCarePlan(p, plan, 1, nil, "benchmark")
				}
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

// BenchmarkAlertObserveFleet is the delivery path as ingest drives it at
// step 2 of docs/performance.md: 12,700 patients, each message one device's
// four readings, then ObserveDevice. At this size the patient and device
// records are out of the CPU's caches, as they are in production, which
// the 100-patient benchmark above does not show. "board" adds a board that
// watches every patient and fetches each changed row at once, as the board
// hub's writer does for a client that keeps up (web.Hub).
func BenchmarkAlertObserveFleet(b *testing.B) {
	b.Run("no-board", func(b *testing.B) { benchmarkFleet(b, nil) })
	b.Run("board", func(b *testing.B) { benchmarkFleet(b, &fetchingBoard{}) })
}

// fetchingBoard is a RowPublisher that listens to every ward and fetches
// each changed row at once, into a row it reuses. Encoding the row is
// web's (BenchmarkPatientEventJSON, BenchmarkRowFetch).
type fetchingBoard struct{ row Row }

func (f *fetchingBoard) ListeningTo(vward.WardID) bool { return true }

func (f *fetchingBoard) Publish(Event) {}

func (f *fetchingBoard) RowChanged(c RowChange) {
	c.Rows.CopyRow(c.Patient, c.Trend, &f.row)
}

func benchmarkFleet(b *testing.B, board RowPublisher) {
	clk := &clock{t: t0}
	r := newRig(b, dbPath(b), clk, Config{})
	if board != nil {
		r.monitor.publish = board
	}
	const patients = 12700
	type device struct {
		id      vward.DeviceID
		patient vward.PatientID
	}
	fleet := make([]device, patients)
	for i := range fleet {
		fleet[i] = device{vward.DeviceID(fmt.Sprintf("dev-%05d", i)), vward.PatientID(fmt.Sprintf("p%05d", i))}
		r.monitor.Admit(PatientInfo{ID: fleet[i].patient, Ward: "w1"})
	}
	msg := func(d device, at time.Time) []vward.Reading {
		return []vward.Reading{
			{Device: d.id, Patient: d.patient, Ward: "w1", Kind: vward.HeartRate, Value: 70, At: at},
			{Device: d.id, Patient: d.patient, Ward: "w1", Kind: vward.SpO2, Value: 97, At: at},
			{Device: d.id, Patient: d.patient, Ward: "w1", Kind: vward.RespiratoryRate, Value: 16, At: at},
			{Device: d.id, Patient: d.patient, Ward: "w1", Kind: vward.Temperature, Value: 37, At: at},
		}
	}
	for _, d := range fleet {
		r.monitor.Observe(msg(d, t0))
	}
	rs := make([]vward.Reading, 4)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d := fleet[(i*7919)%patients] // a stride, not the order they were added in
		at := t0.Add(time.Duration(i+1) * time.Millisecond)
		copy(rs, msg(d, at))
		r.monitor.Observe(rs)
		r.monitor.ObserveDevice(d.id, d.patient, "w1", nil, at)
	}
}
