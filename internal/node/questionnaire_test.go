package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/mqttsource"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/web"
)

func softSigns(msgID string, at time.Time, by, answers string) []byte {
	return fmt.Appendf(nil, `{"msg_id":%q,"ts":%q,"questionnaire":{"id":"soft_signs","version":1},"answered_by":%q,"answers":[%s]}`,
		msgID, at.UTC().Format(time.RFC3339), by, answers)
}

// A carer answers "worried: yes" on the patient's hub, over MQTT: a
// concern alert reaches the board and the alerts API with the red flag in
// its evidence, the questionnaire is on the patient's list and timeline,
// and NEWS2 is left as the vitals make it.
func TestQuestionnaireRedFlagRaisesConcern(t *testing.T) {
	s := start(t)
	nurseS := signIn(t, s.node.URL(), nurse)
	board := feed(t, nurseS.dialBoard())
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-1", time.Now().Add(-10*time.Second), 16, 97, 120, 70, "A", 37.0))
	answered := time.Now().Add(-5 * time.Second).Truncate(time.Second)
	publish(t, s.broker.URL, "ox-1-c", vward.QuestionnaireTopic(device), softSigns("q-1", answered, "carer",
		`{"question":"not_eating_drinking","value":false},{"question":"carer_worried","value":true}`))

	e := board.next("the concern raised", func(e boardEvent) bool {
		return e.Type == "alert" && e.Alert.Condition == alerting.Concern
	})
	if e.Change != alerting.ActRaised || !e.Page || e.Alert.Risk != news2.Medium || e.Alert.Patient != patient {
		t.Fatalf("board event = %s %+v, want a paging medium concern for %s", e.Change, e.Alert, patient)
	}

	var list struct{ Alerts []alerting.Alert }
	if code := nurseS.do(http.MethodGet, "/api/v1/alerts?state=open", nil, &list); code != http.StatusOK {
		t.Fatalf("GET alerts: %d", code)
	}
	var concern *alerting.Alert
	for i, a := range list.Alerts {
		if a.Condition == alerting.News2 {
			t.Errorf("a NEWS2 alert for a NEWS2 of 0: %+v", a)
		}
		if a.Condition == alerting.Concern {
			concern = &list.Alerts[i]
		}
	}
	if concern == nil {
		t.Fatalf("open alerts = %+v, without the concern", list.Alerts)
	}
	var detail struct {
		Audit []alerting.AuditEntry `json:"audit"`
	}
	if code := nurseS.do(http.MethodGet, fmt.Sprintf("/api/v1/alerts/%d", concern.ID), nil, &detail); code != http.StatusOK || len(detail.Audit) == 0 {
		t.Fatalf("GET the concern: %d %+v", code, detail)
	}
	var ev struct {
		MsgID    string         `json:"msg_id"`
		RedFlags []vward.Answer `json:"red_flags"`
	}
	if err := json.Unmarshal(detail.Audit[0].Observations, &ev); err != nil || ev.MsgID != "q-1" ||
		len(ev.RedFlags) != 1 || ev.RedFlags[0].Question != "carer_worried" {
		t.Fatalf("the concern's evidence = %s (%v)", detail.Audit[0].Observations, err)
	}

	var qs struct {
		Questionnaires []vward.Answered `json:"questionnaires"`
	}
	eventually(t, "the questionnaire kept", func() bool {
		return nurseS.do(http.MethodGet, "/api/v1/patients/p1/questionnaires", nil, &qs) == http.StatusOK && len(qs.Questionnaires) == 1
	})
	if q := qs.Questionnaires[0]; q.MsgID != "q-1" || !q.At.Equal(answered) || q.AnsweredBy != vward.RespondentCarer || len(q.Answers) != 2 {
		t.Errorf("questionnaire = %+v", q)
	}
	var tl web.Timeline
	if code := nurseS.do(http.MethodGet, "/api/v1/patients/p1/timeline", nil, &tl); code != http.StatusOK {
		t.Fatalf("timeline: %d", code)
	}
	found := false
	for _, it := range tl.Items {
		found = found || it.Type == web.ItemQuestionnaire && it.Questionnaire.MsgID == "q-1" && it.By == "carer"
	}
	if !found {
		t.Errorf("timeline %+v, without the questionnaire", tl.Items)
	}
	// Ward-scoped like notes: another ward's nurse finds no such patient.
	if code := signIn(t, s.node.URL(), otherNurse).do(http.MethodGet, "/api/v1/patients/p1/questionnaires", nil, nil); code != http.StatusNotFound {
		t.Errorf("another ward's nurse reading the questionnaires: %d, want 404", code)
	}
	if row, ok := s.node.Monitor.Patient(patient); !ok || row.Result.Score != 0 {
		t.Errorf("NEWS2 after the questionnaire: %+v", row.Result)
	}
}

