package web

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/news2"
)

// The number and time encodings a row is written with are encoding/json's,
// byte for byte, at the edges where it changes format.
func TestAppendJSONValuesMatchEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 93, 36.6, 1e-7, 1e-6, 1e21, 1e20, 123456789.125, -0.000001, 1e-300, 2.5e-9, -1.5e22, math.MaxFloat64, math.SmallestNonzeroFloat64} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONFloat([]byte("x"), f); string(got[1:]) != string(want) {
			t.Errorf("appendJSONFloat(%v) = %s, want %s", f, got[1:], want)
		}
	}
	for _, at := range []time.Time{
		{}, time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC),
		time.Date(2026, 11, 23, 10, 15, 0, 123456789, time.FixedZone("x", 3600)),
		time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		want, _ := json.Marshal(at) // years past 9999: an error, and no bytes
		if got := appendJSONTime([]byte("x"), at); string(got[1:]) != string(want) {
			t.Errorf("appendJSONTime(%v) = %s, want %s", at, got[1:], want)
		}
	}
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// A patient's board event: encoding/json's against appendRowEvent's, for
// a patient with four vitals and a score, and with a day's trend as the
// board's snapshot and the REST API carry it.
func BenchmarkPatientEventJSON(b *testing.B) {
	at := time.Now().UTC().Truncate(time.Second)
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, nil, discard)
	m.Admit(alerting.PatientInfo{ID: "p1", Ward: "w1", Name: "Test Patient"})
	m.Observe([]vward.Reading{
		{Patient: "p1", Kind: vward.SpO2, Value: 96, At: at}, {Patient: "p1", Kind: vward.HeartRate, Value: 72, At: at},
		{Patient: "p1", Kind: vward.RespiratoryRate, Value: 16, At: at}, {Patient: "p1", Kind: vward.Temperature, Value: 36.8, At: at},
	})
	r, _ := m.Patient("p1")
	r.Trend[0].At = at // scored when measured: the same bytes every run
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v := newPatientView(&r)
			if _, err := json.Marshal(Event{Type: "patient", Patient: &v}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendRowEvent(buf[:0], &r)
		}
	})
	// A patient streaming for a day has a point every 5 minutes, the
	// trend's finest spacing.
	const step = 5 * time.Minute
	var day []alerting.TrendPoint
	for i := range int(24 * time.Hour / step) {
		day = append(day, alerting.TrendPoint{At: at.Add(time.Duration(i) * step), Score: i % 3})
	}
	b.Run("append-day-trend", func(b *testing.B) {
		b.ReportAllocs()
		r.Trend = day
		var buf []byte
		for b.Loop() {
			buf = appendRowEvent(buf[:0], &r)
		}
		b.ReportMetric(float64(len(buf)), "bytes/event")
	})
}

// BenchmarkRowFetch is a board client's writer fetching a changed row as
// rowBytes does: CopyRow, then appendRowEvent into the client's room. Of
// a fleet of 12,700 patients taken by a stride, their records are out of
// the CPU's caches, as at full rate; one patient's stays warm.
func BenchmarkRowFetch(b *testing.B) {
	for _, n := range []int{1, 12700} {
		b.Run(fmt.Sprint("patients=", n), func(b *testing.B) {
			at := time.Now().UTC().Truncate(time.Second)
			m := alerting.NewMonitor(news2.DefaultFreshness(), nil, nil, discard)
			ids := make([]vward.PatientID, n)
			for i := range ids {
				ids[i] = vward.PatientID(fmt.Sprintf("p%05d", i))
				m.Admit(alerting.PatientInfo{ID: ids[i], Ward: "w1", Name: "Test Patient"})
				m.Observe([]vward.Reading{
					{Patient: ids[i], Kind: vward.SpO2, Value: 96, At: at}, {Patient: ids[i], Kind: vward.HeartRate, Value: 72, At: at},
					{Patient: ids[i], Kind: vward.RespiratoryRate, Value: 16, At: at}, {Patient: ids[i], Kind: vward.Temperature, Value: 36.8, At: at},
				})
			}
			var row alerting.Row
			var buf []byte
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if m.CopyRow(ids[(i*7919)%n], false, &row) {
					buf = appendRowEvent(buf[:0], &row)
				}
				i++
			}
		})
	}
}

// appendJSONString writes what encoding/json writes, for any string: the
// units and frequencies it copies as they are, and everything else.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "spo2", "°C", "4–6-hourly", "Zoë", `"\`, "<&>", "\x7f", "\x01", "\u2028", "\u2029x", "\xff", "a\xc3", "🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got[1:], want)
		}
	})
}

// A patient's event, encoded from the row a board client's writer copies
// (CopyRow, into a row it reuses), is encoding/json's event of the
// patient's row, byte for byte, for patients with every mix of readings,
// scores, names and trends.
func TestPatientAppendEventMatchesRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"", "Zoë O'Brien", `a "quoted" \ name`, "<b>&</b>", "line\u2028sep"}
	values := map[vward.ReadingKind][]float64{
		vward.RespiratoryRate: {4, 12, 21, 25, 60}, vward.SpO2: {70, 88.5, 93, 97, 100},
		vward.SupplementalOxygen: {0, 1}, vward.SystolicBP: {60, 90, 111, 220}, vward.DiastolicBP: {40, 80.25},
		vward.HeartRate: {30, 72, 131, 1e-7}, vward.Consciousness: {0, 1, 2, 3, 4}, vward.Temperature: {34.9, 36.6, 39.15},
		vward.Weight: {1, 82.4, 499.95}, vward.BloodGlucose: {0.5, 6.1}, vward.PeakFlow: {20, 350}, vward.PainScore: {0, 7},
		vward.FallEvent: {1},
	}
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, nil, discard)
	var row alerting.Row
	for i := range 3000 {
		now := time.Now() // the monitor's clock
		id := vward.PatientID(fmt.Sprint("p", i%300))
		m.Admit(alerting.PatientInfo{ID: id, Ward: vward.WardID(fmt.Sprint("w", i%7)), Name: names[rng.IntN(len(names))], SpO2Scale: rng.IntN(3), Paused: rng.IntN(4) == 0})
		var rs []vward.Reading
		for _, k := range vward.ReadingKinds {
			if rng.IntN(3) == 0 {
				vs := values[k]
				rs = append(rs, vward.Reading{Patient: id, Kind: k, Value: vs[rng.IntN(len(vs))], At: now.Add(-time.Duration(rng.IntN(90)) * time.Minute)})
			}
		}
		m.Observe(rs)
		trend := rng.IntN(2) == 0
		if !m.CopyRow(id, trend, &row) {
			t.Fatalf("no row of %s", id)
		}
		whole, _ := m.Patient(id)
		if !trend {
			whole.Trend = nil
		}
		v := newPatientView(&whole)
		want, err := json.Marshal(Event{Type: "patient", Patient: &v})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRowEvent([]byte("x"), &row); string(got[1:]) != string(want) {
			t.Fatalf("patient %s:\ngot  %s\nwant %s", id, got[1:], want)
		}
	}
}
