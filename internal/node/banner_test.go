package node_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vward/vward"
)

// The banner's words come from the alert itself: an alert event that
// reaches the board before the patient's row (which still says NEWS2 0)
// gives the alert's score and the emergency response, never the row's
// "Continue routine NEWS monitoring", and the banner follows the alert's
// acknowledgement and resolution.
func TestBannerSaysWhatTheAlertSays(t *testing.T) {
	t.Parallel()
	s := start(t)
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-1", timeNowMinus(3), 16, 97, 124, 72, "A", 36.9)) // NEWS2 0
	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	if got := read(t, b, "p1's row score", chromedp.Evaluate[string](`String(patients.get("p1").news2.score)`)); got != "0" {
		t.Fatalf("p1's row scores %s before the alert, want 0", got)
	}
	deliver := func(state, change, extra string) string {
		js := fmt.Sprintf(`(() => {
			socket.onmessage({data: JSON.stringify({type: "alert", change: %q, page: %v, alert: {
				id: 990, version: %d, patient: "p1", ward: "w1", condition: "news2", queue: "clinical",
				risk: "high", score: 15, state: %q %s}})});
			const b = document.getElementById("alert-banner");
			return b.hidden ? "(hidden)" : b.textContent;
		})()`, change, change == "raised", len(change), state, extra)
		return read(t, b, "banner after "+change, chromedp.Evaluate[string](js))
	}
	got := deliver("raised", "raised", "")
	for _, want := range []string{"HIGH risk: Test Patient", "NEWS2 15", "raised, not acknowledged", "Emergency response"} {
		if !strings.Contains(got, want) {
			t.Errorf("banner %q does not say %q", got, want)
		}
	}
	if strings.Contains(got, "routine") {
		t.Errorf("banner %q mixes the alert with the row's stale response", got)
	}
	got = deliver("acknowledged", "acknowledged", `, acknowledged_by: "nurse"`)
	if !strings.Contains(got, "acknowledged by nurse") || strings.Contains(got, "raised") {
		t.Errorf("banner after acknowledgement %q, want it to say acknowledged by nurse", got)
	}
	got = deliver("resolved", "resolved", "")
	if !strings.Contains(got, "(resolved)") || strings.Contains(got, "Emergency") {
		t.Errorf("banner after resolution %q, want it to say resolved", got)
	}
}

func timeNowMinus(minutes int) time.Time {
	return time.Now().Add(-time.Duration(minutes) * time.Minute)
}
