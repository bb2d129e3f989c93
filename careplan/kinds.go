package careplan

import (
	"strings"

	"github.com/vward/vward"
)

// The reading kinds care plans add to NEWS2's, as device protocol v1
// names them (the root package's, under the names plans have used).
const (
	Weight       = vward.Weight       // kg
	BloodGlucose = vward.BloodGlucose // mmol/L
	PeakFlow     = vward.PeakFlow     // L/min
	PainScore    = vward.PainScore    // 0–10 numeric rating scale
	FallEvent    = vward.FallEvent    // an event: value 1, at the time of the fall
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
// protocol v1's, with the root package's units and ranges (the root
// package gives the reason for each new range).
var kinds = func() []KindInfo {
	places := map[vward.ReadingKind]int{vward.Temperature: 1, Weight: 1, BloodGlucose: 1}
	var ks []KindInfo
	for _, k := range vward.ReadingKinds {
		c := numeric
		switch k {
		case vward.SupplementalOxygen, vward.Consciousness:
			c = categorical
		case FallEvent:
			c = event
		}
		ks = append(ks, KindInfo{Kind: k, Unit: k.Unit(), Range: k.PossibleRange(), Places: places[k], class: c})
	}
	return ks
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
