package vward

import (
	"errors"
	"fmt"
	"math"
	"testing"
)

func TestReadingDisplay(t *testing.T) {
	for _, tc := range []struct {
		r    Reading
		want string
	}{
		{Reading{Kind: HeartRate, Value: 72}, "72"},
		{Reading{Kind: Temperature, Value: 37.25}, "37.25"},
		{Reading{Kind: SpO2, Value: 0.5}, "0.5"},
		{Reading{Kind: SupplementalOxygen, Value: 1}, "true"},
		{Reading{Kind: SupplementalOxygen, Value: 0}, "false"},
		{Reading{Kind: Consciousness, Value: float64(Alert)}, Alert.String()},
	} {
		if got := tc.r.Display(); got != tc.want {
			t.Errorf("%s %v: Display() = %q, want %q", tc.r.Kind, tc.r.Value, got, tc.want)
		}
	}
}

// FuzzReadingDisplay holds a numeric reading's display to fmt's %g, which
// it replaced on the board's hot path.
func FuzzReadingDisplay(f *testing.F) {
	for _, v := range []float64{0, 72, 37.25, 1e21, 1e-5, 123456789, math.Copysign(0, -1), math.Inf(1), math.NaN(), math.MaxFloat64, math.SmallestNonzeroFloat64} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		r := Reading{Kind: RespiratoryRate, Value: v}
		if got, want := r.Display(), fmt.Sprintf("%g", v); got != want {
			t.Fatalf("Display() of %v = %q, fmt's %%g says %q", v, got, want)
		}
	})
}

func TestReadingKindIndex(t *testing.T) {
	if len(ReadingKinds) != NumReadingKinds {
		t.Fatalf("NumReadingKinds is %d, ReadingKinds has %d", NumReadingKinds, len(ReadingKinds))
	}
	for i, k := range ReadingKinds {
		if got := k.Index(); got != i {
			t.Errorf("%s.Index() = %d, its position in ReadingKinds is %d", k, got, i)
		}
		if !k.Known() {
			t.Errorf("%s is not Known", k)
		}
	}
	for _, k := range []ReadingKind{"", "glucose", "SPO2", "spo2 "} {
		if k.Index() != -1 || k.Known() {
			t.Errorf("%q: Index() = %d, Known() = %v; want -1, false", k, k.Index(), k.Known())
		}
	}
}

// An error of a kind matches that kind alone, through any wrapping, and
// says only its own message.
func TestErrorf(t *testing.T) {
	err := fmt.Errorf("admit p1: %w", Errorf(ErrConflict, "ward %s is full", "w1"))
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) {
		t.Errorf("%v matches the wrong kinds", err)
	}
	if got, want := err.Error(), "admit p1: ward w1 is full"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
}
