package fhir

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
)

// Reading is a stored reading and, for one people entered, its entry:
// who entered it, from what source, and whether it was marked in error.
type Reading struct {
	vward.Reading
	Entry *observations.Entry // nil for a device's reading
}

// lastUpdated is when vward last changed what it knows of the reading.
// vward keeps no time a device's reading was received, so a device's
// reading was last updated when it was measured; an entered one when it
// was entered, or marked entered in error.
func (r Reading) lastUpdated() time.Time {
	if r.Entry == nil {
		return r.At
	}
	if r.Entry.Error != nil && r.Entry.Error.At.After(r.Entry.EnteredAt) {
		return r.Entry.Error.At
	}
	return r.Entry.EnteredAt
}

func (r Reading) inError() bool { return r.Entry != nil && r.Entry.Error != nil }

// observationID is the id of the Observation a reading is written in. The
// two halves of a blood pressure share one: they are one panel.
func observationID(r vward.Reading) string {
	kind := string(r.Kind)
	if r.Kind == vward.SystolicBP || r.Kind == vward.DiastolicBP {
		kind = "bp"
	}
	return patientHashID("vs-", r.Patient, string(r.Device), r.MsgID, kind, strconv.FormatInt(r.At.UnixNano(), 10))
}

func quantity(v float64, u Unit) *Quantity {
	return &Quantity{Value: json.Number(strconv.FormatFloat(v, 'f', -1, 64)), Unit: u.Display, System: UCUM, Code: u.Code}
}

// vital is how one numeric kind is written.
type vital struct {
	codes []Code
	unit  Unit
	// category, when not the zero Code, is the kind's category instead
	// of vital signs, and the Observation claims no vital-signs profile.
	category Code
	profile  string // a profile beside the vital-signs one
}

var vitals = map[vward.ReadingKind]vital{
	vward.RespiratoryRate: {codes: []Code{codeRespiratoryRate}, unit: unitPerMin},
	vward.HeartRate:       {codes: []Code{codeHeartRate}, unit: unitBPM},
	vward.SpO2:            {codes: []Code{codeSpO2, codeSpO2Arterial}, unit: unitPercent},
	vward.Temperature:     {codes: []Code{codeTemperature}, unit: unitCel},
	vward.Weight:          {codes: []Code{codeBodyWeight}, unit: unitKg, profile: BodyWeightProfile},
	// A meter's capillary glucose is point-of-care testing, which FHIR
	// files under laboratory; a peak flow is a simple instrument's
	// reading (exam); a pain score is the patient's own report (survey).
	vward.BloodGlucose: {codes: []Code{codeBloodGlucose}, unit: unitMmolL, category: codeLaboratory},
	vward.PeakFlow:     {codes: []Code{codePeakFlow}, unit: unitLPerMin, category: codeExam},
	vward.PainScore:    {codes: []Code{codePainScore}, unit: unitScore, category: codeSurvey},
}

func concept(cs ...Code) CodeableConcept {
	out := CodeableConcept{Text: cs[0].Display}
	for _, c := range cs {
		out.Coding = append(out.Coding, c.coding())
	}
	return out
}

