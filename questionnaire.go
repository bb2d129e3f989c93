package vward

import (
	"fmt"
	"strings"
	"time"
)

// A questionnaire is what a patient or carer reports that no sensor can:
// soft signs of deterioration (RESTORE2), and whether anyone is worried.
// Its definition is versioned: a device names the questionnaire and the
// version it asked, and vward reads the answers against that version, so a
// question's wording or answers can change only by adding a version.

// AnswerType is the kind of answer a question takes.
type AnswerType string

// The answer types.
const (
	// YesNo is answered true or false.
	YesNo AnswerType = "yes_no"
	// Scale is answered with a whole number from the question's Min to Max.
	Scale AnswerType = "scale"
)

// Question is one question of a questionnaire definition.
type Question struct {
	ID   string
	Text string
	Type AnswerType
	// Min and Max bound a Scale answer.
	Min, Max int
	// RedFlagYes: a yes is a red flag. RedFlagAtLeast: a Scale answer at or
	// above it is one (0 for a scale with none).
	RedFlagYes     bool
	RedFlagAtLeast int
}

// RedFlag reports whether value, valid for the question, is a red flag.
func (q Question) RedFlag(value int) bool {
	switch q.Type {
	case YesNo:
		return q.RedFlagYes && value == 1
	case Scale:
		return q.RedFlagAtLeast > 0 && value >= q.RedFlagAtLeast
	}
	return false
}

// QuestionnaireDef is one version of a questionnaire.
type QuestionnaireDef struct {
	ID        string
	Version   int
	Title     string
	Questions []Question
}

// Question returns the question with this id.
func (d *QuestionnaireDef) Question(id string) (Question, bool) {
	for _, q := range d.Questions {
		if q.ID == id {
			return q, true
		}
	}
	return Question{}, false
}

// SoftSigns is the "soft_signs" questionnaire, version 1: RESTORE2's soft
// signs of deterioration (Wessex AHSN / NHS West Hampshire CCG, RESTORE2,
// 2019), and whether the patient or their carer is worried. Every soft sign
// is a red flag when present: RESTORE2 asks for a NEWS2 set and a call when
// one appears. "Worried" is always a red flag: a worried carer or patient
// must be heard, whatever the numbers say.
var SoftSigns = QuestionnaireDef{
	ID: "soft_signs", Version: 1, Title: "Soft signs (RESTORE2)",
	Questions: []Question{
		{ID: "not_eating_drinking", Text: "Not eating or drinking as usual", Type: YesNo, RedFlagYes: true},
		{ID: "new_confusion", Text: "New confusion, or more sleepy than usual", Type: YesNo, RedFlagYes: true},
		{ID: "new_breathlessness", Text: "New or worse breathlessness", Type: YesNo, RedFlagYes: true},
		{ID: "reduced_mobility", Text: "Less mobile than usual, or has fallen", Type: YesNo, RedFlagYes: true},
		{ID: "reduced_urine", Text: "Passing less urine than usual", Type: YesNo, RedFlagYes: true},
		{ID: "new_pain", Text: "New pain", Type: YesNo, RedFlagYes: true},
		// The numeric rating scale's severe band (7–10) is a red flag.
		{ID: "pain_severity", Text: "How bad is the pain, 0 (none) to 10 (worst)", Type: Scale, Min: 0, Max: 10, RedFlagAtLeast: 7},
		{ID: "carer_worried", Text: "The carer is worried, or the patient is \"just not right\"", Type: YesNo, RedFlagYes: true},
		{ID: "patient_worried", Text: "The patient is worried about themselves", Type: YesNo, RedFlagYes: true},
	},
}

// Questionnaires lists every questionnaire version device protocol v1
// accepts.
var Questionnaires = []*QuestionnaireDef{&SoftSigns}

// LookupQuestionnaire returns the definition of a questionnaire version.
func LookupQuestionnaire(id string, version int) (*QuestionnaireDef, bool) {
	for _, d := range Questionnaires {
		if d.ID == id && d.Version == version {
			return d, true
		}
	}
	return nil, false
}

// questionnaireVersions says which versions of id exist, for an error.
func questionnaireVersions(id string) []int {
	var vs []int
	for _, d := range Questionnaires {
		if d.ID == id {
			vs = append(vs, d.Version)
		}
	}
	return vs
}

// UnknownQuestionnaire words why id and version name no questionnaire.
func UnknownQuestionnaire(id string, version int) error {
	if vs := questionnaireVersions(id); len(vs) > 0 {
		return fmt.Errorf("questionnaire %q has no version %d (known: %v)", id, version, vs)
	}
	known := make([]string, len(Questionnaires))
	for i, d := range Questionnaires {
		known[i] = d.ID
	}
	return fmt.Errorf("unknown questionnaire %q (known: %s)", id, strings.Join(known, ", "))
}

// Respondent is who answered a questionnaire.
type Respondent string

// The respondents.
const (
	RespondentPatient Respondent = "patient"
	RespondentCarer   Respondent = "carer"
	RespondentHub     Respondent = "hub" // a hub or app that asked and recorded
)

// Known reports whether r is one of the respondents.
func (r Respondent) Known() bool {
	return r == RespondentPatient || r == RespondentCarer || r == RespondentHub
}

// Answer is one question answered. Value is 1 or 0 for YesNo, the number
// for Scale.
type Answer struct {
	Question string `json:"question"`
	Value    int    `json:"value"`
	RedFlag  bool   `json:"red_flag,omitempty"`
}

// Answered is an answered questionnaire, attributed to the patient the
// device was bound to when it was answered.
type Answered struct {
	Device        DeviceID   `json:"device"`
	Patient       PatientID  `json:"patient"`
	Ward          WardID     `json:"ward"`
	MsgID         string     `json:"msg_id"`
	At            time.Time  `json:"answered_at"`
	Questionnaire string     `json:"questionnaire"`
	Version       int        `json:"version"`
	AnsweredBy    Respondent `json:"answered_by"`
	Answers       []Answer   `json:"answers"`
}

// RedFlags returns the answers that are red flags.
func (a *Answered) RedFlags() []Answer {
	var out []Answer
	for _, x := range a.Answers {
		if x.RedFlag {
			out = append(out, x)
		}
	}
	return out
}
