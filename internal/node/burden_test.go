package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
)

// A clinician opens the alarm burden panel from the board's toolbar and
// sees the figures of an alert that was raised, shelved and acknowledged; a viewer
// of the ward may read it too.
func TestAlarmBurdenInBrowser(t *testing.T) {
	s := start(t)
	ctx := context.Background()
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-b1", time.Now().Add(-2*time.Minute), 26, 91, 98, 124, "C", 39.2))
	var alert alerting.Alert
	eventually(t, "a high alert raised", func() bool {
		as, err := s.node.Alerts.Alerts(ctx, alerting.Filter{State: "open", Patient: patient, Condition: alerting.News2})
		if err == nil && len(as) == 1 {
			alert = as[0]
		}
		return alert.ID != 0
	})
	if _, err := s.node.Alerts.Shelve(ctx, alert.ID, nurse, 30*time.Minute, "GP visiting this morning"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.node.Alerts.Acknowledge(ctx, alert.ID, nurse, "phoned the patient"); err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	click(t, b, "#burden-open")
	step(t, b, "the panel's figures", chromedp.WaitVisible("#burden-body .figures"))
	if got := text(t, b, "#burden-ward"); !strings.Contains(got, "Respiratory") {
		t.Errorf("the panel names the ward %q, want Respiratory (the nurse's only ward)", got)
	}
	figures := text(t, b, "#burden-body .figures")
	for _, want := range []string{"Alerts raised\n1", "Clinical\n1", "Cleared unacknowledged\n0", "Escalated to tier 1\n0", "senior clinician", "Shelved\n1"} {
		if !strings.Contains(figures, want) {
			t.Errorf("the figures lack %q:\n%s", want, figures)
		}
	}
	tables := text(t, b, "#burden-body .burden-grid")
	for _, want := range []string{"Time to acknowledge", "HIGH\t1\t", "Patients who raised most", "Test Patient\t1\tNEWS2 1", "GP visiting this morning\t1\t"} {
		if !strings.Contains(tables, want) {
			t.Errorf("the tables lack %q:\n%s", want, tables)
		}
	}
	screenshot(t, b, "alarm-burden")
	step(t, b, "another period", chromedp.SetValue("#burden-days", "30"))
	read(t, b, "the report over 30 days", chromedp.Evaluate[bool](`document.getElementById("burden-days").dispatchEvent(new Event("change")) || true`))
	read(t, b, "reloaded", chromedp.Poll[bool](`document.getElementById("burden-status").textContent.startsWith("Since")`, chromedp.WithPollingTimeout(15*time.Second)))
	step(t, b, "close it", chromedp.Click("#burden-close"), chromedp.WaitNotVisible("#burden"))

	v := browser(t)
	signInBoard(t, v, s.node.URL(), viewer)
	click(t, v, "#burden-open")
	step(t, v, "the viewer's panel", chromedp.WaitVisible("#burden-body .figures"))
	if got := text(t, v, "#burden-body .figures"); !strings.Contains(got, "Alerts raised\n1") {
		t.Errorf("the viewer's figures: %s", got)
	}
}
