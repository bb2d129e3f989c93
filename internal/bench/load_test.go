package bench

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/simulator"
)

func TestMsgID(t *testing.T) {
	for _, c := range []struct {
		dev  vward.DeviceID
		seq  int64
		want string
	}{
		{"bench-00001", 1, "bench-00001-0000001"},
		{"bench-00001", 0, "bench-00001-0000000"},
		{"bench-12700", 999999, "bench-12700-0999999"},
		{"bench-12700", 1234567, "bench-12700-1234567"},
		{"bench-12700", 12345678, "bench-12700-12345678"}, // wider than 7: all the digits
		{"d", math.MaxInt64, "d-9223372036854775807"},
		{"d", -1, "d--000001"}, // %07d: the sign counts in the width
		{"d", -1234567, "d--1234567"},
		{"d", math.MinInt64, "d--9223372036854775808"},
		{"", 42, "-0000042"},
	} {
		if got := msgID(c.dev, c.seq); got != c.want {
			t.Errorf("msgID(%q, %d) = %q, want %q", c.dev, c.seq, got, c.want)
		}
	}
}

// msgID writes what fmt's "%s-%07d" writes, whatever the numbers.
func FuzzMsgID(f *testing.F) {
	for _, seq := range []int64{0, 1, 7, 999999, 1000000, 9999999, 10000000, -1, -999999, math.MaxInt64, math.MinInt64} {
		f.Add("bench-00001", seq)
	}
	f.Fuzz(func(t *testing.T, dev string, seq int64) {
		if got, want := msgID(vward.DeviceID(dev), seq), fmt.Sprintf("%s-%07d", dev, seq); got != want {
			t.Errorf("msgID(%q, %d) = %q, want %q", dev, seq, got, want)
		}
	})
}

// payloadWithFloats is payload as it was when every value was formatted as
// a float: the bytes the bench publishes must not change.
func payloadWithFloats(msgID string, ts time.Time, n int, seq int64) []byte {
	b := make([]byte, 0, 96+48*n)
	b = append(b, `{"msg_id":"`...)
	b = append(b, msgID...)
	b = append(b, `","ts":"`...)
	b = ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","readings":[`...)
	wobble := float64(seq % 5)
	for i := 0; i < n; i++ {
		k := kinds[i%len(kinds)]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"`...)
		b = append(b, k...)
		b = append(b, `","value":`...)
		switch k {
		case vward.HeartRate:
			b = strconv.AppendFloat(b, 70+wobble, 'f', -1, 64)
		case vward.SpO2:
			b = strconv.AppendFloat(b, 96+float64(seq%3), 'f', -1, 64)
		case vward.RespiratoryRate:
			b = strconv.AppendFloat(b, 14+float64(seq%4), 'f', -1, 64)
		case vward.Temperature:
			b = strconv.AppendFloat(b, 36.6+wobble/10, 'f', 1, 64)
		case vward.SystolicBP:
			b = strconv.AppendFloat(b, 120+wobble, 'f', -1, 64)
		case vward.SupplementalOxygen:
			b = append(b, "false"...)
		case vward.Consciousness:
			b = append(b, `"A"`...)
		}
		b = append(b, '}')
	}
	b = append(b, `],"battery":0.9}`...)
	return b
}

// The payload is byte for byte what it was with float formatting, for
// every residue of seq (negative ones too) and every number of readings.
func TestPayloadUnchanged(t *testing.T) {
	seqs := []int64{math.MinInt64, math.MinInt64 + 1, math.MaxInt64 - 1, math.MaxInt64, 1 << 53, 1<<53 + 1}
	for seq := int64(-130); seq <= 130; seq++ {
		seqs = append(seqs, seq)
	}
	for _, ts := range []time.Time{
		time.Date(2026, 11, 24, 1, 2, 3, 456789000, time.UTC),
		time.Date(2026, 11, 24, 1, 2, 3, 0, time.UTC),
	} {
		for _, seq := range seqs {
			for n := 0; n <= 2*len(kinds)+1; n++ {
				id := msgID("bench-00001", seq)
				if got, want := payload(id, ts, n, seq), payloadWithFloats(id, ts, n, seq); !bytes.Equal(got, want) {
					t.Fatalf("payload(seq %d, %d readings) =\n%s\nwant\n%s", seq, n, got, want)
				}
			}
		}
	}
}

func BenchmarkMsgID(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		_ = msgID("bench-00001", int64(i%100000+1))
	}
}

func BenchmarkPayload(b *testing.B) {
	ts := time.Date(2026, 11, 24, 1, 2, 3, 456789000, time.UTC)
	b.ReportAllocs()
	for i := range b.N {
		_ = payload("bench-00001-0000001", ts, 4, int64(i))
	}
}

// BenchmarkStreamNext is a bench device's cost per message to make it.
func BenchmarkStreamNext(b *testing.B) {
	clock := simulator.Clock{Mode: simulator.RealClock, Speed: 1, Origin: time.Now()}
	s := &stream{dev: device{id: "bench-00001", patient: "bench-p00001"}, clock: clock,
		every: time.Second, end: 1 << 62, readings: 4}
	b.ReportAllocs()
	for range b.N {
		if _, ok := s.Next(); !ok {
			b.Fatal("stream ended")
		}
	}
}
