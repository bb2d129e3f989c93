package careplan

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vward/vward"
)

// State is what a rule says of the patient now.
type State string

// The states of a rule.
const (
	Holds         State = "holds"
	DoesNotHold   State = "does_not_hold"
	NotEnoughData State = "not_enough_data"
)

// Point is one reading's value at its measurement time.
type Point struct {
	At    time.Time `json:"at"`
	Value float64   `json:"value"`
}

// Finding is a rule's state and the evidence it was judged on. Only a
// finding that holds may raise an alert; the others say why not.
type Finding struct {
	Rule  string `json:"rule"` // the rule's ID
	State State  `json:"state"`
	// Detail says why a rule has not enough data or does not hold when
	// that is not plain from the values ("no reading", …).
	Detail string `json:"detail,omitempty"`
	// Latest is the reading judged: the kind's newest at or before the
	// evaluation time. Its At is zero when there is none.
	Latest Point `json:"latest,omitzero"`
	// Reference is the reading compared with: the first of the breach
	// (sustained), the lowest or highest in the window (change), or the
	// clinician's baseline with when it was set (deviation).
	Reference Point `json:"reference,omitzero"`
	// Amount is what was compared with the rule's value: the latest value
	// (threshold, sustained), the rise or fall (change), or the
	// deviation from the baseline, in the kind's unit or percent.
	Amount float64 `json:"amount"`
	// Baseline is a deviation rule's baseline value.
	Baseline float64 `json:"baseline,omitempty"`
	// Readings is how many readings the judgement used, and Since and
	// Until the span of time they were taken from.
	Readings int       `json:"readings"`
	Since    time.Time `json:"since,omitzero"`
	Until    time.Time `json:"until,omitzero"`
}

// Why a rule could not say, or does not hold for a reason its values do
// not show. Constant strings, so that evaluating allocates nothing.
const (
	detailNoReading    = "no reading"
	detailStale        = "the latest reading is too old to count"
	detailFewSets      = "fewer readings than the rule's sets so far"
	detailShortHistory = "every reading so far breaches, for less than the rule's for"
	detailNoEarlier    = "no earlier reading within the window"
	detailFewBaseline  = "too few readings in the baseline window"
	detailZeroBaseline = "the baseline is 0, so no percentage of it can be taken"
	detailNoEvent      = "none recorded in the time the rule looks back"
	detailBreachShort  = "the breach has lasted less than the rule's for"
)

// Evaluator evaluates plans against readings. It keeps its working space
// between calls so that evaluating on every reading allocates nothing
// once warm; use one Evaluator per goroutine. The zero value is ready.
type Evaluator struct {
	series []Point
	values []float64
}

// Evaluate appends to into one Finding per rule of the plan, in the
// plan's order, as of at: readings measured after at are not read.
//
// readings are the patient's, of any kinds, in any order (ordered by
// measurement time is fastest); readings of the same kind and time count
// once, the last given winning, as the history keeps the last. NaN and
// infinite values are not measurements and are skipped. Give at least
// Lookback of history before the newest reading of each kind ruled on, or
// every reading for a rule counting sets.
//
// Evaluate only reads: it takes no NEWS2 result and can return nothing but
// findings, so no plan can lower, suppress or delay NEWS2.
func (e *Evaluator) Evaluate(p *Plan, readings []vward.Reading, at time.Time, into []Finding) []Finding {
	base := len(into)
	for range p.Rules {
		into = append(into, Finding{})
	}
	out := into[base:]
	for i, r := range p.Rules {
		if kindBefore(p.Rules[:i], r.Kind) {
			continue // evaluated with the first rule of its kind
		}
		e.extract(p, r.Kind, readings, at)
		for j := i; j < len(p.Rules); j++ {
			if p.Rules[j].Kind == r.Kind {
				out[j] = e.judge(&p.Rules[j], at)
			}
		}
	}
	return into
}

// Evaluate is Evaluator.Evaluate with a fresh Evaluator, for a caller who
// evaluates rarely.
func Evaluate(p *Plan, readings []vward.Reading, at time.Time) []Finding {
	var e Evaluator
	return e.Evaluate(p, readings, at, nil)
}

