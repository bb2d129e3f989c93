package alerting

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// Concern holds while the patient's latest answered questionnaire has a
// red-flag answer (a soft sign, or the patient or carer worried). It is
// raised beside NEWS2, never instead of it, and changes nothing of NEWS2.
const Concern Condition = "concern"

// ConcernRisk is the risk of a concern alert. RESTORE2 answers a soft sign
// with a NEWS2 set and a call to the clinician; a worried patient or carer
// must be heard within the hour, as NEWS2's medium band's urgent response
// is, whatever the last set scored.
const ConcernRisk = news2.Medium

// ObserveQuestionnaire assesses the concern condition on an answered
// questionnaire (ingest calls it for each one, as it arrives).
func (m *Monitor) ObserveQuestionnaire(q vward.Answered) {
	if m.engine != nil {
		m.engine.AssessConcern(q)
	}
}

// AssessConcern raises a concern alert for a questionnaire with a red
// flag, and clears an open one when a later questionnaire has none. A
// questionnaire no newer than the evidence of the alert (or of the last
// resolved one) changes nothing, so a redelivery or a backfilled old
// questionnaire never raises again or clears a newer concern. A paused
// patient's concern is not raised, as nothing is for them.
func (e *Engine) AssessConcern(q vward.Answered) {
	e.Stats.Assessed.Add(1)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	ward := q.Ward
	if w := e.patients[q.Patient]; w != nil && ward == "" {
		ward = w.ward
	}
	p := e.cfg.PolicyFor(ward)
	k := Key{Patient: q.Patient, Condition: Concern}
	flags := q.RedFlags()
	evidence := concernEvidence(q, flags)
	o := Observation{Met: len(flags) > 0, Risk: ConcernRisk, Complete: true, At: q.At, Reason: concernReason(q, flags)}
	a := e.open[k]
	switch {
	case a != nil && !q.At.After(a.EvidenceAt):
		return
	case a != nil:
		if o.Met && e.pausedLocked(q.Patient) {
			return
		}
		if e.concerns == nil {
			e.concerns = make(map[vward.PatientID]json.RawMessage)
		}
		e.concerns[q.Patient] = evidence
		e.stepLocked(a, now, func() json.RawMessage { return evidence }, func(a Alert) (Alert, Effect) {
			if o.Met && a.Active {
				// A newer red flag while the alert is open: the same
				// concern, told again. It keeps the newest evidence.
				a.EvidenceAt = o.At
			}
			return a.Assess(o, p, now)
		})
	case o.Met && !e.pausedLocked(q.Patient) && q.At.After(e.watermarks[k]):
		if e.concerns == nil {
			e.concerns = make(map[vward.PatientID]json.RawMessage)
		}
		e.concerns[q.Patient] = evidence
		e.raiseLocked(k, ward, o, p, now, func() json.RawMessage { return evidence })
	}
}

// concernReason says which answers are red flags, in the questionnaire's
// words, and who gave them.
func concernReason(q vward.Answered, flags []vward.Answer) string {
	def, _ := vward.LookupQuestionnaire(q.Questionnaire, q.Version)
	if len(flags) == 0 {
		return fmt.Sprintf("%s v%d answered by the %s at %s with no red flag", q.Questionnaire, q.Version, q.AnsweredBy, q.At.UTC().Format(time.RFC3339))
	}
	words := make([]string, len(flags))
	for i, f := range flags {
		words[i] = f.Question
		if def != nil {
			if qu, ok := def.Question(f.Question); ok {
				words[i] = qu.Text
				if qu.Type == vward.Scale {
					words[i] += fmt.Sprintf(" (%d)", f.Value)
				}
			}
		}
	}
	return fmt.Sprintf("red flags answered by the %s: %s", q.AnsweredBy, strings.Join(words, "; "))
}

// concernEvidence is the questionnaire behind a concern alert's change,
// with its red-flag answers.
func concernEvidence(q vward.Answered, flags []vward.Answer) json.RawMessage {
	if flags == nil {
		flags = []vward.Answer{}
	}
	b, _ := json.Marshal(struct {
		Questionnaire string           `json:"questionnaire"`
		Version       int              `json:"version"`
		MsgID         string           `json:"msg_id"`
		Device        vward.DeviceID   `json:"device"`
		AnsweredBy    vward.Respondent `json:"answered_by"`
		AnsweredAt    time.Time        `json:"answered_at"`
		RedFlags      []vward.Answer   `json:"red_flags"`
		Answers       []vward.Answer   `json:"answers"`
	}{q.Questionnaire, q.Version, q.MsgID, q.Device, q.AnsweredBy, q.At, flags, q.Answers})
	return b
}
