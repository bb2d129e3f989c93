package history_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/history"
	"github.com/vward/vward/internal/testenv"
)

// A message's readings measured together share a point, a field per kind;
// tags, field keys and the msg_id string field are escaped as line
// protocol requires, so an odd id cannot split a line or forge a field.
func TestAppendLines(t *testing.T) {
	at := time.Unix(1, 5).UTC()
	msg := func(id string, at time.Time, kv ...any) []vward.Reading {
		var rs []vward.Reading
		for i := 0; i < len(kv); i += 2 {
			rs = append(rs, vward.Reading{Device: "ox-1", Patient: "p1", Ward: "w1", MsgID: id, Kind: kv[i].(vward.ReadingKind), Value: kv[i+1].(float64), At: at})
		}
		return rs
	}
	for _, tc := range []struct {
		name string
		rs   []vward.Reading
		want string
	}{
		{"escaped", []vward.Reading{{Device: "ox 1,a=b", Patient: `p\1`, Ward: "w\n1", MsgID: `m"1\`, Kind: vward.SpO2, Value: 94.5, At: at}},
			`reading,device=ox\ 1\,a\=b,patient=p\\1,ward=w_1 spo2=94.5,msg_id="m\"1\\" 1000000005` + "\n"},
		{"no ward", []vward.Reading{{Device: "ox-1", Patient: "p1", MsgID: "m1", Kind: vward.HeartRate, Value: 70, At: at}},
			`reading,device=ox-1,patient=p1 heart_rate=70,msg_id="m1" 1000000005` + "\n"},
		{"one message, one point", msg("m1", at, vward.SpO2, 94.0, vward.HeartRate, 88.0, vward.SupplementalOxygen, 0.0),
			`reading,device=ox-1,patient=p1,ward=w1 spo2=94,heart_rate=88,supplemental_oxygen=0,msg_id="m1" 1000000005` + "\n"},
		{"readings at two times", append(msg("m1", at, vward.SpO2, 94.0), msg("m1", at.Add(time.Second), vward.SpO2, 95.0)...),
			`reading,device=ox-1,patient=p1,ward=w1 spo2=94,msg_id="m1" 1000000005` + "\n" +
				`reading,device=ox-1,patient=p1,ward=w1 spo2=95,msg_id="m1" 2000000005` + "\n"},
		{"two messages", append(msg("m1", at, vward.SpO2, 94.0), msg("m2", at, vward.HeartRate, 60.0)...),
			`reading,device=ox-1,patient=p1,ward=w1 spo2=94,msg_id="m1" 1000000005` + "\n" +
				`reading,device=ox-1,patient=p1,ward=w1 heart_rate=60,msg_id="m2" 1000000005` + "\n"},
		{"a kind twice", msg("m1", at, vward.SpO2, 94.0, vward.SpO2, 93.0),
			`reading,device=ox-1,patient=p1,ward=w1 spo2=94,msg_id="m1" 1000000005` + "\n" +
				`reading,device=ox-1,patient=p1,ward=w1 spo2=93,msg_id="m1" 1000000005` + "\n"},
	} {
		var b strings.Builder
		history.AppendLines(&b, tc.rs)
		if b.String() != tc.want {
			t.Errorf("%s: lines = %q\nwant            %q", tc.name, b.String(), tc.want)
		}
	}
}

// Redelivery is harmless only if the store keeps one copy of a reading
// written twice; the in-memory history mirrors InfluxDB there.
func TestMemoryKeepsOneCopyAndIsBounded(t *testing.T) {
	ctx := context.Background()
	m := history.NewMemory(3)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := vward.Reading{Patient: "p1", Kind: vward.SpO2, Value: 94, At: at, MsgID: "m1"}
	for range 3 {
		if err := m.WriteReadings(ctx, []vward.Reading{r}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := m.Readings(ctx, "p1", at.Add(-time.Hour), at.Add(time.Hour))
	if len(got) != 1 {
		t.Fatalf("after three writes of one reading: %d readings", len(got))
	}
	for i := 1; i <= 5; i++ {
		r.At, r.Value = at.Add(time.Duration(i)*time.Minute), float64(90+i)
		if err := m.WriteReadings(ctx, []vward.Reading{r}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ = m.Readings(ctx, "p1", at.Add(-time.Hour), at.Add(time.Hour))
	if len(got) != 3 || got[0].Value != 93 || got[2].Value != 95 {
		t.Errorf("bounded history = %+v, want the newest three (93, 94, 95)", got)
	}
}

// Against a real InfluxDB: a batch is readable at its measurement times,
// and writing it again (a broker redelivery) keeps one copy of each point.
func TestInfluxWriteIsIdempotent(t *testing.T) {
	influx := testenv.StartInflux(t)
	s := history.NewInflux(history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket})
	defer s.Close()
	ctx := context.Background()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var rs []vward.Reading
	for i := range 100 {
		r := vward.Reading{
			Device: "ox-1", Patient: "p1", Ward: "w1", MsgID: fmt.Sprintf("m%03d", i),
			Kind: vward.HeartRate, Value: float64(60 + i%40), At: base.Add(time.Duration(i) * time.Second),
		}
		rs = append(rs, r)
		if i%10 == 0 { // and a message of two readings: one point
			r.Kind, r.Value = vward.SpO2, float64(90+i/10)
			rs = append(rs, r)
		}
	}
	for range 2 {
		if err := s.WriteReadings(ctx, rs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Readings(ctx, "p1", base.Add(-time.Minute), base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rs) {
		t.Fatalf("read %d readings after writing %d twice, want %d", len(got), len(rs), len(rs))
	}
	type key struct {
		kind vward.ReadingKind
		at   time.Time
	}
	want := map[key]float64{}
	for _, r := range rs {
		want[key{r.Kind, r.At}] = r.Value
	}
	for _, r := range got {
		if v, ok := want[key{r.Kind, r.At.UTC()}]; !ok || v != r.Value || r.Device != "ox-1" || r.Ward != "w1" || r.Patient != "p1" {
			t.Fatalf("read %+v, not one of those written", r)
		}
		delete(want, key{r.Kind, r.At.UTC()})
	}
	rows := influx.Query(t, fmt.Sprintf(`from(bucket: %q) |> range(start: -2h)
		|> filter(fn: (r) => r._measurement == %q and r._field == "msg_id") |> group() |> count()`, influx.Bucket, history.Measurement))
	if len(rows) != 1 || rows[0]["_value"] != int64(100) {
		t.Errorf("msg_id points = %v, want 100: one per message", rows)
	}

	// A write to a stopped InfluxDB fails, so ingest holds its acknowledgements.
	influx.Stop(t)
	if err := s.WriteReadings(ctx, rs[:1]); err == nil {
		t.Error("WriteReadings to a stopped InfluxDB returned nil")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping of a stopped InfluxDB returned nil")
	}
}

// Latest gives every patient's newest reading of each kind in the window,
// from one query, the same from InfluxDB and from memory.
func TestLatestOfEveryPatient(t *testing.T) {
	influx := testenv.StartInflux(t)
	in := history.NewInflux(history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket})
	defer in.Close()
	ctx := context.Background()
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Millisecond)
	var rs []vward.Reading
	want := map[string]float64{}
	for p := range 20 {
		patient := vward.PatientID(fmt.Sprintf("p%02d", p))
		for i := range 10 {
			at := base.Add(time.Duration(i*5+p) * time.Minute)
			for _, k := range []vward.ReadingKind{vward.HeartRate, vward.SpO2} {
				if k == vward.SpO2 && i > 6 {
					continue // SpO2's newest is older than heart rate's
				}
				v := float64(60 + p + i)
				rs = append(rs, vward.Reading{Device: vward.DeviceID("d-" + patient), Patient: patient, Ward: "w1",
					MsgID: fmt.Sprintf("%s-%d", patient, i), Kind: k, Value: v, At: at})
				want[fmt.Sprintf("%s %s %s", patient, k, at.Format(time.RFC3339))] = v
			}
		}
	}
	// An older reading out of the window, which must not count.
	rs = append(rs, vward.Reading{Device: "d-old", Patient: "p-old", Ward: "w1", MsgID: "old", Kind: vward.HeartRate, Value: 99, At: base.Add(-24 * time.Hour)})
	mem := history.NewMemory(1000)
	for name, s := range map[string]history.Store{"influx": in, "memory": mem} {
		t.Run(name, func(t *testing.T) {
			if err := s.WriteReadings(ctx, rs); err != nil {
				t.Fatal(err)
			}
			got, err := s.Latest(ctx, base.Add(-time.Hour), time.Now().Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 40 {
				t.Fatalf("Latest gave %d readings, want 40 (two kinds of 20 patients): %v", len(got), got)
			}
			for _, r := range got {
				key := fmt.Sprintf("%s %s %s", r.Patient, r.Kind, r.At.UTC().Format(time.RFC3339))
				v, ok := want[key]
				if !ok || v != r.Value || r.Ward != "w1" || r.Device != vward.DeviceID("d-"+r.Patient) {
					t.Fatalf("Latest gave %+v, not a reading written", r)
				}
				i := 9
				if r.Kind == vward.SpO2 {
					i = 6
				}
				var p int
				fmt.Sscanf(string(r.Patient), "p%d", &p)
				if !r.At.Equal(base.Add(time.Duration(i*5+p) * time.Minute)) {
					t.Errorf("Latest gave %s's %s at %v, not the newest", r.Patient, r.Kind, r.At)
				}
			}
		})
	}
}

// ReadingsOf gives one patient's readings of the kinds asked for in the
// window, oldest first, the newest limit of each kind, the same from
// InfluxDB and from memory.
func TestReadingsOfKinds(t *testing.T) {
	influx := testenv.StartInflux(t)
	in := history.NewInflux(history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket})
	defer in.Close()
	ctx := context.Background()
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Millisecond)
	var rs []vward.Reading
	for _, p := range []vward.PatientID{"p1", "p2"} {
		for i := range 10 {
			for _, k := range []vward.ReadingKind{vward.Weight, vward.SpO2, vward.HeartRate} {
				rs = append(rs, vward.Reading{Device: "d-" + vward.DeviceID(p), Patient: p, Ward: "w1",
					MsgID: fmt.Sprintf("%s-%d", p, i), Kind: k, Value: float64(80 + i), At: base.Add(time.Duration(i) * time.Minute)})
			}
		}
	}
	mem := history.NewMemory(1000)
	for name, s := range map[string]history.Store{"influx": in, "memory": mem} {
		t.Run(name, func(t *testing.T) {
			if err := s.WriteReadings(ctx, rs); err != nil {
				t.Fatal(err)
			}
			got, err := s.ReadingsOf(ctx, "p1", []vward.ReadingKind{vward.Weight, vward.SpO2}, base.Add(2*time.Minute), base.Add(time.Hour), 5)
			if err != nil {
				t.Fatal(err)
			}
			var words []string
			for _, r := range got {
				if r.Patient != "p1" || r.Device != "d-p1" {
					t.Fatalf("another patient's reading %+v", r)
				}
				words = append(words, fmt.Sprintf("%s@%d", r.Kind, int(r.At.Sub(base)/time.Minute)))
			}
			// Minutes 2–9 are in the window; the newest five of each kind
			// are 5–9, oldest first (the two kinds of one minute in either
			// order).
			if len(got) != 10 {
				t.Fatalf("%d readings %v, want the newest 5 weights and 5 SpO2s", len(got), words)
			}
			for i, r := range got {
				if want := base.Add(time.Duration(5+i/2) * time.Minute); !r.At.Equal(want) || r.Value != float64(85+i/2) {
					t.Fatalf("readings %v: %d is %+v, want measured at %v", words, i, r, want)
				}
			}
			if none, err := s.ReadingsOf(ctx, "p1", nil, base, base.Add(time.Hour), 5); err != nil || len(none) != 0 {
				t.Errorf("no kinds: %v %v", none, err)
			}
			if at, ok, err := s.Earliest(ctx, "p1"); err != nil || !ok || !at.Equal(base) {
				t.Errorf("earliest of p1: %v %v %v, want %v", at, ok, err, base)
			}
			if _, ok, err := s.Earliest(ctx, "p9"); err != nil || ok {
				t.Errorf("earliest of a patient with no readings: %v %v", ok, err)
			}
		})
	}
}

// Thinned keeps, of each kind from each device in each window, the first,
// lowest, highest and last reading, the same from InfluxDB and from memory.
func TestThinned(t *testing.T) {
	influx := testenv.StartInflux(t)
	in := history.NewInflux(history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket})
	defer in.Close()
	ctx := context.Background()
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	var rs []vward.Reading
	for i := range 360 { // an hour at one every 10 s, from two devices
		at := base.Add(time.Duration(i) * 10 * time.Second)
		v := float64(70 + i%17)
		if i == 100 {
			v = 150 // a spike mid-window that must not be lost
		}
		rs = append(rs, vward.Reading{Device: "wear-1", Patient: "p1", Ward: "w1", MsgID: fmt.Sprintf("w-%d", i), Kind: vward.HeartRate, Value: v, At: at},
			vward.Reading{Device: "wear-1", Patient: "p1", Ward: "w1", MsgID: fmt.Sprintf("w-%d", i), Kind: vward.SpO2, Value: 97 - float64(i%5), At: at})
		if i%60 == 0 {
			rs = append(rs, vward.Reading{Device: "ox-1", Patient: "p1", Ward: "w1", MsgID: fmt.Sprintf("o-%d", i), Kind: vward.HeartRate, Value: 66, At: at.Add(5 * time.Second)})
		}
	}
	mem := history.NewMemory(10000)
	got := map[string][]string{}
	for name, s := range map[string]history.Store{"influx": in, "memory": mem} {
		if err := s.WriteReadings(ctx, rs); err != nil {
			t.Fatal(err)
		}
		th, err := s.Thinned(ctx, "p1", base, base.Add(time.Hour), 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range th {
			got[name] = append(got[name], fmt.Sprintf("%s %s %s %g", r.Device, r.Kind, r.At.UTC().Format(time.RFC3339), r.Value))
		}
		slices.Sort(got[name])
		// Six windows: at most four of each of wear-1's two kinds, and
		// ox-1's one reading a window, the spike among them.
		if n := len(th); n > 6*(4+4+1) || n < 6*(2+2+1) {
			t.Errorf("%s: %d readings thinned from %d", name, n, len(rs))
		}
		if !slices.ContainsFunc(th, func(r vward.Reading) bool { return r.Value == 150 }) {
			t.Errorf("%s: the spike is lost", name)
		}
		for i := 1; i < len(th); i++ {
			if th[i].At.Before(th[i-1].At) {
				t.Fatalf("%s: not oldest first", name)
			}
		}
	}
	if !slices.Equal(got["influx"], got["memory"]) {
		t.Errorf("influx and memory differ:\n%v\n%v", got["influx"], got["memory"])
	}
}

// BenchmarkLatest is the start-up read of a whole node's board from
// InfluxDB: the newest full set of each of VWARD_BENCH_PATIENTS patients
// (default 12,700), with a quarter of an hour of older sets behind it.
func BenchmarkLatest(b *testing.B) {
	patients := 12700
	if s := os.Getenv("VWARD_BENCH_PATIENTS"); s != "" {
		fmt.Sscanf(s, "%d", &patients)
	}
	influx := testenv.StartInflux(b)
	s := history.NewInflux(history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket})
	defer s.Close()
	ctx := context.Background()
	kinds := []vward.ReadingKind{vward.RespiratoryRate, vward.SpO2, vward.SupplementalOxygen, vward.SystolicBP, vward.HeartRate, vward.Consciousness, vward.Temperature}
	now := time.Now().UTC().Truncate(time.Second)
	for round := range 3 {
		at := now.Add(time.Duration(round-3) * 5 * time.Minute)
		batch := make([]vward.Reading, 0, 7000)
		for p := range patients {
			id := vward.PatientID(fmt.Sprintf("p%05d", p))
			for _, k := range kinds {
				batch = append(batch, vward.Reading{Device: vward.DeviceID("d-" + id), Patient: id, Ward: "w1", MsgID: fmt.Sprintf("%s-%d", id, round), Kind: k, Value: 1, At: at})
			}
			if len(batch) >= 7000 || p == patients-1 {
				if err := s.WriteReadings(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		rs, err := s.Latest(ctx, now.Add(-24*time.Hour), now.Add(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		if len(rs) != patients*len(kinds) {
			b.Fatalf("Latest gave %d readings, want %d", len(rs), patients*len(kinds))
		}
	}
}

// BenchmarkWearableMonth is a chart of a month of a 1 Hz wearable (pulse
// and saturation, VWARD_BENCH_DAYS days, default 30): the range read
// whole, as the charts did, and thinned by InfluxDB into the charts'
// 1,500 windows, as they do now. Run with -benchtime=1x: the whole read
// takes a while.
func BenchmarkWearableMonth(b *testing.B) {
	days := 30
	if s := os.Getenv("VWARD_BENCH_DAYS"); s != "" {
		fmt.Sscanf(s, "%d", &days)
	}
	influx := testenv.StartInflux(b)
	s := history.NewInflux(history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket})
	defer s.Close()
	ctx := context.Background()
	to := time.Now().UTC().Truncate(time.Hour)
	from := to.Add(-time.Duration(days) * 24 * time.Hour)
	began := time.Now()
	batch := make([]vward.Reading, 0, 20000)
	for at := from; at.Before(to); at = at.Add(time.Second) {
		batch = append(batch,
			vward.Reading{Device: "patch-1", Patient: "p1", Ward: "w1", MsgID: "m", Kind: vward.HeartRate, Value: float64(60 + at.Unix()%40), At: at},
			vward.Reading{Device: "patch-1", Patient: "p1", Ward: "w1", MsgID: "m", Kind: vward.SpO2, Value: float64(90 + at.Unix()%9), At: at})
		if len(batch) == cap(batch) {
			if err := s.WriteReadings(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := s.WriteReadings(ctx, batch); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d days of two kinds at 1 Hz in %v", days, time.Since(began).Round(time.Second))
	for _, c := range []struct {
		name string
		read func() ([]vward.Reading, error)
	}{
		{"whole", func() ([]vward.Reading, error) { return s.Readings(ctx, "p1", from, to) }},
		{"thinned", func() ([]vward.Reading, error) { return s.Thinned(ctx, "p1", from, to, to.Sub(from)/1500) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				rs, err := c.read()
				if err != nil {
					b.Fatal(err)
				}
				n = len(rs)
			}
			b.ReportMetric(float64(n), "readings/op")
		})
	}
}
