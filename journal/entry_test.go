package journal

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/vward/vward"
)

func reading(device, patient, msg string, kind vward.ReadingKind, v float64, at time.Time) vward.Reading {
	return vward.Reading{Device: vward.DeviceID(device), Patient: vward.PatientID(patient), Ward: "w1", MsgID: msg, Kind: kind, Value: v, At: at}
}

func TestEntryRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 4, 3, 0, 0, 123456789, time.UTC)
	cases := []struct {
		name     string
		rs       []vward.Reading
		messages int
	}{
		{"one reading", []vward.Reading{reading("ox-1", "p1", "m1", vward.SpO2, 97, at)}, 1},
		{"a message of four", []vward.Reading{
			reading("ox-1", "p1", "m1", vward.SpO2, 97, at),
			reading("ox-1", "p1", "m1", vward.HeartRate, 72, at),
			reading("ox-1", "p1", "m1", vward.RespiratoryRate, 16, at),
			reading("ox-1", "p1", "m1", vward.Temperature, 36.9, at),
		}, 1},
		{"two messages of two devices", []vward.Reading{
			reading("ox-1", "p1", "m1", vward.SpO2, 97, at),
			reading("bp-1", "p1", "m1", vward.SystolicBP, 124, at),
			reading("bp-1", "p1", "m1", vward.DiastolicBP, 80, at),
		}, 2},
		{"one message, two times", []vward.Reading{
			reading("ox-1", "p1", "m1", vward.SpO2, 97, at),
			reading("ox-1", "p1", "m1", vward.SpO2, 96, at.Add(time.Minute)),
		}, 2},
		{"empty strings and odd values", []vward.Reading{
			{Device: "d", Kind: vward.Consciousness, Value: float64(vward.Level(2)), At: time.Unix(0, 0).UTC()},
			{Device: "d", Patient: "p", MsgID: "ü\x00\"", Kind: vward.SupplementalOxygen, Value: math.Copysign(0, -1), At: at},
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, messages := appendEntry(nil, c.rs)
			if messages != c.messages {
				t.Errorf("appendEntry counted %d messages, want %d", messages, c.messages)
			}
			got, n, err := decodeEntry(nil, b)
			if err != nil {
				t.Fatalf("decodeEntry: %v", err)
			}
			if n != c.messages {
				t.Errorf("decodeEntry counted %d messages, want %d", n, c.messages)
			}
			if !slices.EqualFunc(got, c.rs, sameReading) {
				t.Errorf("decodeEntry(appendEntry(rs)) =\n%v\nwant\n%v", got, c.rs)
			}
		})
	}
}

func sameReading(a, b vward.Reading) bool {
	return a.Device == b.Device && a.Patient == b.Patient && a.Ward == b.Ward && a.MsgID == b.MsgID &&
		a.Kind == b.Kind && math.Float64bits(a.Value) == math.Float64bits(b.Value) && a.At.Equal(b.At)
}

func TestDecodeEntryRefusesWhatIsCut(t *testing.T) {
	at := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	b, _ := appendEntry(nil, []vward.Reading{reading("ox-1", "p1", "m1", vward.SpO2, 97, at), reading("ox-1", "p1", "m1", vward.HeartRate, 72, at)})
	for i := range len(b) {
		if _, _, err := decodeEntry(nil, b[:i]); !errors.Is(err, errCorrupt) {
			t.Errorf("decodeEntry of the first %d of %d bytes: err %v, want errCorrupt", i, len(b), err)
		}
	}
	if _, _, err := decodeEntry(nil, append(b, 0)); !errors.Is(err, errCorrupt) {
		t.Errorf("decodeEntry with a trailing byte: err %v, want errCorrupt", err)
	}
	b[0] = 9
	if _, _, err := decodeEntry(nil, b); !errors.Is(err, errCorrupt) {
		t.Errorf("decodeEntry of version 9: err %v, want errCorrupt", err)
	}
}

// FuzzDecodeEntry: whatever the bytes, decodeEntry returns readings or an
// error, never a panic or an allocation beyond the entry's size; what it
// decodes encodes back to itself.
func FuzzDecodeEntry(f *testing.F) {
	at := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	seed, _ := appendEntry(nil, []vward.Reading{reading("ox-1", "p1", "m1", vward.SpO2, 97, at), reading("ox-1", "p1", "m1", vward.HeartRate, 72, at)})
	f.Add(seed)
	f.Add([]byte{entryVersion, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, _, err := decodeEntry(nil, b)
		if err != nil {
			return
		}
		again, _ := appendEntry(nil, rs)
		back, _, err := decodeEntry(nil, again)
		if err != nil || !slices.EqualFunc(back, rs, sameReading) {
			t.Fatalf("re-encoded entry decodes to %v, %v; want %v", back, err, rs)
		}
	})
}
