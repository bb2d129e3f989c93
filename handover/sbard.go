// Package handover hands a deteriorating patient over from an alert to
// another service (the 2-hour urgent community response, the single point
// of access, the GP, 999) with an SBARD summary built from the evidence, and
// records what came of it. A handover is a clinical action: it is written to
// the alert's audit and the patient's in the same transaction as the
// handover itself, and its outcome is recorded once. The ward report's
// step-up figures count them (docs/alerts.md, "Handing over (SBARD)").
package handover

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
)

// Destination is the service a patient is handed over to.
type Destination string

// The destinations, as the API and the CLI name them.
const (
	UrgentCommunityResponse Destination = "urgent_community_response"
	SinglePointOfAccess     Destination = "single_point_of_access"
	GP                      Destination = "gp"
	Emergency               Destination = "999"
)

// Destinations lists every destination, least to most urgent as the board
// offers them.
var Destinations = []Destination{GP, SinglePointOfAccess, UrgentCommunityResponse, Emergency}

// Title names the destination for people.
func (d Destination) Title() string {
	switch d {
	case UrgentCommunityResponse:
		return "2-hour urgent community response"
	case SinglePointOfAccess:
		return "single point of access"
	case GP:
		return "the patient's GP"
	case Emergency:
		return "999 emergency ambulance"
	}
	return string(d)
}

// Ask is what the handover asks of the destination.
func (d Destination) Ask() string {
	switch d {
	case UrgentCommunityResponse:
		return "Urgent assessment at home within 2 hours by the urgent community response team, to treat the patient at home where that is safe."
	case SinglePointOfAccess:
		return "Triage by the single point of access: which service sees the patient, and how soon."
	case GP:
		return "Review by the GP today: treatment, medication, or a decision to escalate."
	case Emergency:
		return "An emergency ambulance: immediate assessment, and conveyance to hospital if needed."
	}
	return ""
}

// ParseDestination reads a destination id, refusing any other with the
// list of valid ones.
func ParseDestination(s string) (Destination, error) {
	d := Destination(strings.TrimSpace(s))
	if slices.Contains(Destinations, d) {
		return d, nil
	}
	if d == "" {
		return "", vward.Errorf(vward.ErrInvalid, "destination is required: one of %s", destinationList())
	}
	return "", vward.Errorf(vward.ErrInvalid, "destination %q is not one of %s", s, destinationList())
}

func destinationList() string {
	names := make([]string, len(Destinations))
	for i, d := range Destinations {
		names[i] = string(d)
	}
	return strings.Join(names, ", ")
}

// Outcome is what came of a handover.
type Outcome string

