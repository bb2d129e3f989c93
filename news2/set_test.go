package news2

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestSetKeepsLatestByMeasurementTime(t *testing.T) {
	var s Set
	if !s.Update(HeartRate, 80, t0) {
		t.Fatal("first reading did not change the set")
	}
	if !s.Update(HeartRate, 90, t0.Add(time.Minute)) {
		t.Fatal("newer reading did not change the set")
	}
	// Measured before the one held, delivered after it: a buffered resend.
	if s.Update(HeartRate, 40, t0.Add(30*time.Second)) {
		t.Error("late reading changed the set")
	}
	if v, at, ok := s.Latest(HeartRate); !ok || v != 90 || !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("Latest = %v at %v, %v; want 90 at +1m", v, at, ok)
	}
	if _, _, ok := s.Latest(SpO2); ok {
		t.Error("Latest(spo2) present in a set that never had one")
	}
}

func TestSetRedelivery(t *testing.T) {
	var s Set
	s.Update(SpO2, 94, t0)
	if s.Update(SpO2, 94, t0) {
		t.Error("redelivery (same time, same value) changed the set")
	}
	// Same time in another location is the same instant.
	if s.Update(SpO2, 94, t0.In(time.FixedZone("BST", 3600))) {
		t.Error("redelivery in another time zone changed the set")
	}
	// A different value at the same time overwrites, as the reading store does.
	if !s.Update(SpO2, 93, t0) {
		t.Error("a corrected value at the same time did not change the set")
	}
	if v, _, _ := s.Latest(SpO2); v != 93 {
		t.Errorf("held %v, want 93", v)
	}
}

func TestSetIgnoresParametersOutsideTheSeven(t *testing.T) {
	var s Set
	if s.Update(NumParameters, 1, t0) || s.Update(-1, 1, t0) {
		t.Error("Update accepted a parameter outside the seven")
	}
	if !s.LatestAt().IsZero() {
		t.Errorf("LatestAt of an empty set = %v", s.LatestAt())
	}
}

func TestSetLatestAt(t *testing.T) {
	var s Set
	s.Update(Temperature, 37, t0.Add(2*time.Minute))
	s.Update(HeartRate, 80, t0)
	s.Update(SpO2, 97, t0.Add(time.Minute))
	if got := s.LatestAt(); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("LatestAt = %v", got)
	}
}

func TestSetFreshness(t *testing.T) {
	f := DefaultFreshness()
	for p := range NumParameters {
		if f[p] != time.Hour {
			t.Errorf("default freshness of %v is %v, want 1h", p, f[p])
		}
	}
	var s Set
	s.Update(HeartRate, 120, t0)
	s.Update(SpO2, 92, t0.Add(-30*time.Minute))

	cases := []struct {
		now  time.Time
		f    Freshness
		want ParamSet
	}{
		{t0, f, 1<<HeartRate | 1<<SpO2},
		{t0.Add(29 * time.Minute), f, 1<<HeartRate | 1<<SpO2},
		{t0.Add(30 * time.Minute), f, 1<<HeartRate | 1<<SpO2}, // exactly an hour old: still current
		{t0.Add(30*time.Minute + time.Nanosecond), f, 1 << HeartRate},
		{t0.Add(time.Hour), f, 1 << HeartRate},
		{t0.Add(time.Hour + time.Nanosecond), f, 0},
		// Scoring at a time before the readings: device clocks run fast.
		{t0.Add(-time.Hour), f, 1<<HeartRate | 1<<SpO2}, // an hour ahead: still current
		{t0.Add(-time.Hour - time.Nanosecond), f, 1 << SpO2},
		{t0.Add(-90*time.Minute - time.Nanosecond), f, 0},
		{t0, Freshness{}, 1 << HeartRate}, // zero window: only a value measured exactly now
		{t0, Freshness{HeartRate: -time.Hour, SpO2: -time.Hour}, 0},
		{t0.Add(45 * time.Minute), Freshness{SpO2: 2 * time.Hour}, 1 << SpO2}, // per-parameter windows
	}
	for i, c := range cases {
		o := s.Observations(c.now, c.f)
		if o.Present() != c.want {
			t.Errorf("case %d (now %v): present %08b, want %08b", i, c.now.Sub(t0), o.Present(), c.want)
		}
	}
	o := s.Observations(t0, f)
	if v, ok := o.Value(HeartRate); !ok || v != 120 {
		t.Errorf("heart_rate = %v, %v", v, ok)
	}
}

// TestSetScale2OxygenExpires scores a Scale 2 patient whose oxygen status has
// gone stale: the SpO2 then scores as on air and the result says oxygen is
// missing, rather than reusing the old status as if it were current.
func TestSetScale2OxygenExpires(t *testing.T) {
	s := Set{Scale: Scale2}
	s.Update(SupplementalOxygen, 1, t0)
	s.Update(SpO2, 97, t0.Add(90*time.Minute))
	r := Score(s.Observations(t0.Add(30*time.Minute), DefaultFreshness()))
	if r.Subscores[SpO2] != 3 || r.Subscores[SupplementalOxygen] != 2 || r.Score != 5 {
		t.Errorf("with current oxygen status: %+v", r)
	}
	r = Score(s.Observations(t0.Add(90*time.Minute), DefaultFreshness()))
	if r.Subscores[SpO2] != 0 || r.Has(SupplementalOxygen) || r.Score != 0 {
		t.Errorf("with stale oxygen status: %+v", r)
	}
}

func TestSetObservationsAreACopy(t *testing.T) {
	var s Set
	s.Update(HeartRate, 80, t0)
	o := s.Observations(t0, DefaultFreshness())
	s.Update(HeartRate, 140, t0.Add(time.Minute))
	if v, _ := o.Value(HeartRate); v != 80 {
		t.Errorf("observations changed with the set: %v", v)
	}
}
