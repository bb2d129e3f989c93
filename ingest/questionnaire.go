package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"time"

	"github.com/vward/vward"
)

// Rejection codes of a questionnaire message, beside the shared ones
// (too_large, bad_encoding, bad_json, bad_envelope, bad_time, and the
// device's).
const (
	// RejectQuestionnaire: the questionnaire or its version is unknown.
	RejectQuestionnaire = "bad_questionnaire"
	// RejectAnswers: some or all answers were refused.
	RejectAnswers = "bad_answers"
)

// questionnaireLeaf is the topic leaf of an answered questionnaire.
const questionnaireLeaf = "questionnaire"

// QuestionnaireTopicDevice reads the device id from a questionnaire topic.
func QuestionnaireTopicDevice(topic string) (vward.DeviceID, bool) {
	rest, ok := strings.CutPrefix(topic, vward.TopicPrefix)
	if !ok {
		return "", false
	}
	device, leaf, ok := strings.Cut(rest, "/")
	if !ok || device == "" || leaf != questionnaireLeaf {
		return "", false
	}
	return vward.DeviceID(device), true
}

// maxAnswers bounds the answers of one message: a questionnaire has a
// handful of questions, each answered at most once.
const maxAnswers = 100

// wireQuestionnaire is a questionnaire message as it arrives. As with
// readings, unknown top-level fields are ignored and an unknown question is
// refused.
type wireQuestionnaire struct {
	MsgID         string `json:"msg_id"`
	TS            string `json:"ts"`
	Questionnaire *struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	} `json:"questionnaire"`
	AnsweredBy string       `json:"answered_by"`
	Answers    []wireAnswer `json:"answers"`
}

type wireAnswer struct {
	Question string          `json:"question"`
	Value    json.RawMessage `json:"value"`
}

// AnswerProblem names one refused answer by its index in the message.
type AnswerProblem struct {
	Index    int
	Question string
	Reason   string
}

func (p AnswerProblem) String() string {
	if p.Question == "" {
		return fmt.Sprintf("answers[%d]: %s", p.Index, p.Reason)
	}
	return fmt.Sprintf("answers[%d] (%s): %s", p.Index, p.Question, p.Reason)
}

// AnswerProblemsText joins answer problems for a rejection reason.
func AnswerProblemsText(ps []AnswerProblem) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// QuestionnaireMessage is a decoded questionnaire message: the valid
// answers (not yet attributed to a patient), and the refused ones. As with
// readings, a message with some valid answers keeps them: a malformed
// answer must not lose a carer's "worried: yes".
type QuestionnaireMessage struct {
	Answered vward.Answered
	Problems []AnswerProblem
}

// DecodeQuestionnaire parses and validates one questionnaire message from
// device, received at now, against the version of the questionnaire it
// names. It returns a *RejectError when the message as a whole is refused,
// including when none of its answers is valid.
func DecodeQuestionnaire(device vward.DeviceID, payload []byte, now time.Time, lim Limits) (QuestionnaireMessage, error) {
	var m QuestionnaireMessage
	if len(payload) > lim.MaxPayload {
		return m, reject(RejectTooLarge, "payload is %d bytes; the limit is %d", len(payload), lim.MaxPayload)
	}
	if !utf8.Valid(payload) {
		return m, reject(RejectEncoding, "payload is not valid UTF-8")
	}
	var w wireQuestionnaire
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&w); err != nil {
		return m, reject(RejectJSON, "%s", describeJSONError(err))
	}
	if dec.More() {
		return m, reject(RejectJSON, "unexpected data after the JSON object")
	}
	if path, ok := duplicateKey(payload); ok {
		return m, reject(RejectJSON, "key %s appears more than once", path)
	}
	m.Answered.MsgID = w.MsgID
	if err := checkQuestionnaireEnvelope(&w); err != nil {
		return m, reject(RejectEnvelope, "%v", err)
	}
	at, err := checkTime(w.TS, now, lim)
	if err != nil {
		return m, reject(RejectTime, "ts: %v", err)
	}
	def, ok := vward.LookupQuestionnaire(w.Questionnaire.ID, w.Questionnaire.Version)
	if !ok {
		return m, reject(RejectQuestionnaire, "questionnaire: %v", vward.UnknownQuestionnaire(w.Questionnaire.ID, w.Questionnaire.Version))
	}
	m.Answered = vward.Answered{
		Device: device, MsgID: w.MsgID, At: at, Questionnaire: def.ID, Version: def.Version,
		AnsweredBy: vward.Respondent(w.AnsweredBy), Answers: make([]vward.Answer, 0, len(w.Answers)),
	}
	seen := make(map[string]bool, len(w.Answers))
	for i, wa := range w.Answers {
		a, err := decodeAnswer(def, wa, seen)
		if err != nil {
			m.Problems = append(m.Problems, AnswerProblem{Index: i, Question: wa.Question, Reason: err.Error()})
			continue
		}
		m.Answered.Answers = append(m.Answered.Answers, a)
	}
	if len(m.Answered.Answers) == 0 {
		return m, reject(RejectAnswers, "no valid answer: %s", AnswerProblemsText(m.Problems))
	}
	return m, nil
}