// The outcomes of a handover.
const (
	SeenAtHome      Outcome = "seen_at_home"
	Conveyed        Outcome = "conveyed"
	Admitted        Outcome = "admitted"
	NoFurtherAction Outcome = "no_further_action"
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{SeenAtHome, Conveyed, Admitted, NoFurtherAction}

// Words says the outcome for people.
func (o Outcome) Words() string {
	switch o {
	case SeenAtHome:
		return "seen at home"
	case Conveyed:
		return "conveyed to hospital"
	case Admitted:
		return "admitted to hospital"
	case NoFurtherAction:
		return "no further action"
	}
	return string(o)
}

// ParseOutcome reads an outcome id, refusing any other with the list of
// valid ones.
func ParseOutcome(s string) (Outcome, error) {
	o := Outcome(strings.TrimSpace(s))
	if slices.Contains(Outcomes, o) {
		return o, nil
	}
	names := make([]string, len(Outcomes))
	for i, o := range Outcomes {
		names[i] = string(o)
	}
	if o == "" {
		return "", vward.Errorf(vward.ErrInvalid, "outcome is required: one of %s", strings.Join(names, ", "))
	}
	return "", vward.Errorf(vward.ErrInvalid, "outcome %q is not one of %s", s, strings.Join(names, ", "))
}

// NoteLine is one of the patient's recent notes, as the SBARD quotes it.
type NoteLine struct {
	ID     string    `json:"id,omitempty"` // "note-12"
	At     time.Time `json:"at"`
	Author string    `json:"author"`
	Kind   string    `json:"kind,omitempty"` // phone call, visit, …
	Text   string    `json:"text"`
}

// Evidence is everything an SBARD is built from, read by the Service.
type Evidence struct {
	Patient devices.Patient
	Ward    devices.Ward
	Alert   alerting.Alert
	// Policy is the ward's escalation policy as it is now.
	Policy alerting.Policy
	// Set is the patient's latest observation set, scored at At with
	// Freshness; Sources says who measured each held value.
	Set       news2.Set
	Sources   [news2.NumParameters]string
	Freshness news2.Freshness
	// Trend is the patient's NEWS2 over the last day, oldest first.
	Trend []alerting.TrendPoint
	Notes []NoteLine

	Destination Destination
	Note        string
	By          string
	At          time.Time
	// Loc is the time zone the text gives times in; nil is UTC.
	Loc *time.Location
}

// maxQuoted bounds the notes the text quotes; the structured summary has
// them all.
const maxQuoted = 10

// TrendWindow is how far back the assessment reads the NEWS2 trend.
const TrendWindow = 6 * time.Hour

// Summary is an SBARD handover: structured, and as Text for copying,
// printing or reading over the telephone.
type Summary struct {
	Situation      Situation      `json:"situation"`
	Background     Background     `json:"background"`
	Assessment     Assessment     `json:"assessment"`
	Recommendation Recommendation `json:"recommendation"`
	Decision       Decision       `json:"decision"`
	Text           string         `json:"text"`
}

// Situation is who the patient is, the alert, and their NEWS2 now.
type Situation struct {
	Patient   vward.PatientID `json:"patient"`
	Name      string          `json:"name"`
	NHSNumber string          `json:"nhs_number,omitempty"`
	Ward      vward.WardID    `json:"ward"`
	WardName  string          `json:"ward_name"`
	Alert     AlertSummary    `json:"alert"`
	// News2 is the score of the latest set at the handover; nil when no
	// parameter is current.
	News2 *alerting.Score `json:"news2,omitempty"`
	// Response is the RCP clinical response the score calls for.
	Response string `json:"response"`
}

// AlertSummary is the alert as the SBARD cites it.
type AlertSummary struct {
	ID        int64              `json:"id"`
	Condition alerting.Condition `json:"condition"`
	Rule      string             `json:"rule,omitempty"` // the care plan rule, or expected measurement, it is about
	Risk      news2.Risk         `json:"risk"`
	Score     int                `json:"score"`
	State     alerting.State     `json:"state"`
	RaisedAt  time.Time          `json:"raised_at"`
	Tier      int                `json:"tier"`
	TierName  string             `json:"tier_name"`
}

// Background is the patient's stay and the ward's escalation policy.
type Background struct {
	Pathway     string            `json:"pathway,omitempty"`
	Place       string            `json:"place,omitempty"`
	Born        string            `json:"born,omitempty"`
	AdmittedAt  time.Time         `json:"admitted_at"`
	ExpectedEnd string            `json:"expected_end,omitempty"`
	Status      string            `json:"status"`
	SpO2Scale   int               `json:"spo2_scale"`
	Tiers       []string          `json:"escalation_tiers"`
	Contacts    []devices.Contact `json:"escalation_contacts"`
	Notes       []NoteLine        `json:"recent_notes"`
}

// Measurement is one parameter of the latest set: its value, when and by whom
// it was measured, and its NEWS2 sub-score if it was current.
type Measurement struct {
	Parameter string    `json:"parameter"`
	Value     float64   `json:"value"`
	Display   string    `json:"display"` // "22 /min", "air", "A"
	At        time.Time `json:"at"`
	Source    string    `json:"source"`
	// Subscore is nil for a value too old to score (Stale).
	Subscore *int `json:"subscore,omitempty"`
	Stale    bool `json:"stale,omitempty"`
}

// Assessment is the latest observation set, what it lacks, and the trend.
type Assessment struct {
	Observations []Measurement `json:"observations"`
	// Missing names the parameters with no value at all; Stale those whose
	// value is older than its freshness window, so not scored.
	Missing []string `json:"missing"`
	Stale   []string `json:"stale"`
	// Trend is the NEWS2 over the last TrendWindow, oldest first, and
	// TrendWords says it in a sentence.
	Trend      []alerting.TrendPoint `json:"trend"`
	TrendWords string                `json:"trend_words"`
}

// Recommendation is where the patient is handed over to and what is asked.
type Recommendation struct {
	Destination Destination `json:"destination"`
	Title       string      `json:"title"`
	Ask         string      `json:"ask"`
	Response    string      `json:"news2_response"`
	Note        string      `json:"note,omitempty"`
}

// Decision is who handed over and when; the outcome is recorded later.
type Decision struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// paramWords names the NEWS2 parameters for people, in chart order.
var paramWords = [news2.NumParameters]string{
	news2.RespiratoryRate:    "Respiratory rate",
	news2.SpO2:               "SpO₂",
	news2.SupplementalOxygen: "Air or oxygen",
	news2.SystolicBP:         "Systolic BP",
	news2.HeartRate:          "Pulse",
	news2.Consciousness:      "Consciousness (ACVPU)",
	news2.Temperature:        "Temperature",
}

// paramInLine names them within a sentence.
var paramInLine = [news2.NumParameters]string{
	news2.RespiratoryRate:    "respiratory rate",
	news2.SpO2:               "SpO₂",
	news2.SupplementalOxygen: "air or oxygen",
	news2.SystolicBP:         "systolic BP",
	news2.HeartRate:          "pulse",
	news2.Consciousness:      "consciousness (ACVPU)",
	news2.Temperature:        "temperature",
}

// display writes a value as the chart does: "22 /min", "oxygen", "A".
func display(p news2.Parameter, v float64) string {
	r := vward.Reading{Kind: p.Kind(), Value: v}
	switch p {
	case news2.SupplementalOxygen:
		if r.Bool() {
			return "on oxygen"
		}
		return "air"
	case news2.Consciousness:
		return r.Display()
	}
	if u := r.Kind.Unit(); u != "" {
		return r.Display() + " " + u
	}
	return r.Display()
}

// Build builds the SBARD of a handover from its evidence. It is pure: the
// score is of ev.Set at ev.At, and the text gives times in ev.Loc.
func Build(ev Evidence) Summary {
	f := ev.Freshness
	if f == (news2.Freshness{}) {
		f = news2.DefaultFreshness()
	}
	res := news2.Score(ev.Set.Observations(ev.At, f))
	scale := max(ev.Set.Scale, news2.Scale1)

	var s Summary
	s.Situation = Situation{
		Patient: ev.Patient.ID, Name: ev.Patient.Name, NHSNumber: ev.Patient.NHSNumber,
		Ward: ev.Ward.ID, WardName: ev.Ward.Name,
		Alert: AlertSummary{ID: ev.Alert.ID, Condition: ev.Alert.Condition, Rule: ev.Alert.Rule, Risk: ev.Alert.Risk, Score: ev.Alert.Score,
			State: ev.Alert.State, RaisedAt: ev.Alert.RaisedAt, Tier: ev.Alert.Tier, TierName: ev.Alert.TierName},
	}
	if res.Present != 0 {
		sc := alerting.NewScore(res)
		s.Situation.News2 = &sc
		s.Situation.Response = res.Response()
	} else {
		s.Situation.Response = "No current observation: take a full set of observations now."
	}
	contacts := ev.Patient.Contacts
	if contacts == nil {
		contacts = []devices.Contact{}
	}
	notes := ev.Notes
	if notes == nil {
		notes = []NoteLine{}
	}
	s.Background = Background{
		Pathway: ev.Ward.Pathway, Place: ev.Ward.Place, Born: ev.Patient.Born, AdmittedAt: ev.Patient.Admitted,
		ExpectedEnd: ev.Patient.ExpectedEnd, Status: ev.Patient.Status, SpO2Scale: int(scale),
		Tiers: append([]string{}, ev.Policy.Tiers...), Contacts: contacts, Notes: notes,
	}
	a := Assessment{Observations: []Measurement{}, Missing: []string{}, Stale: []string{}, Trend: []alerting.TrendPoint{}}
	for p := range news2.NumParameters {
		v, at, ok := ev.Set.Latest(p)
		if !ok {
			a.Missing = append(a.Missing, p.String())
			continue
		}
		o := Measurement{Parameter: p.String(), Value: v, Display: display(p, v), At: at, Source: ev.Sources[p]}
		if o.Source == "" {
			o.Source = "unknown source"
		}
		if res.Has(p) {
			sub := res.Subscores[p]
			o.Subscore = &sub
		} else {
			o.Stale = true
			a.Stale = append(a.Stale, p.String())
		}
		a.Observations = append(a.Observations, o)
	}
	for _, tp := range ev.Trend {
		if !tp.At.Before(ev.At.Add(-TrendWindow)) && !tp.At.After(ev.At) {
			a.Trend = append(a.Trend, tp)
		}
	}
	a.TrendWords = trendWords(a.Trend, ev.Loc)
	s.Assessment = a
	s.Recommendation = Recommendation{Destination: ev.Destination, Title: ev.Destination.Title(), Ask: ev.Destination.Ask(),
		Response: s.Situation.Response, Note: strings.TrimSpace(ev.Note)}
	s.Decision = Decision{By: ev.By, At: ev.At}
	s.Text = text(s, ev, res)
	return s
}

// trendWords says the NEWS2 over the window in one line: each change of
// score with its time, and whether it rose or fell overall.
func trendWords(ps []alerting.TrendPoint, loc *time.Location) string {
	if len(ps) == 0 {
		return fmt.Sprintf("No NEWS2 recorded in the last %d hours.", int(TrendWindow.Hours()))
	}
	point := func(p alerting.TrendPoint) string {
		w := fmt.Sprintf("%d at %s", p.Score, clock(p.At, loc))
		if p.Partial {
			w += " (partial)"
		}
		return w
	}
	steps := []string{point(ps[0])}
	for i := 1; i < len(ps); i++ {
		if ps[i].Score != ps[i-1].Score || ps[i].Partial != ps[i-1].Partial {
			steps = append(steps, point(ps[i]))
		} else if i == len(ps)-1 {
			steps = append(steps, "still "+point(ps[i]))
		}
	}
	const most = 8
	if len(steps) > most {
		steps = append([]string{"…"}, steps[len(steps)-most:]...)
	}
	first, last := ps[0].Score, ps[len(ps)-1].Score
	way := "unchanged"
	switch {
	case last > first:
		way = fmt.Sprintf("rising, %d to %d", first, last)
	case last < first:
		way = fmt.Sprintf("falling, %d to %d", first, last)
	}
	return fmt.Sprintf("NEWS2 over the last %d hours: %s; %s.", int(TrendWindow.Hours()), strings.Join(steps, " → "), way)
}

// clock writes a time as a handover reads it: "Fri 4 Dec 04:19".
func clock(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("Mon 2 Jan 15:04")
}

// ago says how long before now: "12 min ago", "3 h 5 min ago".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in the future by the device's clock"
	}
	m := int(math.Round(d.Minutes()))
	switch {
	case m < 1:
		return "just now"
	case m < 60:
		return fmt.Sprintf("%d min ago", m)
	case m < 48*60:
		if m%60 == 0 {
			return fmt.Sprintf("%d h ago", m/60)
		}
		return fmt.Sprintf("%d h %d min ago", m/60, m%60)
	}
	return fmt.Sprintf("%d days ago", m/(24*60))
}