func kindBefore(rules []Rule, k vward.ReadingKind) bool {
	for _, r := range rules {
		if r.Kind == k {
			return true
		}
	}
	return false
}

// RuleKinds are the kinds the plan's rules read, each once, in the rules'
// order: what the monitor keeps for them and reads back after a restart.
func (p *Plan) RuleKinds() []vward.ReadingKind {
	var out []vward.ReadingKind
	for _, r := range p.Rules {
		if !slices.Contains(out, r.Kind) {
			out = append(out, r.Kind)
		}
	}
	return out
}

// Lookback is how much history before the newest reading of a kind its
// rules read: the longest sustained for, change window, or baseline window
// with its exclusion. A rule counting sets reads the last Sets readings,
// however old; LookbackSets says how many.
func (p *Plan) Lookback() time.Duration {
	var d time.Duration
	for _, r := range p.Rules {
		if r.Sets == 0 {
			d = max(d, r.lookback())
		}
	}
	return d
}

// LookbackSets is the most readings of one kind a sustained rule counts.
func (p *Plan) LookbackSets() int {
	n := 0
	for _, r := range p.Rules {
		if r.Type == Sustained {
			n = max(n, r.Sets)
		}
	}
	return n
}

func (r *Rule) lookback() time.Duration {
	switch r.Type {
	case Sustained:
		if r.Sets > 0 {
			return math.MaxInt64
		}
		return r.For
	case Change:
		return r.Window
	case Deviation:
		if !r.Baseline.Clinical() {
			return r.Baseline.ExcludingLast + r.Baseline.MedianOf
		}
	}
	return 0
}

// extract fills e.series with the kind's readings at or before at that
// the plan's rules of the kind read: those since the newest's time less
// the rules' lookback, and the one reading before that, so that a breach
// or window reaching the cut is seen as such. The series is in time order
// with one point per time.
func (e *Evaluator) extract(p *Plan, k vward.ReadingKind, readings []vward.Reading, at time.Time) {
	e.series = e.series[:0]
	var newest time.Time
	found := false
	for i := range readings {
		r := &readings[i]
		if r.Kind == k && !r.At.After(at) && finite(r.Value) && (!found || r.At.After(newest)) {
			newest, found = r.At, true
		}
	}
	if !found {
		return
	}
	var back time.Duration
	for i := range p.Rules {
		if p.Rules[i].Kind == k {
			back = max(back, p.Rules[i].lookback())
		}
	}
	cut := time.Time{} // zero: keep everything
	if back < math.MaxInt64 {
		cut = newest.Add(-back)
	}
	var before Point
	hasBefore := false
	sorted := true
	for i := range readings {
		r := &readings[i]
		if r.Kind != k || r.At.After(at) || !finite(r.Value) {
			continue
		}
		if r.At.Before(cut) {
			if !hasBefore || !r.At.Before(before.At) {
				before, hasBefore = Point{r.At, r.Value}, true
			}
			continue
		}
		if n := len(e.series); n > 0 && r.At.Before(e.series[n-1].At) {
			sorted = false
		}
		e.series = append(e.series, Point{r.At, r.Value})
	}
	if hasBefore {
		e.series = append(e.series, Point{})
		copy(e.series[1:], e.series)
		e.series[0] = before
	}
	if !sorted {
		// Stable, so that of two readings at one time the one given last
		// stays last and wins below.
		slices.SortStableFunc(e.series, func(a, b Point) int { return a.At.Compare(b.At) })
	}
	// One point per time: the last given.
	w := 0
	for i := range e.series {
		if w > 0 && e.series[i].At.Equal(e.series[w-1].At) {
			e.series[w-1] = e.series[i]
			continue
		}
		e.series[w] = e.series[i]
		w++
	}
	e.series = e.series[:w]
}

