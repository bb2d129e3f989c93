package ingest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices/devicestest"
)

func TestDecodeQuestionnaire(t *testing.T) {
	payload := `{"msg_id":"hub-7-q1","ts":"2026-11-23T10:15:00Z","questionnaire":{"id":"soft_signs","version":1},
		"answered_by":"carer","app":"ignored","answers":[
		{"question":"carer_worried","value":true},
		{"question":"not_eating_drinking","value":false},
		{"question":"pain_severity","value":7},
		{"question":"new_pain","value":true}]}`
	m, err := DecodeQuestionnaire(dev, []byte(payload), now, DefaultLimits())
	if err != nil {
		t.Fatalf("DecodeQuestionnaire: %v", err)
	}
	want := vward.Answered{
		Device: dev, MsgID: "hub-7-q1", At: time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC),
		Questionnaire: "soft_signs", Version: 1, AnsweredBy: vward.RespondentCarer,
		Answers: []vward.Answer{
			{Question: "carer_worried", Value: 1, RedFlag: true},
			{Question: "not_eating_drinking", Value: 0},
			{Question: "pain_severity", Value: 7, RedFlag: true},
			{Question: "new_pain", Value: 1, RedFlag: true},
		},
	}
	if !reflect.DeepEqual(m.Answered, want) || len(m.Problems) != 0 {
		t.Fatalf("decoded %+v, problems %v\nwant %+v", m.Answered, m.Problems, want)
	}
}

// Every "worried" question is a red flag when answered yes, in every
// version: a worried patient or carer is always heard.
func TestWorriedIsAlwaysARedFlag(t *testing.T) {
	n := 0
	for _, d := range vward.Questionnaires {
		for _, q := range d.Questions {
			if strings.Contains(q.ID, "worried") {
				n++
				if q.Type != vward.YesNo || !q.RedFlag(1) {
					t.Errorf("%s v%d %s: a yes is not a red flag", d.ID, d.Version, q.ID)
				}
			}
		}
	}
	if n < 2 {
		t.Fatalf("found %d worried questions, want the patient's and the carer's", n)
	}
}

