package node_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/web"
)

// boardEvent is any message of the board's stream.
type boardEvent struct {
	Type    string           `json:"type"`
	Patient *web.PatientView `json:"patient"`
	Alert   *alerting.Alert  `json:"alert"`
	Change  string           `json:"change"`
	Page    bool             `json:"page"`
}

// boardFeed reads a board stream in the background.
type boardFeed struct {
	t      *testing.T
	events chan boardEvent
}

func feed(t *testing.T, ws *websocket.Conn) *boardFeed {
	f := &boardFeed{t: t, events: make(chan boardEvent, 1024)}
	go func() {
		defer close(f.events)
		for {
			var e boardEvent
			if err := ws.ReadJSON(&e); err != nil {
				return
			}
			f.events <- e
		}
	}()
	return f
}

// next returns the next event that match accepts, failing after 15s.
func (f *boardFeed) next(what string, match func(boardEvent) bool) boardEvent {
	f.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case e, ok := <-f.events:
			if !ok {
				f.t.Fatalf("board stream closed waiting for %s", what)
			}
			if match(e) {
				return e
			}
			if e.Type == "alert" {
				f.t.Fatalf("waiting for %s, the board said %s: %+v", what, e.Change, e.Alert)
			}
		case <-timeout:
			f.t.Fatalf("no %s on the board within 15s", what)
		}
	}
}

func (f *boardFeed) alert(change string) boardEvent {
	f.t.Helper()
	return f.next("alert "+change, func(e boardEvent) bool { return e.Type == "alert" && e.Change == change })
}

// row waits for the patient's row with readings measured at at.
func (f *boardFeed) row(at time.Time) {
	f.t.Helper()
	f.next("patient row at "+at.String(), func(e boardEvent) bool {
		return e.Type == "patient" && e.Patient != nil && e.Patient.Vitals["spo2"].At.Equal(at)
	})
}

