package simulator

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// Source is where an expected alert is seen on the board's stream.
type Source string

// Sources.
const (
	// FromNEWS2 is a patient event whose news2.risk reached the band.
	FromNEWS2 Source = "news2"
	// FromAlert is an alert event (type "alert") of the band for the
	// patient, and of the condition when the expectation names one.
	FromAlert Source = "alert"
	// FromEither is whichever of the two comes first.
	FromEither Source = "any"
)

// Expectation is an alert the board should show: patient Patient reaches
// NEWS2 risk Risk or above within [After, Before] of scenario start, in
// scenario (simulated) time as seen on the board's stream.
type Expectation struct {
	Patient vward.PatientID `json:"patient"`
	// Risk is "low-medium", "medium" or "high". Reaching means the band or
	// a higher one: a patient who jumps from low to high has reached
	// medium too.
	Risk   string   `json:"risk"`
	After  Duration `json:"after"`
	Before Duration `json:"before,omitempty"` // 0: any time until the run ends
	Source Source   `json:"source,omitempty"` // default news2
	// Condition, for alert events, must equal the alert's condition.
	Condition string `json:"condition,omitempty"`
	// Complete requires a full NEWS2 (all seven parameters current), not
	// a partial score.
	Complete bool   `json:"complete,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Allowance tolerates a patient reaching a band (and those below it)
// without requiring it: noise, or a state the patient starts in.
type Allowance struct {
	Patient vward.PatientID `json:"patient"`
	Risk    string          `json:"risk"`
	Note    string          `json:"note,omitempty"`
}

// ParseRisk reads a NEWS2 risk band name.
func ParseRisk(s string) (news2.Risk, error) {
	var r news2.Risk
	err := r.UnmarshalText([]byte(s))
	return r, err
}

func (e Expectation) source() Source {
	if e.Source == "" {
		return FromNEWS2
	}
	return e.Source
}

func (e Expectation) check(p *Plan) error {
	if _, ok := p.byID[e.Patient]; !ok {
		return fmt.Errorf("no patient %q in the scenario", e.Patient)
	}
	r, err := ParseRisk(e.Risk)
	if err != nil {
		return err
	}
	if r == news2.Low {
		return fmt.Errorf("risk low is not an alert; expect low-medium, medium or high")
	}
	if e.After < 0 || e.Before < 0 || (e.Before > 0 && e.Before < e.After) {
		return fmt.Errorf("the window %s–%s is empty", e.After.D(), e.Before.D())
	}
	switch e.source() {
	case FromNEWS2, FromAlert, FromEither:
	default:
		return fmt.Errorf("source %q is not news2, alert or any", e.Source)
	}
	return nil
}

// Observation is one thing the board showed about a scenario patient.
type Observation struct {
	Source    Source
	Patient   vward.PatientID
	Risk      news2.Risk
	Score     int
	Complete  bool
	Condition string
	// At is the scenario time at which the board showed it: for a live
	// run, (arrival − clock origin) × speed, so every real millisecond the
	// path from device to board takes counts Speed milliseconds.
	At time.Duration
	// Measured is the scenario time of the newest measurement behind it,
	// when known (informative: a device with a skewed clock moves it).
	Measured time.Duration
	Detail   string
}

// Status is an expectation's outcome.
type Status string

// Outcomes.
const (
	OK         Status = "OK"
	Missing    Status = "MISSING"
	Late       Status = "LATE"
	Early      Status = "EARLY"
	Unexpected Status = "UNEXPECTED"
	// Skipped is an alert expectation in a dry run, which has no alert
	// engine; it does not fail the report.
	Skipped Status = "SKIPPED"
)

// Result is the outcome of one expectation, or one unexpected alert.
type Result struct {
	Status      Status
	Expectation *Expectation
	Patient     vward.PatientID
	Risk        news2.Risk
	// Seen is the first observation that met the expectation (or the
	// unexpected one); Highest, for a missing one, the most acute seen.
	Seen, Highest *Observation
}

// Report is what a replay found.
type Report struct {
	Scenario string
	// Checked is false when the run did not watch the board.
	Checked    bool
	Results    []Result
	Unexpected []Result
	// Notifications are the outcomes of the scenario's notification
	// expectations.
	Notifications []NotificationResult
	// Problems are failures of the run itself (devices that could not
	// connect, publishes never acknowledged).
	Problems []string
	Notes    []string
}

// Passed reports whether every expectation was met, nothing unexpected was
// seen and the run itself had no problems.
func (r *Report) Passed() bool {
	if len(r.Unexpected) > 0 || len(r.Problems) > 0 {
		return false
	}
	for _, x := range r.Results {
		if x.Status != OK && x.Status != Skipped {
			return false
		}
	}
	for _, x := range r.Notifications {
		if x.Status != OK && x.Status != Skipped {
			return false
		}
	}
	return true
}

// Evaluate judges what the board showed against the scenario's
// expectations. Observations of patients outside the plan are ignored.
func Evaluate(plan *Plan, obs []Observation) *Report { return evaluate(plan, obs, true) }

// EvaluateDryRun judges a dry run's observations: expectations of alert
// events are skipped, since a dry run has no alert engine, except those
// of care plan rules, which the dry run judges as vward does.
func EvaluateDryRun(plan *Plan, obs []Observation) *Report { return evaluate(plan, obs, false) }

func evaluate(plan *Plan, obs []Observation, alerts bool) *Report {
	sc := plan.Scenario
	rep := &Report{Scenario: sc.Name, Checked: true}
	if !alerts {
		for i := range sc.Notifications {
			rep.Notifications = append(rep.Notifications, NotificationResult{Status: Skipped, Expectation: &sc.Notifications[i]})
		}
	}
	obs = slices.Clone(obs)
	slices.SortStableFunc(obs, func(a, b Observation) int { return cmp.Compare(a.At, b.At) })
	highest := map[vward.PatientID]*Observation{}
	for i := range obs {
		o := &obs[i]
		if _, ok := plan.byID[o.Patient]; !ok {
			continue
		}
		if h := highest[o.Patient]; h == nil || o.Risk > h.Risk || o.Risk == h.Risk && o.Score > h.Score {
			highest[o.Patient] = o
		}
	}
	for i := range sc.Expect {
		e := &sc.Expect[i]
		want, _ := ParseRisk(e.Risk)
		res := Result{Expectation: e, Patient: e.Patient, Risk: want, Status: Missing}
		if !alerts && e.source() == FromAlert && e.Condition != CarePlanCondition {
			res.Status = Skipped
			rep.Results = append(rep.Results, res)
			continue
		}
		for j := range obs {
			o := &obs[j]
			if o.Patient != e.Patient || o.Risk < want || !sourceMatches(e, o) {
				continue
			}
			res.Seen = o
			switch {
			case o.At < e.After.D():
				res.Status = Early
			case e.Before > 0 && o.At > e.Before.D():
				res.Status = Late
			default:
				res.Status = OK
			}
			break
		}
		if res.Seen == nil {
			res.Highest = highest[e.Patient]
		}
		rep.Results = append(rep.Results, res)
	}
	type key struct {
		p vward.PatientID
		s Source
		r news2.Risk
	}
	reported := map[key]bool{}
	for i := range obs {
		o := &obs[i]
		if _, ok := plan.byID[o.Patient]; !ok || o.Risk < news2.Medium || allowed(sc, o) {
			continue
		}
		k := key{o.Patient, o.Source, o.Risk}
		if reported[k] {
			continue
		}
		reported[k] = true
		rep.Unexpected = append(rep.Unexpected, Result{Status: Unexpected, Patient: o.Patient, Risk: o.Risk, Seen: o})
	}
	return rep
}

func sourceMatches(e *Expectation, o *Observation) bool {
	switch e.source() {
	case FromAlert:
		return o.Source == FromAlert && (e.Condition == "" || e.Condition == o.Condition)
	case FromEither:
		return o.Source == FromNEWS2 || e.Condition == "" || e.Condition == o.Condition
	}
	return o.Source == FromNEWS2 && (!e.Complete || o.Complete)
}

// allowed reports whether some expectation or allowance of the patient
// covers the band observed. An expected alert of another condition than
// NEWS2's (a care plan rule's) covers only alerts of that condition: a
// care plan alert of medium must not excuse a NEWS2 of medium.
func allowed(sc *Scenario, o *Observation) bool {
	for _, e := range sc.Expect {
		r, _ := ParseRisk(e.Risk)
		if e.Patient != o.Patient || r < o.Risk {
			continue
		}
		if e.source() == FromAlert && e.Condition != "" && e.Condition != "news2" &&
			(o.Source != FromAlert || o.Condition != e.Condition) {
			continue
		}
		return true
	}
	for _, a := range sc.Allow {
		if r, _ := ParseRisk(a.Risk); a.Patient == o.Patient && r >= o.Risk {
			return true
		}
	}
	return false
}

// WriteTo writes the report for people.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	if !r.Checked {
		verdict = "RAN (expectations not checked)"
		if len(r.Problems) > 0 {
			verdict = "FAIL"
		}
	}
	failed := len(r.Unexpected) + len(r.Problems)
	for _, x := range r.Results {
		if x.Status != OK && x.Status != Skipped {
			failed++
		}
	}
	for _, x := range r.Notifications {
		if x.Status != OK && x.Status != Skipped {
			failed++
		}
	}
	fmt.Fprintf(&b, "scenario %q: %s", r.Scenario, verdict)
	if r.Checked {
		fmt.Fprintf(&b, " — %d expectation(s), %d problem(s)", len(r.Results)+len(r.Notifications), failed)
	}
	b.WriteString("\n")
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  %-11s %s\n", "PROBLEM", p)
	}
	for _, x := range r.Results {
		e := x.Expectation
		window := fmt.Sprintf("%s–%s", fmtDur(e.After.D()), fmtDur(e.Before.D()))
		if e.Before == 0 {
			window = fmt.Sprintf("from %s on", fmtDur(e.After.D()))
		}
		src := ""
		if e.source() != FromNEWS2 {
			src = " (" + string(e.source()) + ")"
		}
		switch x.Status {
		case Skipped:
			fmt.Fprintf(&b, "  %-11s %s reaching %s%s (expected %s): a dry run has no alert engine\n", x.Status, x.Patient, x.Risk, src, window)
		case Missing:
			fmt.Fprintf(&b, "  %-11s %s never reached %s%s (expected %s)", x.Status, x.Patient, x.Risk, src, window)
			if h := x.Highest; h != nil {
				fmt.Fprintf(&b, "; most acute seen: %s at %s", h.describe(), fmtDur(h.At))
			} else {
				b.WriteString("; the board showed no score for the patient")
			}
			b.WriteString("\n")
		default:
			fmt.Fprintf(&b, "  %-11s %s reached %s%s at %s (expected %s): %s\n", x.Status, x.Patient, x.Risk, src, fmtDur(x.Seen.At), window, x.Seen.describe())
		}
	}
	for _, x := range r.Notifications {
		b.WriteString(x.line())
	}
	for _, x := range r.Unexpected {
		fmt.Fprintf(&b, "  %-11s %s reached %s at %s, which no expectation or allowance covers: %s\n", x.Status, x.Patient, x.Risk, fmtDur(x.Seen.At), x.Seen.describe())
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  %s\n", n)
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

func (o *Observation) describe() string {
	if o.Source == FromAlert {
		s := fmt.Sprintf("alert %s", o.Risk)
		if o.Condition != "" {
			s += " (" + o.Condition + ")"
		}
		if o.Detail != "" {
			s += " [" + o.Detail + "]"
		}
		return s
	}
	partial := "complete"
	if !o.Complete {
		partial = "partial"
	}
	s := fmt.Sprintf("NEWS2 %d %s, %s", o.Score, o.Risk, partial)
	if o.Detail != "" {
		s += " [" + o.Detail + "]"
	}
	return s
}

// fmtDur writes scenario times as people read them: 3h41m, 12m30s, 45s.
func fmtDur(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		d = d.Round(time.Second)
		s = fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		s = d.Round(time.Millisecond).String()
	}
	if neg {
		s = "-" + s
	}
	return s
}