// checkQuestionnaireEnvelope names every missing or malformed top-level
// field.
func checkQuestionnaireEnvelope(w *wireQuestionnaire) error {
	var parts []string
	switch {
	case w.MsgID == "":
		parts = append(parts, "msg_id is required")
	case !validMsgID(w.MsgID):
		parts = append(parts, fmt.Sprintf("msg_id must be 1–%d printable ASCII characters", maxMsgID))
	}
	if w.TS == "" {
		parts = append(parts, "ts is required")
	}
	switch q := w.Questionnaire; {
	case q == nil:
		parts = append(parts, "questionnaire is required")
	case q.ID == "":
		parts = append(parts, "questionnaire.id is required")
	case q.Version < 1:
		parts = append(parts, "questionnaire.version is required, a whole number from 1")
	}
	switch r := vward.Respondent(w.AnsweredBy); {
	case r == "":
		parts = append(parts, "answered_by is required")
	case !r.Known():
		parts = append(parts, fmt.Sprintf("answered_by %q is not patient, carer or hub", clipString(w.AnsweredBy)))
	}
	switch {
	case w.Answers == nil:
		parts = append(parts, "answers is required")
	case len(w.Answers) == 0:
		parts = append(parts, "answers must not be empty")
	case len(w.Answers) > maxAnswers:
		parts = append(parts, fmt.Sprintf("answers has %d entries; the limit is %d", len(w.Answers), maxAnswers))
	}
	if len(parts) > 0 {
		return errors.New(strings.Join(parts, "; "))
	}
	return nil
}

// decodeAnswer checks one answer against its question; seen holds the
// questions answered before it in the message, each at most once.
func decodeAnswer(def *vward.QuestionnaireDef, wa wireAnswer, seen map[string]bool) (vward.Answer, error) {
	if wa.Question == "" {
		return vward.Answer{}, errors.New("question is missing")
	}
	q, ok := def.Question(wa.Question)
	if !ok {
		return vward.Answer{}, fmt.Errorf("unknown question %q in %s version %d", clipString(wa.Question), def.ID, def.Version)
	}
	if seen[q.ID] {
		return vward.Answer{}, errors.New("answered more than once")
	}
	if len(wa.Value) == 0 || string(wa.Value) == "null" {
		return vward.Answer{}, errors.New("value is missing")
	}
	var v int
	switch q.Type {
	case vward.YesNo:
		var b bool
		if err := json.Unmarshal(wa.Value, &b); err != nil {
			return vward.Answer{}, fmt.Errorf("value %s is not true or false (a yes/no question)", clip(wa.Value))
		}
		if b {
			v = 1
		}
	case vward.Scale:
		var f float64
		if err := json.Unmarshal(wa.Value, &f); err != nil || f != math.Trunc(f) {
			return vward.Answer{}, fmt.Errorf("value %s is not a whole number (a scale of %d–%d)", clip(wa.Value), q.Min, q.Max)
		}
		if f < float64(q.Min) || f > float64(q.Max) {
			return vward.Answer{}, fmt.Errorf("value %g is outside the scale %d–%d", f, q.Min, q.Max)
		}
		v = int(f)
	default:
		return vward.Answer{}, fmt.Errorf("question of unknown type %q", q.Type)
	}
	seen[q.ID] = true
	return vward.Answer{Question: q.ID, Value: v, RedFlag: q.RedFlag(v)}, nil
}

// decodeQuestionnaire reads an answered questionnaire and attributes it to
// the patient its device was bound to when it was answered. A refused one
// is dead-lettered and its device told, exactly as a refused reading
// message; one with some refused answers keeps the rest.
func (p *Pipeline) decodeQuestionnaire(device vward.DeviceID, d Delivery, item pending, now time.Time) pending {
	p.metrics.Received.WithLabelValues(questionnaireLeaf).Inc()
	if d.Redelivered {
		p.metrics.Redelivered.Inc()
	}
	m, err := DecodeQuestionnaire(device, d.Payload, now, p.cfg.Limits)
	rej := func(code, reason string) *Rejection {
		return &Rejection{Device: device, Topic: d.Topic, MsgID: m.Answered.MsgID, Code: code, Reason: reason, Payload: d.Payload, Received: now}
	}
	if err != nil {
		code, reason := RejectJSON, err.Error()
		var re *RejectError
		if errors.As(err, &re) {
			code, reason = re.Code, re.Detail
		}
		item.rejection = rej(code, reason)
		return item
	}
	q := m.Answered
	patient, ward, err := p.registry.PatientAt(device, q.At)
	switch {
	case errors.Is(err, vward.ErrNotFound):
		item.rejection = rej(RejectDevice, fmt.Sprintf("device %s is not registered", device))
		return item
	case err != nil:
		item.rejection = rej(RejectUnassigned, fmt.Sprintf("device %s was not bound to a patient when the questionnaire was answered at %s", device, q.At.Format(time.RFC3339)))
		return item
	}
	q.Patient, q.Ward = patient, ward
	item.answered = &q
	if len(m.Problems) > 0 {
		item.rejection = rej(RejectAnswers, AnswerProblemsText(m.Problems))
	}
	return item
}

// observeQuestionnaireOnce passes an answered questionnaire to the
// observer unless the same message was seen recently.
func (p *Pipeline) observeQuestionnaireOnce(d Delivery, q *vward.Answered) {
	// Its own namespace of ids: a device's readings and questionnaires may
	// number their messages alike.
	switch p.recent.check(q.Device, questionnaireLeaf+"/"+q.MsgID, d.Payload) {
	case duplicate:
		p.metrics.Duplicates.Inc()
		return
	case reused:
		p.log.Warn("msg_id reused with a different questionnaire; assessing it as a new message", "device", q.Device, "msg_id", q.MsgID)
	}
	p.asked.ObserveQuestionnaire(*q)
}
