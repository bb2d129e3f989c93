package careplan

import (
	"strings"

	"github.com/vward/vward"
)

// The reading kinds care plans need that device protocol v1 does not carry
// yet (issue #29). They are defined here, with their ranges in the table
// below, until the root package takes them: a reading of these kinds is
// refused by ingest today, so a plan's rules on them wait for their data.
const (
	Weight       vward.ReadingKind = "weight"        // kg
	BloodGlucose vward.ReadingKind = "blood_glucose" // mmol/L
	PeakFlow     vward.ReadingKind = "peak_flow"     // L/min
	PainScore    vward.ReadingKind = "pain_score"    // 0–10 numeric rating scale
	FallEvent    vward.ReadingKind = "fall_event"    // an event: value 1, at the time of the fall
)

// class says how a kind's values may be judged.
type class int

const (
	// numeric values can be compared, differenced and averaged.
	numeric class = iota
	// categorical values (on oxygen, ACVPU) can be expected but are
	// NEWS2's to judge: no care plan rule reads them.
	categorical
	// event readings mark that something happened (a fall); the value
	// carries nothing.
	event
)

// KindInfo is what care plans know of a reading kind.
type KindInfo struct {
	Kind  vward.ReadingKind
	Unit  string      // as shown to people
	Range vward.Range // the possible values, inclusive: a rule's value must lie in it
	// Places is the resolution values are shown at (0 = whole numbers).
	Places int
	class  class
}

// Numeric reports whether rules of every type may read the kind.
func (k KindInfo) Numeric() bool { return k.class == numeric }

// Event reports whether the kind marks events rather than measures.
func (k KindInfo) Event() bool { return k.class == event }

// kinds is every kind care plans understand, in a stable order: device
// protocol v1's, with the root package's units and ranges, then the new
// ones. docs/careplans.md gives the reason for each new range.
var kinds = func() []KindInfo {
	places := map[vward.ReadingKind]int{vward.Temperature: 1}
	var ks []KindInfo
	for _, k := range vward.ReadingKinds {
		c := numeric
		if k == vward.SupplementalOxygen || k == vward.Consciousness {
			c = categorical
		}
		ks = append(ks, KindInfo{Kind: k, Unit: k.Unit(), Range: k.PossibleRange(), Places: places[k], class: c})
	}
	return append(ks,
		// From a neonate to bariatric scales' limit.
		KindInfo{Kind: Weight, Unit: "kg", Range: vward.Range{Min: 1, Max: 500}, Places: 1},
		// Meters read about 0.6–33.3 and say LO or HI beyond; a
		// laboratory value in a hyperosmolar state may exceed 50.
		KindInfo{Kind: BloodGlucose, Unit: "mmol/L", Range: vward.Range{Min: 0.5, Max: 60}, Places: 1},
		// Low-range meters start at 30, standard ones end at 800–900.
		KindInfo{Kind: PeakFlow, Unit: "L/min", Range: vward.Range{Min: 20, Max: 1000}},
		KindInfo{Kind: PainScore, Unit: "/10", Range: vward.Range{Min: 0, Max: 10}},
		KindInfo{Kind: FallEvent, Unit: "", Range: vward.Range{Min: 1, Max: 1}, class: event},
	)
}()

// Kinds lists every reading kind care plans understand, in a stable order.
func Kinds() []KindInfo { return append([]KindInfo(nil), kinds...) }

// Kind returns what care plans know of k, and whether they know it.
func Kind(k vward.ReadingKind) (KindInfo, bool) {
	for _, ki := range kinds {
		if ki.Kind == k {
			return ki, true
		}
	}
	return KindInfo{}, false
}

// kindNames lists the kinds that satisfy keep, for an error message.
func kindNames(keep func(KindInfo) bool) string {
	var names []string
	for _, k := range kinds {
		if keep(k) {
			names = append(names, string(k.Kind))
		}
	}
	return strings.Join(names, ", ")
}