// Observations writes a patient's readings, oldest first, one Observation
// each, but a systolic and a diastolic of the same device message, which
// are one blood pressure panel.
func Observations(rs []Reading) []Observation {
	type bpKey struct {
		dev vward.DeviceID
		msg string
		at  int64
	}
	panels := map[bpKey]int{}
	var out []Observation
	for _, r := range rs {
		if r.Kind == vward.SystolicBP || r.Kind == vward.DiastolicBP {
			k := bpKey{r.Device, r.MsgID, r.At.UnixNano()}
			i, ok := panels[k]
			if !ok {
				i = len(out)
				panels[k] = i
				o := base(r, concept(codeBPPanel))
				o.Meta.Profile = []string{VitalSignsProfile, BPProfile}
				o.Component = []Component{
					{Code: concept(codeSystolic), DataAbsentReason: ptr(codeUnknown.concept())},
					{Code: concept(codeDiastolic), DataAbsentReason: ptr(codeUnknown.concept())},
				}
				out = append(out, o)
			}
			c := &out[i].Component[0]
			if r.Kind == vward.DiastolicBP {
				c = &out[i].Component[1]
			}
			c.ValueQuantity, c.DataAbsentReason = quantity(r.Value, unitMmHg), nil
			continue
		}
		if v, ok := vitals[r.Kind]; ok {
			o := base(r, concept(v.codes...))
			o.ValueQuantity = quantity(r.Value, v.unit)
			if v.category != (Code{}) {
				o.Meta.Profile, o.Category = nil, []CodeableConcept{v.category.concept()}
			} else if v.profile != "" {
				o.Meta.Profile = append(o.Meta.Profile, v.profile)
			}
			out = append(out, o)
			continue
		}
		switch r.Kind {
		case vward.SupplementalOxygen:
			c := codeRoomAir
			if r.Bool() {
				c = codeOnOxygen
			}
			// A finding in code, no value: the CareConnect profile's way,
			// so not the vital-signs profile, which wants a value.
			o := base(r, concept(c))
			o.Meta.Profile = nil
			out = append(out, o)
		case vward.FallEvent:
			// A fall is an event observed, true whenever it is written.
			o := base(r, concept(codeFall))
			o.Meta.Profile, o.Category = nil, []CodeableConcept{codeExam.concept()}
			o.ValueBoolean = ptr(true)
			out = append(out, o)
		case vward.Consciousness:
			o := base(r, concept(codeACVPU))
			o.Meta.Profile = nil
			if l := r.Level(); l >= 0 && int(l) < len(acvpu) {
				o.ValueCodeableConcept = ptr(concept(acvpu[l]))
			} else {
				o.DataAbsentReason = ptr(codeUnknown.concept())
			}
			out = append(out, o)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// base is what every reading's Observation has: who, when, from what.
func base(r Reading, code CodeableConcept) Observation {
	updated := r.lastUpdated()
	o := Observation{ResourceType: "Observation", ID: observationID(r.Reading), Status: "final",
		Meta:              &Meta{LastUpdated: DateTime(updated), Profile: []string{VitalSignsProfile}},
		updated:           updated,
		Category:          []CodeableConcept{codeVitalSigns.concept()},
		Code:              code,
		Subject:           Reference{Reference: "Patient/" + ID(string(r.Patient))},
		EffectiveDateTime: DateTime(r.At), at: r.At}
	if r.MsgID != "" {
		o.Identifier = []Identifier{{System: ReadingIDSystem, Value: r.MsgID}}
	}
	switch {
	case r.Entry != nil:
		o.Performer = []Reference{{Display: r.Entry.Author}}
		o.Extension = []Extension{{URL: ExtSource, ValueCode: string(r.Entry.Source)}}
		if r.Entry.Error != nil {
			o.Status = "entered-in-error"
			o.Note = []Annotation{{Text: "Marked entered in error by " + r.Entry.Error.By + ": " + r.Entry.Error.Reason}}
		}
	case observations.Entered(r.Reading):
		// An entered reading whose entry is not known here still says
		// its source, which its device id carries.
		o.Extension = []Extension{{URL: ExtSource, ValueCode: strings.TrimPrefix(string(r.Device), observations.DevicePrefix)}}
	default:
		o.Device = &Reference{Reference: "Device/" + ID(string(r.Device)), Display: string(r.Device)}
	}
	return o
}

// Scores writes a patient's NEWS2 over [from, to] as the board's chart
// scores it (alerting.ScoreSeries): one Observation each time the score
// changed, derivedFrom the readings' Observations it was scored from.
// Readings marked entered in error do not count. A partial set is written
// "preliminary", never "final": its value is the least the full score
// could be, and each missing parameter is a component with a
// dataAbsentReason (docs/fhir.md, "A partial NEWS2").
func Scores(rs []Reading, patient vward.PatientID, scale news2.Scale, f news2.Freshness, from, to time.Time) []Observation {
	counted := make([]vward.Reading, 0, len(rs))
	for _, r := range rs {
		if !r.inError() {
			counted = append(counted, r.Reading)
		}
	}
	slices.SortStableFunc(counted, func(a, b vward.Reading) int { return a.At.Compare(b.At) })
	var out []Observation
	used := func(p news2.Parameter, t time.Time) (vward.Reading, bool) { return usedReading(counted, p, t) }
	for _, pt := range alerting.ScoreSeries(counted, scale, f, from, to) {
		if !pt.Scored {
			continue
		}
		out = append(out, scoreOf(pt, used, patient, scale))
	}
	return out
}

// ObservationStream writes a patient's readings and NEWS2 scores as
// Observations a part of time at a time, as Observations and Scores do
// over the whole: a wearable's months are never held at once.
type ObservationStream struct {
	patient  vward.PatientID
	scale    news2.Scale
	from, to time.Time
	scorer   *alerting.SeriesScorer
	// carried is each parameter's latest counted reading of the parts
	// before, which a score may still have been scored from.
	carried [news2.NumParameters]*vward.Reading
}

// NewObservationStream writes the Observations effective in [from, to).
// Its parts begin a freshness window (the longest of f) before from, so
// that the score at from is of the values current then.
func NewObservationStream(patient vward.PatientID, scale news2.Scale, f news2.Freshness, from, to time.Time) *ObservationStream {
	return &ObservationStream{patient: patient, scale: scale, from: from, to: to,
		scorer: alerting.NewSeriesScorer(scale, f, from, to.Add(-time.Nanosecond))}
}

// Add takes every reading measured in the next part of time, up to end,
// oldest first, and returns the Observations effective in [from, end)
// not returned before, ordered as SortByTime orders them.
func (w *ObservationStream) Add(rs []Reading, end time.Time) []Observation {
	var out []Observation
	for _, o := range Observations(rs) {
		if !o.at.Before(w.from) && o.at.Before(w.to) {
			out = append(out, o)
		}
	}
	var byParam [news2.NumParameters][]vward.Reading
	counted := make([]vward.Reading, 0, len(rs))
	for _, r := range rs {
		if r.inError() {
			continue
		}
		counted = append(counted, r.Reading)
	}
	slices.SortStableFunc(counted, func(a, b vward.Reading) int { return a.At.Compare(b.At) })
	for _, r := range counted {
		if p, ok := news2.ParameterOf(r.Kind); ok {
			byParam[p] = append(byParam[p], r)
		}
	}
	used := func(p news2.Parameter, t time.Time) (vward.Reading, bool) {
		rs := byParam[p]
		// The latest at or before t: of this part, or carried from before.
		i, _ := slices.BinarySearchFunc(rs, t, func(r vward.Reading, t time.Time) int {
			if r.At.After(t) {
				return 1
			}
			return -1
		})
		if i > 0 {
			return rs[i-1], true
		}
		if c := w.carried[p]; c != nil && !c.At.After(t) {
			return *c, true
		}
		return vward.Reading{}, false
	}
	w.scorer.Add(counted)
	w.scorer.ScoreUntil(end)
	for _, pt := range w.scorer.Take() {
		if pt.Scored {
			out = append(out, scoreOf(pt, used, w.patient, w.scale))
		}
	}
	for p, rs := range byParam {
		if len(rs) > 0 {
			w.carried[p] = &rs[len(rs)-1]
		}
	}
	SortByTime(out)
	return out
}

func scoreOf(pt alerting.ScorePoint, used func(news2.Parameter, time.Time) (vward.Reading, bool), patient vward.PatientID, scale news2.Scale) Observation {
	res := pt.Result
	score := res.Score
	o := Observation{ResourceType: "Observation", Status: "final",
		ID:                patientHashID("news2-", patient, strconv.FormatInt(pt.At.UnixNano(), 10)),
		Category:          []CodeableConcept{codeSurvey.concept()},
		Code:              concept(codeNEWS2),
		Subject:           Reference{Reference: "Patient/" + ID(string(patient))},
		EffectiveDateTime: DateTime(pt.At), at: pt.At,
		// A score is not stored: it is scored afresh from the readings
		// on every answer, as of its own time.
		Meta:           &Meta{LastUpdated: DateTime(pt.At)},
		updated:        pt.At,
		ValueInteger:   &score,
		Interpretation: []CodeableConcept{{Text: res.Risk.String() + " clinical risk"}},
		Extension: []Extension{
			{URL: ExtPartial, ValueBoolean: ptr(!res.Complete)},
			{URL: ExtSpO2Scale, ValueInteger: ptr(int(scale))},
		}}
	var missing []string
	for p := range news2.NumParameters {
		c := Component{Code: concept(news2Parameters[p])}
		if res.Has(p) {
			c.ValueInteger = ptr(res.Subscores[p])
			if r, ok := used(p, pt.At); ok {
				ref := Reference{Reference: "Observation/" + observationID(r)}
				if !slices.Contains(o.DerivedFrom, ref) {
					o.DerivedFrom = append(o.DerivedFrom, ref)
				}
			}
		} else {
			c.DataAbsentReason = ptr(codeUnknown.concept())
			missing = append(missing, p.String())
		}
		o.Component = append(o.Component, c)
	}
	if !res.Complete {
		o.Status = "preliminary"
		o.Note = []Annotation{{Text: fmt.Sprintf("Partial NEWS2, not a NEWS2: %s not current. %d is the least the full score could be.",
			strings.Join(missing, ", "), score)}}
	}
	return o
}

// usedReading is the reading of p a score at t was scored from: the
// latest measured at or before t, as news2.Set keeps it.
func usedReading(rs []vward.Reading, p news2.Parameter, t time.Time) (vward.Reading, bool) {
	var best vward.Reading
	found := false
	for _, r := range rs {
		if r.Kind != p.Kind() || r.At.After(t) {
			continue
		}
		if !found || !r.At.Before(best.At) {
			best, found = r, true
		}
	}
	return best, found
}

// SortByTime orders Observations by effective time, then id, so that
// pages of a search are stable.
func SortByTime(os []Observation) {
	slices.SortStableFunc(os, func(a, b Observation) int {
		return cmp.Or(a.at.Compare(b.at), strings.Compare(a.ID, b.ID))
	})
}