// A deteriorating patient raises medium then high on the board, a clinician
// acknowledges over REST, the patient recovers, the alert resolves only
// after the hysteresis, and the audit trail tells the whole story.
func TestAlertScenario(t *testing.T) {
	s := start(t, func(c *node.Config) {
		c.Alerting = alerting.Config{
			Policy: alerting.Policy{ClearSets: 3, ClearPeriod: 2 * time.Minute},
			Tick:   100 * time.Millisecond,
		}
	})
	nurseS := signIn(t, s.node.URL(), nurse)
	ws := nurseS.dialBoard()
	board := feed(t, ws)
	board.next("snapshot", func(e boardEvent) bool { return e.Type == "snapshot" })

	// Readings measured a minute apart, ten minutes ago onwards.
	base := time.Now().UTC().Truncate(time.Second).Add(-10 * time.Minute)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	send := func(i int, rr, spo2, sbp, hr int, temp float64) []byte {
		msg := vitalsMessage(fmt.Sprintf("ox-1-%06d", i), at(i), rr, spo2, sbp, hr, "A", temp)
		publish(t, s.broker.URL, "ox-1-client", vward.ReadingsTopic(device), msg)
		return msg
	}

	// NEWS2 5: RR 22 → 2, SpO2 94 → 1, SBP 105 → 1, HR 95 → 1.
	send(0, 22, 94, 105, 95, 37.0)
	raised := board.alert(alerting.ActRaised)
	a := raised.Alert
	if a.Patient != patient || a.Ward != ward || a.Condition != alerting.News2 || a.Risk != news2.Medium || a.State != alerting.Raised || !raised.Page {
		t.Fatalf("raised = %+v (page %v), want medium news2 for %s", a, raised.Page, patient)
	}
	// NEWS2 8: the same alert upgrades, and pages again.
	high := send(1, 22, 93, 105, 115, 38.3)
	up := board.alert(alerting.ActUpgraded)
	if up.Alert.ID != a.ID || up.Alert.Risk != news2.High || up.Alert.Score != 8 || !up.Page {
		t.Fatalf("upgraded = %+v, want alert %d high", up.Alert, a.ID)
	}
	path := fmt.Sprintf("/api/v1/alerts/%d", a.ID)

	// Who may act: a viewer may not; a nurse of another ward cannot see it.
	if code := signIn(t, s.node.URL(), viewer).do("POST", path+"/ack", nil, nil); code != http.StatusForbidden {
		t.Errorf("viewer acknowledges: %d, want 403", code)
	}
	if code := signIn(t, s.node.URL(), otherNurse).do("POST", path+"/ack", nil, nil); code != http.StatusNotFound {
		t.Errorf("nurse of another ward acknowledges: %d, want 404", code)
	}
	var acked alerting.Alert
	if code := nurseS.do("POST", path+"/ack", map[string]string{"note": "phoned patient, GP visiting"}, &acked); code != http.StatusOK {
		t.Fatalf("acknowledge: %d", code)
	}
	if acked.State != alerting.Acknowledged || acked.AcknowledgedBy != nurse {
		t.Fatalf("acknowledged = %+v", acked)
	}
	if e := board.alert(alerting.ActAcknowledged); e.Page || e.Alert.AcknowledgedBy != nurse {
		t.Errorf("board acknowledgement = %+v", e)
	}

	// Recovery: two good sets are not enough.
	send(2, 16, 97, 124, 72, 36.9)
	send(3, 17, 96, 122, 74, 37.0)
	board.row(at(3))
	// The high message delivered again changes nothing.
	publish(t, s.broker.URL, "ox-1-client", vward.ReadingsTopic(device), high)
	var now web.AlertWithAudit
	if code := nurseS.do("GET", path, nil, &now); code != http.StatusOK || now.State != alerting.Acknowledged {
		t.Fatalf("after two good sets: %d, %s; want still acknowledged", code, now.State)
	}
	// The third, two minutes after the first: resolved.
	send(4, 16, 97, 125, 70, 36.8)
	res := board.alert(alerting.ActResolved)
	if res.Alert.ID != a.ID || res.Alert.State != alerting.Resolved || res.Page {
		t.Fatalf("resolved = %+v", res.Alert)
	}

	// The audit trail tells the story.
	if code := nurseS.do("GET", path, nil, &now); code != http.StatusOK {
		t.Fatalf("get alert: %d", code)
	}
	var story []string
	for _, e := range now.Audit {
		var ev struct {
			At    time.Time      `json:"at"`
			News2 alerting.Score `json:"news2"`
		}
		_ = json.Unmarshal(e.Observations, &ev)
		story = append(story, fmt.Sprintf("%s by %s → %s at %s (set of %s scoring %d)", e.Action, e.Actor, e.To, e.Risk, ev.At.Format("15:04"), ev.News2.Score))
	}
	want := []string{
		fmt.Sprintf("raised by system → raised at medium (set of %s scoring 5)", at(0).Format("15:04")),
		fmt.Sprintf("upgraded by system → raised at high (set of %s scoring 8)", at(1).Format("15:04")),
		fmt.Sprintf("acknowledged by nurse → acknowledged at high (set of %s scoring 8)", at(1).Format("15:04")),
		fmt.Sprintf("resolved by system → resolved at high (set of %s scoring 0)", at(4).Format("15:04")),
	}
	if strings.Join(story, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit trail:\n%s\nwant:\n%s", strings.Join(story, "\n"), strings.Join(want, "\n"))
	}
	if ack := now.Audit[2]; ack.Note != "phoned patient, GP visiting" || ack.ResponseSeconds == nil {
		t.Errorf("acknowledgement = %+v", ack)
	}
	if r := now.Audit[3].Reason; !strings.Contains(r, "3 consecutive complete sets over 2m0s") {
		t.Errorf("resolution reason = %q", r)
	}

	var open struct{ Alerts []alerting.Alert }
	if code := nurseS.do("GET", "/api/v1/alerts?state=open&ward=w1", nil, &open); code != http.StatusOK || len(open.Alerts) != 0 {
		t.Errorf("open alerts: %d %+v", code, open.Alerts)
	}
	var report struct {
		ResponseTimes []alerting.ResponseTime `json:"response_times"`
	}
	if code := nurseS.do("GET", "/api/v1/reports/response-times?ward=w1", nil, &report); code != http.StatusOK ||
		len(report.ResponseTimes) != 1 || report.ResponseTimes[0].Risk != news2.High || report.ResponseTimes[0].Count != 1 {
		t.Errorf("response times: %d %+v", code, report.ResponseTimes)
	}
}