func (e *Evaluator) judge(r *Rule, at time.Time) Finding {
	f := Finding{Rule: r.ID}
	s := e.series
	if len(s) == 0 {
		f.State, f.Detail = NotEnoughData, detailNoReading
		if ki, _ := Kind(r.Kind); ki.Event() {
			f.State, f.Detail = DoesNotHold, detailNoEvent
			f.Since = at.Add(-r.Within)
		}
		return f
	}
	latest := s[len(s)-1]
	f.Latest, f.Amount, f.Readings, f.Since, f.Until = latest, latest.Value, 1, latest.At, latest.At
	switch r.Type {
	case Threshold:
		judgeThreshold(r, at, &f)
	case Sustained:
		judgeSustained(r, s, &f)
	case Change:
		judgeChange(r, s, &f)
	case Deviation:
		e.judgeDeviation(r, s, &f)
	}
	return f
}

func holds(ok bool) State {
	if ok {
		return Holds
	}
	return DoesNotHold
}

// compare compares x with v. Values within a billionth count as equal:
// derived amounts carry binary noise (80.1 − 78.1 is 1.99999…), and a
// weight gain of exactly 2.0 kg is not "more than 2 kg".
func compare(x float64, op Op, v float64) bool {
	eq := math.Abs(x-v) <= 1e-9*math.Max(1, math.Abs(v))
	switch op {
	case Below:
		return x < v && !eq
	case AtMost:
		return x < v || eq
	case Above:
		return x > v && !eq
	case AtLeast:
		return x > v || eq
	}
	return false
}

func judgeThreshold(r *Rule, at time.Time, f *Finding) {
	if r.Within > 0 {
		f.Since = at.Add(-r.Within)
	}
	fresh := r.Within == 0 || !f.Latest.At.Before(at.Add(-r.Within))
	if ki, _ := Kind(r.Kind); ki.Event() {
		f.State = holds(fresh)
		if !fresh {
			f.Detail = detailNoEvent
		}
		return
	}
	if !fresh {
		f.State, f.Detail = NotEnoughData, detailStale
		return
	}
	f.State = holds(compare(f.Latest.Value, r.Op, r.Value))
}

func judgeSustained(r *Rule, s []Point, f *Finding) {
	latest := s[len(s)-1]
	if !compare(latest.Value, r.Op, r.Value) {
		f.State = DoesNotHold
		return
	}
	n := 0 // breaching readings counted back from the latest
	for i := len(s) - 1; i >= 0; i-- {
		if !compare(s[i].Value, r.Op, r.Value) {
			f.State = DoesNotHold
			if r.Sets == 0 {
				f.Detail = detailBreachShort
			}
			return
		}
		n++
		f.Reference, f.Readings, f.Since = s[i], n, s[i].At
		if r.Sets > 0 && n == r.Sets || r.Sets == 0 && latest.At.Sub(s[i].At) >= r.For {
			f.State = Holds
			return
		}
	}
	f.State, f.Detail = NotEnoughData, detailShortHistory
	if r.Sets > 0 {
		f.Detail = detailFewSets
	}
}

// judgeChange compares the latest reading with the lowest earlier reading
// within the window for a rise, the highest for a fall: a gain counts from
// wherever the patient was lightest, even if a diuretic dose had brought
// the weight down in between (docs/careplans.md).
func judgeChange(r *Rule, s []Point, f *Finding) {
	latest := s[len(s)-1]
	from := latest.At.Add(-r.Window)
	f.Since = from
	found := false
	for i := 0; i < len(s)-1; i++ {
		p := s[i]
		if p.At.Before(from) {
			continue
		}
		f.Readings++
		if !found || r.Direction == Rise && p.Value < f.Reference.Value || r.Direction == Fall && p.Value > f.Reference.Value {
			f.Reference, found = p, true
		}
	}
	if !found {
		f.State, f.Detail, f.Amount = NotEnoughData, detailNoEarlier, 0
		return
	}
	f.Amount = latest.Value - f.Reference.Value
	if r.Direction == Fall {
		f.Amount = -f.Amount
	}
	f.State = holds(compare(f.Amount, r.Op, r.Value))
}

