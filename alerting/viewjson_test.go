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
