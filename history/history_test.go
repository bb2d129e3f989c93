package history_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/history"
	"github.com/vward/vward/internal/testenv"
)

// Tags and the msg_id string field are escaped as line protocol requires,
// so an odd id cannot split a line or forge a field.
func TestAppendLineEscapes(t *testing.T) {
	var b strings.Builder
	history.AppendLine(&b, vward.Reading{
		Device: "ox 1,a=b", Patient: `p\1`, Ward: "w\n1", MsgID: `m"1\`,
		Kind: vward.SpO2, Value: 94.5, At: time.Unix(1, 5).UTC(),
	})
	want := `reading,device=ox\ 1\,a\=b,kind=spo2,patient=p\\1,ward=w_1 value=94.5,msg_id="m\"1\\" 1000000005` + "\n"
	if b.String() != want {
		t.Errorf("line = %q\nwant   %q", b.String(), want)
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
		rs = append(rs, vward.Reading{
			Device: "ox-1", Patient: "p1", Ward: "w1", MsgID: fmt.Sprintf("m%03d", i),
			Kind: vward.HeartRate, Value: float64(60 + i%40), At: base.Add(time.Duration(i) * time.Second),
		})
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
	for i, r := range got {
		if !r.At.Equal(rs[i].At) || r.Value != rs[i].Value || r.Kind != vward.HeartRate || r.Device != "ox-1" || r.Ward != "w1" {
			t.Fatalf("reading %d = %+v, want %+v", i, r, rs[i])
		}
	}
	rows := influx.Query(t, fmt.Sprintf(`from(bucket: %q) |> range(start: -2h)
		|> filter(fn: (r) => r._measurement == %q and r._field == "msg_id") |> group() |> count()`, influx.Bucket, history.Measurement))
	if len(rows) != 1 || rows[0]["_value"] != int64(len(rs)) {
		t.Errorf("msg_id points = %v, want %d", rows, len(rs))
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
