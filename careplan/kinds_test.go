package careplan

import (
	"testing"

	"github.com/vward/vward"
)

func TestKinds(t *testing.T) {
	seen := map[vward.ReadingKind]bool{}
	for _, k := range Kinds() {
		if seen[k.Kind] {
			t.Errorf("%s listed twice", k.Kind)
		}
		seen[k.Kind] = true
		if k.Kind.Known() {
			// Device protocol v1's kinds keep the root package's ranges, so
			// a rule can never ask for a value ingest refuses.
			if k.Range != k.Kind.PossibleRange() || k.Unit != k.Kind.Unit() {
				t.Errorf("%s: range %v unit %q, the root package says %v %q", k.Kind, k.Range, k.Unit, k.Kind.PossibleRange(), k.Kind.Unit())
			}
		}
		if k.Range.Min > k.Range.Max || k.Event() != (k.Kind == FallEvent) {
			t.Errorf("%+v", k)
		}
		got, ok := Kind(k.Kind)
		if !ok || got != k {
			t.Errorf("Kind(%s) = %+v, %v", k.Kind, got, ok)
		}
	}
	for _, k := range vward.ReadingKinds {
		if !seen[k] {
			t.Errorf("device protocol v1's %s is not a care plan kind", k)
		}
	}
	for _, k := range []vward.ReadingKind{Weight, BloodGlucose, PeakFlow, PainScore, FallEvent} {
		if !seen[k] {
			t.Errorf("%s missing", k)
		}
		if !k.Known() {
			t.Errorf("%s is not in device protocol v1", k)
		}
	}
	if _, ok := Kind("steps"); ok {
		t.Error("an unknown kind is known")
	}
}