var conditionWords = map[alerting.Condition]string{
	alerting.News2:    "NEWS2",
	alerting.Overdue:  "observations overdue",
	alerting.CarePlan: "care plan rule",
	alerting.Concern:  "concern reported by the patient or carer",
}

var stateWords = map[alerting.State]string{
	alerting.Raised:       "raised, not acknowledged",
	alerting.Acknowledged: "acknowledged",
	alerting.Shelved:      "shelved",
	alerting.Cleared:      "back to normal, not acknowledged",
	alerting.Resolved:     "resolved",
}

// text writes the summary for copying, printing or reading aloud.
func text(s Summary, ev Evidence, res news2.Result) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	sit, bg, as, rec := s.Situation, s.Background, s.Assessment, s.Recommendation
	line("SBARD handover: %s to %s", nameOf(sit), rec.Title)
	line("")
	line("S — SITUATION")
	who := nameOf(sit)
	if sit.NHSNumber != "" {
		who += ", NHS number " + spacedNHS(sit.NHSNumber)
	}
	line("Patient: %s (%s), on %s (%s)", who, sit.Patient, orID(sit.WardName, string(sit.Ward)), sit.Ward)
	al := sit.Alert
	what := conditionWords[al.Condition]
	if _, ok := alerting.ExpectedKind(al.Rule); ok && al.Condition == alerting.Overdue {
		what = alerting.OverdueWhat(al.Rule) + ","
	}
	if what == "" {
		what = string(al.Condition)
	}
	state := stateWords[al.State]
	if al.State == alerting.Acknowledged && ev.Alert.AcknowledgedBy != "" {
		state += " by " + ev.Alert.AcknowledgedBy
	}
	line("Alert %d: %s %s risk (score %d), raised %s (%s); %s; escalation tier: %s",
		al.ID, what, al.Risk, al.Score, clock(al.RaisedAt, ev.Loc), ago(al.RaisedAt, ev.At), state, orID(al.TierName, fmt.Sprint(al.Tier)))
	if sit.News2 == nil {
		line("NEWS2 now: no current observations to score")
	} else if res.Complete {
		line("NEWS2 now: %d, %s risk (complete set)%s", res.Score, res.Risk, red(res))
	} else {
		line("NEWS2 now: PARTIAL, at least %d, %s risk%s; missing or stale: %s", res.Score, res.Risk, red(res), strings.Join(words(append(append([]string{}, as.Missing...), as.Stale...)), ", "))
	}
	line("Clinical response (NEWS2): %s", sit.Response)
	line("")
	line("B — BACKGROUND")
	ward := orID(sit.WardName, string(sit.Ward))
	if bg.Pathway != "" {
		ward += ", " + bg.Pathway + " pathway"
	}
	if bg.Place != "" {
		ward += ", " + bg.Place
	}
	line("Virtual ward: %s", ward)
	stay := fmt.Sprintf("On the ward since %s (%s)", clock(bg.AdmittedAt, ev.Loc), ago(bg.AdmittedAt, ev.At))
	if bg.ExpectedEnd != "" {
		stay += "; expected end " + bg.ExpectedEnd
	}
	if bg.Status == devices.StatusPaused {
		stay += "; monitoring paused (in hospital)"
	}
	line("%s", stay)
	if bg.Born != "" {
		line("Date of birth: %s", bg.Born)
	}
	if bg.SpO2Scale == int(news2.Scale2) {
		line("SpO₂ scale: Scale 2, prescribed (target 88–92 %%)")
	} else {
		line("SpO₂ scale: Scale 1")
	}
	if len(bg.Tiers) > 0 {
		line("Escalation (ward policy): %s; the alert is at tier %d, %s", strings.Join(bg.Tiers, " → "), al.Tier+1, orID(al.TierName, "beyond the last tier"))
	}
	if len(bg.Contacts) == 0 {
		line("Escalation contacts: none held")
	} else {
		var cs []string
		for _, c := range bg.Contacts {
			w := c.Name
			if c.Role != "" {
				w += " (" + c.Role + ")"
			}
			if c.Phone != "" {
				w += " " + c.Phone
			}
			cs = append(cs, w)
		}
		line("Escalation contacts: %s", strings.Join(cs, "; "))
	}
	if len(bg.Notes) > 0 {
		line("Recent notes (last %d hours, newest first):", int(NotesLookback.Hours()))
		for i, n := range bg.Notes {
			if i == maxQuoted {
				line("  … and %d earlier, in the patient's notes", len(bg.Notes)-maxQuoted)
				break
			}
			kind := ""
			if n.Kind != "" {
				kind = n.Kind + ", "
			}
			line("  %s (%s%s): %s", clock(n.At, ev.Loc), kind, n.Author, strings.Join(strings.Fields(n.Text), " "))
		}
	}
	line("")
	line("A — ASSESSMENT")
	if len(as.Observations) == 0 {
		line("No observations held for the patient.")
	} else {
		line("Latest observations (NEWS2 sub-score in brackets):")
		for _, o := range as.Observations {
			p := paramOf(o.Parameter)
			score := "[not scored: older than " + freshFor(ev, p) + "]"
			if o.Subscore != nil {
				score = fmt.Sprintf("[%d]", *o.Subscore)
			}
			line("  %-22s %-10s %s  %s (%s), %s", paramWords[p]+":", o.Display, score, clock(o.At, ev.Loc), ago(o.At, ev.At), o.Source)
		}
	}
	if len(as.Missing) > 0 {
		line("Not measured: %s", strings.Join(words(as.Missing), ", "))
	}
	if len(as.Stale) > 0 {
		line("Too old to score: %s", strings.Join(words(as.Stale), ", "))
	}
	line("%s", as.TrendWords)
	line("")
	line("R — RECOMMENDATION")
	line("Handed over to: %s", rec.Title)
	line("Asked: %s", rec.Ask)
	if rec.Note != "" {
		line("Note: %s", rec.Note)
	}
	line("")
	line("D — DECISION")
	line("Handed over by %s at %s. Outcome: to be recorded on the alert (seen at home, conveyed, admitted or no further action).", s.Decision.By, clock(s.Decision.At, ev.Loc))
	return b.String()
}

