package alerting

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

func answered(msgID string, at time.Time, by vward.Respondent, answers ...vward.Answer) vward.Answered {
	return vward.Answered{Device: "hub-p1", Patient: "p1", Ward: "w1", MsgID: msgID, At: at,
		Questionnaire: "soft_signs", Version: 1, AnsweredBy: by, Answers: answers}
}

var (
	carerWorried = vward.Answer{Question: "carer_worried", Value: 1, RedFlag: true}
	eatingWell   = vward.Answer{Question: "not_eating_drinking", Value: 0}
	notWorried   = vward.Answer{Question: "carer_worried", Value: 0}
)

// A worried carer raises a concern alert at medium risk, with the red flag
// in its evidence, beside a NEWS2 that stays as the vitals make it.
func TestConcernRaisedByARedFlag(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	r.observe(normal, t0)
	r.monitor.ObserveQuestionnaire(answered("q1", t0, vward.RespondentCarer, eatingWell, carerWorried))

	open := r.open(t)
	if len(open) != 1 || open[0].Condition != Concern || open[0].Risk != news2.Medium || open[0].State != Raised || open[0].Queue != Clinical {
		t.Fatalf("open alerts = %+v, want one concern, medium, raised", open)
	}
	if !strings.Contains(open[0].Reason, `red flags answered by the carer: The carer is worried, or the patient is "just not right"`) {
		t.Errorf("reason = %q", open[0].Reason)
	}
	_, audit, err := r.engine.Alert(context.Background(), open[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		MsgID    string         `json:"msg_id"`
		RedFlags []vward.Answer `json:"red_flags"`
	}
	if err := json.Unmarshal(audit[0].Observations, &ev); err != nil {
		t.Fatalf("evidence %s: %v", audit[0].Observations, err)
	}
	if ev.MsgID != "q1" || !slices.Equal(ev.RedFlags, []vward.Answer{carerWorried}) {
		t.Errorf("evidence = %s", audit[0].Observations)
	}
	if row, _ := r.monitor.Patient("p1"); !row.Scored || row.Result.Score != 0 || !row.Result.Complete {
		t.Errorf("NEWS2 after the questionnaire = %+v, want the vitals' 0", row.Result)
	}

	// NEWS2 raises its own alert as ever: a concern never stands in for it.
	r.observe(high, t0.Add(time.Minute))
	if n2 := r.openOf(t, News2); n2 == nil || n2.Risk != news2.High {
		t.Fatalf("NEWS2 alert beside the concern = %+v", n2)
	}
}

func TestConcernLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(r *rig) // after q1 (carer worried at t0) raised the alert
		want  []string     // board events
	}{
		{"a redelivery, or an older questionnaire, changes nothing", func(r *rig) {
			r.monitor.ObserveQuestionnaire(answered("q1", t0, vward.RespondentCarer, carerWorried))
			r.monitor.ObserveQuestionnaire(answered("q0", t0.Add(-time.Hour), vward.RespondentCarer, notWorried))
		}, []string{"1:raised:medium"}},
		{"a newer red flag is the same concern", func(r *rig) {
			r.monitor.ObserveQuestionnaire(answered("q2", t0.Add(time.Hour), vward.RespondentPatient, vward.Answer{Question: "patient_worried", Value: 1, RedFlag: true}))
		}, []string{"1:raised:medium"}},
		{"a later questionnaire with no red flag clears it, unacknowledged", func(r *rig) {
			r.monitor.ObserveQuestionnaire(answered("q2", t0.Add(time.Hour), vward.RespondentCarer, notWorried))
		}, []string{"1:raised:medium", "1:cleared:medium"}},
		{"acknowledged, then no red flag: resolved", func(r *rig) {
			if _, err := r.engine.Acknowledge(context.Background(), 1, "alice", "rang the carer"); err != nil {
				panic(err)
			}
			r.monitor.ObserveQuestionnaire(answered("q2", t0.Add(time.Hour), vward.RespondentCarer, notWorried))
		}, []string{"1:raised:medium", "1:acknowledged:medium", "1:resolved:medium"}},
		{"resolved by a clinician: only a newer red flag raises again", func(r *rig) {
			if _, err := r.engine.Resolve(context.Background(), 1, "alice", "seen at home"); err != nil {
				panic(err)
			}
			r.monitor.ObserveQuestionnaire(answered("q1", t0, vward.RespondentCarer, carerWorried))
			r.monitor.ObserveQuestionnaire(answered("q2", t0.Add(time.Hour), vward.RespondentCarer, carerWorried))
		}, []string{"1:raised:medium", "1:resolved:medium", "2:raised:medium"}},
		{"a pause leaves it open", func(r *rig) {
			r.monitor.Update(PatientInfo{ID: "p1", Ward: "w1", Name: "One", Paused: true}, "patient.pause by alice")
		}, []string{"1:raised:medium"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: t0.Add(2 * time.Hour)}
			r := newRig(t, dbPath(t), clk, Config{})
			r.monitor.ObserveQuestionnaire(answered("q1", t0, vward.RespondentCarer, carerWorried))
			tc.steps(r)
			if got := r.pub.changes(); !slices.Equal(got, tc.want) {
				t.Fatalf("board events = %v, want %v", got, tc.want)
			}
		})
	}
}

// No red flag, no alert; and nothing is raised for a paused patient.
func TestConcernNotRaised(t *testing.T) {
	clk := &clock{t: t0}
	r := newRig(t, dbPath(t), clk, Config{})
	r.monitor.ObserveQuestionnaire(answered("q1", t0, vward.RespondentPatient, eatingWell, notWorried))
	r.monitor.Update(PatientInfo{ID: "p1", Ward: "w1", Name: "One", Paused: true}, "patient.pause by alice")
	r.monitor.ObserveQuestionnaire(answered("q2", t0.Add(time.Minute), vward.RespondentCarer, carerWorried))
	if open := r.open(t); len(open) != 0 {
		t.Fatalf("open alerts = %+v", open)
	}
}