func TestDecodeQuestionnaireRefuses(t *testing.T) {
	const ok = `"msg_id":"q1","ts":"2026-11-23T10:15:00Z","questionnaire":{"id":"soft_signs","version":1},"answered_by":"patient"`
	for _, tc := range []struct {
		name, payload, code, reason string
	}{
		{"not json", `{"msg_id":`, RejectJSON, "truncated"},
		{"questionnaire a string", `{"msg_id":"q1","ts":"2026-11-23T10:15:00Z","questionnaire":"soft_signs","answered_by":"patient","answers":[{"question":"new_pain","value":true}]}`, RejectJSON, "field questionnaire"},
		{"key twice", `{` + ok + `,"answers":[{"question":"new_pain","value":true,"value":false}]}`, RejectJSON, "answers[0].value appears more than once"},
		{"no msg_id", `{"ts":"2026-11-23T10:15:00Z","questionnaire":{"id":"soft_signs","version":1},"answered_by":"patient","answers":[{"question":"new_pain","value":true}]}`, RejectEnvelope, "msg_id is required"},
		{"no questionnaire", `{"msg_id":"q1","ts":"2026-11-23T10:15:00Z","answered_by":"patient","answers":[{"question":"new_pain","value":true}]}`, RejectEnvelope, "questionnaire is required"},
		{"no version", `{"msg_id":"q1","ts":"2026-11-23T10:15:00Z","questionnaire":{"id":"soft_signs"},"answered_by":"patient","answers":[{"question":"new_pain","value":true}]}`, RejectEnvelope, "questionnaire.version is required"},
		{"who answered unknown", `{"msg_id":"q1","ts":"2026-11-23T10:15:00Z","questionnaire":{"id":"soft_signs","version":1},"answered_by":"doctor","answers":[{"question":"new_pain","value":true}]}`, RejectEnvelope, `answered_by "doctor" is not patient, carer or hub`},
		{"no answers", `{` + ok + `}`, RejectEnvelope, "answers is required"},
		{"empty answers", `{` + ok + `,"answers":[]}`, RejectEnvelope, "answers must not be empty"},
		{"future", `{"msg_id":"q1","ts":"2026-11-23T11:15:00Z","questionnaire":{"id":"soft_signs","version":1},"answered_by":"patient","answers":[{"question":"new_pain","value":true}]}`, RejectTime, "in the future"},
		{"unknown questionnaire", `{"msg_id":"q1","ts":"2026-11-23T10:15:00Z","questionnaire":{"id":"phq9","version":1},"answered_by":"patient","answers":[{"question":"new_pain","value":true}]}`, RejectQuestionnaire, `unknown questionnaire "phq9" (known: soft_signs)`},
		{"unknown version", `{"msg_id":"q1","ts":"2026-11-23T10:15:00Z","questionnaire":{"id":"soft_signs","version":2},"answered_by":"patient","answers":[{"question":"new_pain","value":true}]}`, RejectQuestionnaire, `questionnaire "soft_signs" has no version 2 (known: [1])`},
		{"unknown question", `{` + ok + `,"answers":[{"question":"feels_blue","value":true}]}`, RejectAnswers, `answers[0] (feels_blue): unknown question "feels_blue" in soft_signs version 1`},
		{"yes/no as a string", `{` + ok + `,"answers":[{"question":"new_pain","value":"yes"}]}`, RejectAnswers, `answers[0] (new_pain): value "yes" is not true or false`},
		{"scale as a bool", `{` + ok + `,"answers":[{"question":"pain_severity","value":true}]}`, RejectAnswers, "answers[0] (pain_severity): value true is not a whole number (a scale of 0–10)"},
		{"scale not whole", `{` + ok + `,"answers":[{"question":"pain_severity","value":6.5}]}`, RejectAnswers, "value 6.5 is not a whole number"},
		{"scale out of range", `{` + ok + `,"answers":[{"question":"pain_severity","value":11}]}`, RejectAnswers, "value 11 is outside the scale 0–10"},
		{"no value", `{` + ok + `,"answers":[{"question":"new_pain"}]}`, RejectAnswers, "answers[0] (new_pain): value is missing"},
		{"no question", `{` + ok + `,"answers":[{"value":true}]}`, RejectAnswers, "answers[0]: question is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeQuestionnaire(dev, []byte(tc.payload), now, DefaultLimits())
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RejectError", err)
			}
			if re.Code != tc.code || !strings.Contains(re.Detail, tc.reason) {
				t.Fatalf("refused %s: %s\nwant %s containing %q", re.Code, re.Detail, tc.code, tc.reason)
			}
		})
	}
}

// A questionnaire with some valid answers keeps them, and names each
// refused one: a malformed answer must not lose a worried carer.
func TestDecodeQuestionnaireKeepsValidAnswers(t *testing.T) {
	payload := `{"msg_id":"q1","ts":"2026-11-23T10:15:00Z","questionnaire":{"id":"soft_signs","version":1},"answered_by":"carer","answers":[
		{"question":"new_pain","value":"a bit"},
		{"question":"carer_worried","value":true},
		{"question":"carer_worried","value":false}]}`
	m, err := DecodeQuestionnaire(dev, []byte(payload), now, DefaultLimits())
	if err != nil {
		t.Fatalf("DecodeQuestionnaire: %v", err)
	}
	if got := m.Answered.RedFlags(); len(got) != 1 || got[0].Question != "carer_worried" {
		t.Fatalf("red flags = %+v", got)
	}
	want := `answers[0] (new_pain): value "a bit" is not true or false (a yes/no question); answers[2] (carer_worried): answered more than once`
	if got := AnswerProblemsText(m.Problems); got != want {
		t.Fatalf("problems = %s\nwant %s", got, want)
	}
}

func TestQuestionnaireTopicDevice(t *testing.T) {
	if d, ok := QuestionnaireTopicDevice(vward.QuestionnaireTopic("hub-7")); !ok || d != "hub-7" {
		t.Fatalf("QuestionnaireTopicDevice = %q, %v", d, ok)
	}
	for _, topic := range []string{vward.ReadingsTopic("hub-7"), "vward/v1/devices//questionnaire", "vward/v1/devices/hub-7/questionnaire/x"} {
		if _, ok := QuestionnaireTopicDevice(topic); ok {
			t.Errorf("%s read as a questionnaire topic", topic)
		}
	}
}

// answerList keeps questionnaires in memory, and fails while failing is set.
type answerList struct {
	mu      sync.Mutex
	failing atomic.Bool
	qs      []vward.Answered
}

