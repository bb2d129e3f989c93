package alerting

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

func TestAppendPatientEventMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "p1", "Zoë O'Brien", `a "quoted" \ name`, "<b>&</b>", "tab\there", "line\u2028sep", "\x01"}
	floats := []float64{0, 1, -1, 93, 36.6, 1e-7, 1e21, 123456789.125, -0.000001, 1e-300, 2.5e-9}
	times := []time.Time{{}, time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC), time.Date(2026, 11, 23, 10, 15, 0, 123456789, time.FixedZone("x", 3600)), time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	for i := range 2000 {
		v := PatientView{
			Patient: vward.PatientID("p" + fmt.Sprint(i)), Name: pick(strs), SpO2Scale: rng.IntN(3), LastSeen: times[rng.IntN(len(times))],
		}
		v.Ward = vward.WardID("w" + pick(strs))
		if rng.IntN(5) > 0 {
			v.Vitals = map[string]Vital{}
			for range rng.IntN(8) {
				v.Vitals[pick([]string{"spo2", "heart_rate", "temperature", "odd<key>"})] = Vital{
					Value: floats[rng.IntN(len(floats))], Display: pick(strs), Unit: pick([]string{"", "%", "°C", "/min"}), At: times[rng.IntN(len(times))],
				}
			}
		}
		if rng.IntN(3) > 0 {
			r := news2.Score(news2.Observations{})
			s := NewScore(r)
			s.Subscores["x&y"] = rng.IntN(4)
			if rng.IntN(4) == 0 {
				s.Missing, s.Subscores = nil, nil
			}
			s.Risk = pick(strs)
			v.News2 = &s
		}
		switch rng.IntN(3) {
		case 1:
			v.Trend = []TrendPoint{}
		case 2:
			for range rng.IntN(5) + 1 {
				v.Trend = append(v.Trend, TrendPoint{At: times[rng.IntN(len(times))], Score: rng.IntN(20), Partial: rng.IntN(2) == 0})
			}
		}
		want, err := json.Marshal(Event{Type: "patient", Patient: &v})
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendPatientEvent(nil, &v); string(got) != string(want) {
			t.Fatalf("view %+v:\ngot  %s\nwant %s", v, got, want)
		}
	}
}

func BenchmarkPatientEventJSON(b *testing.B) {
	at := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	v := PatientView{Patient: "p1", Ward: "w1", Name: "Test Patient", SpO2Scale: 1, LastSeen: at,
		Vitals: map[string]Vital{
			"spo2": {Value: 96, Display: "96", Unit: "%", At: at}, "heart_rate": {Value: 72, Display: "72", Unit: "/min", At: at},
			"respiratory_rate": {Value: 16, Display: "16", Unit: "/min", At: at}, "temperature": {Value: 36.8, Display: "36.8", Unit: "°C", At: at},
		},
		Trend: []TrendPoint{{At: at, Score: 0, Partial: true}},
	}
	s := NewScore(news2.Score(news2.Observations{}))
	v.News2 = &s
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(Event{Type: "patient", Patient: &v}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendPatientEvent(buf[:0], &v)
		}
	})
	// A patient streaming for a day has a point every trendStep: the row
	// as the board's snapshot and the REST API carry it.
	day := v
	day.Trend = nil
	for i := range int(trendSpan / trendStep) {
		day.Trend = append(day.Trend, TrendPoint{At: at.Add(time.Duration(i) * trendStep), Score: i % 3})
	}
	b.Run("append-day-trend", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = AppendPatientEvent(buf[:0], &day)
		}
		b.ReportMetric(float64(len(buf)), "bytes/event")
	})
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

// A patient's event encoded straight from its state is the event of its
// row, byte for byte, for patients with every mix of readings, scores,
// names and trends.
func TestPatientAppendEventMatchesRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"", "Zoë O'Brien", `a "quoted" \ name`, "<b>&</b>", "line\u2028sep"}
	values := map[vward.ReadingKind][]float64{
		vward.RespiratoryRate: {4, 12, 21, 25, 60}, vward.SpO2: {70, 88.5, 93, 97, 100},
		vward.SupplementalOxygen: {0, 1}, vward.SystolicBP: {60, 90, 111, 220}, vward.DiastolicBP: {40, 80.25},
		vward.HeartRate: {30, 72, 131, 1e-7}, vward.Consciousness: {0, 1, 2, 3, 4}, vward.Temperature: {34.9, 36.6, 39.15},
	}
	m := NewMonitor(news2.DefaultFreshness(), nil, quiet)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	for i := range 3000 {
		id := vward.PatientID(fmt.Sprint("p", i%300))
		m.Admit(PatientInfo{ID: id, Ward: vward.WardID(fmt.Sprint("w", i%7)), Name: names[rng.IntN(len(names))], SpO2Scale: rng.IntN(3)})
		var rs []vward.Reading
		for _, k := range vward.ReadingKinds {
			if rng.IntN(3) == 0 {
				vs := values[k]
				rs = append(rs, vward.Reading{Patient: id, Kind: k, Value: vs[rng.IntN(len(vs))], At: now.Add(-time.Duration(rng.IntN(90)) * time.Minute)})
			}
		}
		m.Observe(rs)
		p := m.patients[id]
		var trend []TrendPoint
		if rng.IntN(2) == 0 {
			trend = p.trend.snapshot()
		}
		v := p.row()
		v.Trend = trend
		want := AppendPatientEvent(nil, &v)
		if got := p.appendEvent([]byte("x"), trend); string(got[1:]) != string(want) {
			t.Fatalf("patient %s:\ngot  %s\nwant %s", id, got[1:], want)
		}
		now = now.Add(time.Duration(rng.IntN(600)) * time.Second)
	}
}