func nameOf(s Situation) string { return orID(s.Name, string(s.Patient)) }

func orID(name, id string) string {
	if strings.TrimSpace(name) == "" {
		return id
	}
	return name
}

func red(r news2.Result) string {
	if !r.RedScore {
		return ""
	}
	var ps []string
	for p := range news2.NumParameters {
		if r.Has(p) && r.Subscores[p] == 3 {
			ps = append(ps, paramInLine[p])
		}
	}
	return "; red score in " + strings.Join(ps, ", ")
}

// spacedNHS writes a ten-digit NHS number 3-3-4, as it is read out.
func spacedNHS(n string) string {
	if len(n) == 10 {
		return n[:3] + " " + n[3:6] + " " + n[6:]
	}
	return n
}

func paramOf(name string) news2.Parameter {
	for p := range news2.NumParameters {
		if p.String() == name {
			return p
		}
	}
	return news2.NumParameters
}

func words(params []string) []string {
	out := make([]string, len(params))
	for i, name := range params {
		if p := paramOf(name); p < news2.NumParameters {
			out[i] = paramInLine[p]
		} else {
			out[i] = name
		}
	}
	return out
}

func freshFor(ev Evidence, p news2.Parameter) string {
	f := ev.Freshness
	if f == (news2.Freshness{}) {
		f = news2.DefaultFreshness()
	}
	if p >= news2.NumParameters {
		return "its window"
	}
	d := f[p]
	if d%time.Hour == 0 {
		return fmt.Sprintf("%d h", int(d.Hours()))
	}
	return fmt.Sprintf("%d min", int(d.Minutes()))
}