func (e *Evaluator) judgeDeviation(r *Rule, s []Point, f *Finding) {
	latest := s[len(s)-1]
	b := r.Baseline
	if b.Clinical() {
		f.Baseline, f.Reference = b.Value, Point{At: b.SetAt, Value: b.Value}
	} else {
		until := latest.At.Add(-b.ExcludingLast)
		from := until.Add(-b.MedianOf)
		f.Since, f.Until = from, until
		e.values = e.values[:0]
		for _, p := range s[:len(s)-1] {
			if !p.At.Before(from) && p.At.Before(until) {
				e.values = append(e.values, p.Value)
			}
		}
		f.Readings = len(e.values)
		if len(e.values) < b.MinReadings {
			f.State, f.Detail, f.Amount = NotEnoughData, detailFewBaseline, 0
			return
		}
		f.Baseline = median(e.values)
	}
	dev := latest.Value - f.Baseline
	if r.Direction == Fall {
		dev = -dev
	}
	if r.Percent {
		if f.Baseline <= 0 {
			f.State, f.Detail, f.Amount = NotEnoughData, detailZeroBaseline, 0
			return
		}
		dev = dev / f.Baseline * 100
	}
	f.Amount = dev
	f.State = holds(compare(dev, r.Op, r.Value))
}

// finite guards the evaluator against a value no reading can have.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// median sorts vs in place and returns their median: the middle value, or
// the mean of the two middle ones.
func median(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// Describe says in words what a finding found, for an alert's reason and
// the patient view: "weight 82.4 kg at 2026-11-23 09:00 UTC: up 2.3 kg
// from 80.1 kg at 2026-11-20 09:10 UTC within 3d (rule: more than 2 kg)".
func (r Rule) Describe(f Finding) string {
	ki, _ := Kind(r.Kind)
	val := func(v float64) string { return fmtValue(ki, v) + unitSuffix(ki.Unit) }
	when := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
	var b strings.Builder
	b.WriteString(r.Name)
	b.WriteString(": ")
	switch {
	case f.Latest.At.IsZero() && ki.Event():
		fmt.Fprintf(&b, "no %s in the last %s", r.Kind, formatDuration(r.Within))
		return b.String()
	case f.Latest.At.IsZero():
		b.WriteString(string(r.Kind) + ": " + f.Detail)
		return b.String()
	case ki.Event():
		fmt.Fprintf(&b, "%s at %s", r.Kind, when(f.Latest.At))
	default:
		fmt.Fprintf(&b, "%s %s at %s", r.Kind, val(f.Latest.Value), when(f.Latest.At))
	}
	switch r.Type {
	case Sustained:
		if f.Readings > 1 {
			fmt.Fprintf(&b, ", %d readings %s %s since %s", f.Readings, r.Op, val(r.Value), when(f.Reference.At))
		}
	case Change:
		if f.State != NotEnoughData {
			word := "up"
			if r.Direction == Fall {
				word = "down"
			}
			if f.Amount < 0 {
				word = map[string]string{"up": "down", "down": "up"}[word]
			}
			fmt.Fprintf(&b, ", %s %s from %s at %s within %s", word, val(math.Abs(f.Amount)), val(f.Reference.Value), when(f.Reference.At), formatDuration(r.Window))
		}
	case Deviation:
		if f.State != NotEnoughData {
			amount := val(math.Abs(f.Amount))
			if ki.Unit == "%" {
				// SpO2 in its own unit: percentage points, not a
				// percentage of the baseline.
				amount = fmtValue(ki, math.Abs(f.Amount)) + " points"
			}
			if r.Percent {
				amount = fmtValue(KindInfo{Places: 1}, math.Abs(f.Amount)) + "%"
			}
			word := "above"
			if f.Amount < 0 == (r.Direction == Rise) {
				word = "below"
			}
			fmt.Fprintf(&b, ", %s %s baseline %s", amount, word, val(f.Baseline))
		}
	}
	if f.Detail != "" {
		b.WriteString(" (" + f.Detail + ")")
	}
	return b.String()
}

func fmtValue(ki KindInfo, v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.*f", ki.Places+1, v), "0"), ".")
}