// A malformed questionnaire is answered on the device's rejected topic,
// as a malformed reading message is, and kept as a dead letter.
func TestQuestionnaireMalformedIsRejected(t *testing.T) {
	s := start(t)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(s.broker.URL).SetClientID("ox-1-client"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	notices := make(chan []byte, 4)
	if tok := c.Subscribe(vward.RejectedTopic(device), 1, func(_ mqtt.Client, m mqtt.Message) { notices <- m.Payload() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe rejected: %v", tok.Error())
	}
	payload := softSigns("q-bad", time.Now(), "carer", `{"question":"carer_worried","value":"very"}`)
	if tok := c.Publish(vward.QuestionnaireTopic(device), 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case b := <-notices:
		var n struct {
			MsgID        string `json:"msg_id"`
			Code, Reason string
		}
		if err := json.Unmarshal(b, &n); err != nil {
			t.Fatalf("notice %s: %v", b, err)
		}
		if n.MsgID != "q-bad" || n.Code != ingest.RejectAnswers || !strings.Contains(n.Reason, `answers[0] (carer_worried): value "very" is not true or false`) {
			t.Errorf("notice = %+v, want bad_answers naming answers[0]", n)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no rejection notice within 15s")
	}
	rs, err := s.node.Dead.List(t.Context(), ingest.RejectionQuery{Device: device, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].MsgID != "q-bad" || string(rs[0].Payload) != string(payload) || rs[0].Topic != vward.QuestionnaireTopic(device) {
		t.Fatalf("dead letters = %+v, want the one bad questionnaire with its payload", rs)
	}
	if s.node.Alerts.HasOpenAlerts(patient) {
		t.Error("a refused questionnaire raised an alert")
	}
}

// The patient view shows the questionnaire on the timeline, red flags
// first, and the concern's raise beside it.
func TestQuestionnaireOnTheTimelineInBrowser(t *testing.T) {
	s := start(t)
	publish(t, s.broker.URL, "ox-1-c", vward.QuestionnaireTopic(device), softSigns("q-1", time.Now().Add(-time.Minute), "carer",
		`{"question":"new_pain","value":false},{"question":"carer_worried","value":true}`))
	eventually(t, "the concern raised", func() bool { return s.node.Alerts.HasOpenAlerts(patient) })

	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	// The row's centre is its alert's buttons: open the view as Enter on the row does.
	read(t, b, "open the patient", chromedp.Evaluate[string](`location.hash = "patient/p1"`))
	step(t, b, "open the patient", chromedp.WaitVisible(`#tl-items .tl-questionnaire[data-questionnaire="q-1"]`),
		chromedp.WaitVisible(`#tl-items .tl-alert.act-raised`))
	item := text(t, b, `#tl-items .tl-questionnaire[data-questionnaire="q-1"]`)
	for _, want := range []string{"Questionnaire · soft signs v1", "by carer", "Red flags: carer worried: yes", "new pain: no"} {
		if !strings.Contains(item, want) {
			t.Errorf("the questionnaire reads %q, without %q", item, want)
		}
	}
	if alert := text(t, b, `#tl-items .tl-alert.act-raised`); !strings.Contains(alert, "concern reported") {
		t.Errorf("the concern's raise reads %q", alert)
	}
}

// A questionnaire kept and acknowledged just before vward stopped, whose
// concern was not yet stored, raises the concern when vward starts; one
// whose concern a clinician resolved does not raise it again.
func TestQuestionnaireConcernRestoredAtStart(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	influx := testenv.StartInflux(t)
	cfg := node.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0",
		MQTT:   mqttsource.Config{URL: broker.URL, ClientID: "vward-test"},
		Influx: &history.InfluxConfig{URL: influx.URL, Bucket: influx.Bucket},
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	// run opens a node on the data directory; setup runs before it serves.
	run := func(setup func(n *node.Node)) (*node.Node, func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		n, err := node.Open(ctx, cfg)
		if err != nil {
			t.Fatalf("open node: %v", err)
		}
		setup(n)
		return n, serveNode(t, n, ctx, cancel)
	}
	ctx := t.Context()
	worried := func(p vward.PatientID, msgID string, at time.Time) vward.Answered {
		return vward.Answered{Device: "hub-" + vward.DeviceID(p), Patient: p, Ward: ward, MsgID: msgID, At: at, Questionnaire: "soft_signs", Version: 1,
			AnsweredBy: vward.RespondentCarer, Answers: []vward.Answer{{Question: "carer_worried", Value: 1, RedFlag: true}}}
	}
	openConcern := func(n *node.Node, p vward.PatientID) *alerting.Alert {
		as, err := n.Alerts.Alerts(ctx, alerting.Filter{Patient: p, State: "open"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range as {
			if as[i].Condition == alerting.Concern {
				return &as[i]
			}
		}
		return nil
	}
	resolved := worried("p2", "q-p2", time.Now().Add(-time.Hour))
	n, stop := run(func(n *node.Node) {
		if err := n.Registry.AddWard(ctx, devices.Ward{ID: ward, Name: "Respiratory"}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []vward.PatientID{patient, "p2"} {
			if err := n.Registry.Admit(ctx, devices.Patient{ID: p, Ward: ward, Name: "Patient " + string(p)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.LoadPatients(ctx); err != nil {
			t.Fatal(err)
		}
	})
	// p2's concern was raised and resolved by a clinician before the stop.
	if err := n.Questionnaires.Keep(ctx, []vward.Answered{resolved}); err != nil {
		t.Fatal(err)
	}
	n.Monitor.ObserveQuestionnaire(resolved)
	eventually(t, "p2's concern raised", func() bool { return openConcern(n, "p2") != nil })
	if _, err := n.Alerts.Resolve(ctx, openConcern(n, "p2").ID, nurse, "rang the carer"); err != nil {
		t.Fatal(err)
	}
	// p1's questionnaire is kept, as ingest keeps it before acknowledging,
	// and vward stops before its concern is assessed.
	if err := n.Questionnaires.Keep(ctx, []vward.Answered{worried(patient, "q-p1", time.Now().Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	stop()

	n, _ = run(func(*node.Node) {})
	eventually(t, "p1's concern raised at start", func() bool { return openConcern(n, patient) != nil })
	if a := openConcern(n, patient); a.Risk != news2.Medium || a.State != alerting.Raised {
		t.Errorf("p1's concern after the start = %+v", a)
	}
	if a := openConcern(n, "p2"); a != nil {
		t.Errorf("p2's resolved concern raised again at start: %+v", a)
	}
}