func (a *answerList) Keep(_ context.Context, qs []vward.Answered) error {
	if a.failing.Load() {
		return errors.New("sqlite is locked")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.qs = append(a.qs, qs...)
	return nil
}

func (a *answerList) list() []vward.Answered {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.qs)
}

func (o *observed) ObserveQuestionnaire(q vward.Answered) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, q)
}

func (o *observed) questionnaires() []vward.Answered {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.asked)
}

func questionnaire(msgID string, at time.Time, answers string) string {
	return fmt.Sprintf(`{"msg_id":%q,"ts":%q,"questionnaire":{"id":"soft_signs","version":1},"answered_by":"carer","answers":[%s]}`,
		msgID, at.Format(time.RFC3339Nano), answers)
}

// A questionnaire is attributed to its patient, observed at once (once,
// however often it is delivered), and acknowledged only once it is kept;
// a refused one is dead-lettered like a refused reading message.
func TestPipelineQuestionnaire(t *testing.T) {
	bound1, bound2 := now.Add(-2*time.Hour), now.Add(-time.Hour)
	r := newRig(t, Config{}, registry(t, bound1, bound2))
	r.answers.failing.Store(true)
	r.run(t)
	ctx := context.Background()
	submit := func(device vward.DeviceID, id, payload string) {
		t.Helper()
		if err := r.p.Submit(ctx, Delivery{Topic: vward.QuestionnaireTopic(device), Payload: []byte(payload), Ack: r.acks.ack(id)}); err != nil {
			t.Fatal(err)
		}
	}
	worried := questionnaire("q1", now, `{"question":"carer_worried","value":true},{"question":"new_pain","value":"yes"}`)
	submit("ox-1", "q1", worried)
	submit("ox-1", "q1-again", worried)
	waitFor(t, "the questionnaire observed", func() bool { return len(r.obs.questionnaires()) == 1 })
	time.Sleep(20 * time.Millisecond)
	if got := r.acks.list(); len(got) != 0 {
		t.Fatalf("acknowledged %v before the questionnaire was kept", got)
	}
	r.answers.failing.Store(false)
	submit("ox-idle", "unassigned", questionnaire("q2", now, `{"question":"carer_worried","value":true}`))
	submit("ox-1", "unknown-version", strings.Replace(worried, `"version":1`, `"version":3`, 1))
	waitFor(t, "every message acknowledged", func() bool { return len(r.acks.list()) == 4 })

	q := r.obs.questionnaires()[0]
	if q.Patient != "p2" || q.Device != "ox-1" || len(q.Answers) != 1 || !q.Answers[0].RedFlag {
		t.Fatalf("observed %+v", q)
	}
	if kept := r.answers.list(); len(kept) != 2 || kept[0].Patient != "p2" || kept[1].MsgID != "q1" {
		t.Fatalf("kept %+v, want q1 for p2 twice (the store keeps it once)", kept)
	}
	var codes []string
	for _, rej := range r.dead.list() {
		codes = append(codes, rej.MsgID+" "+rej.Code)
	}
	slices.Sort(codes) // two writers: batches may keep their dead letters in any order
	want := []string{"q1 bad_answers", "q1 bad_answers", "q1 bad_questionnaire", "q2 unassigned_device"}
	if !slices.Equal(codes, want) {
		t.Fatalf("dead letters %v, want %v", codes, want)
	}
}

// Without a place to keep questionnaires, the topic is refused rather
// than acknowledged and lost.
func TestPipelineWithoutAnswersRefusesQuestionnaires(t *testing.T) {
	r := newRig(t, Config{}, registry(t, now.Add(-2*time.Hour), now.Add(-time.Hour)))
	r.p = NewPipeline(Config{BatchWait: time.Millisecond}, r.store, devicestest.TwoStays(t, now.Add(-2*time.Hour), now.Add(-time.Hour)), r.obs, r.dead, nil, nil, r.m, quietLog)
	r.run(t)
	if err := r.p.Submit(context.Background(), Delivery{Topic: vward.QuestionnaireTopic("ox-1"), Payload: []byte(questionnaire("q1", now, `{"question":"carer_worried","value":true}`)), Ack: r.acks.ack("q1")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message acknowledged", func() bool { return len(r.acks.list()) == 1 })
	if d := r.dead.list(); len(d) != 1 || d[0].Code != RejectTopic {
		t.Fatalf("dead letters %+v", d)
	}
}
