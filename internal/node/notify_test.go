package node_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vward/vward"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/notify"
)

// A high alert is told to the ward's pager; the pager's endpoint keeps
// failing, so the board says the channel is failing, and the patient view
// shows the delivery log. When the channel delivers again, the banner goes.
func TestNotificationsOnTheBoard(t *testing.T) {
	var got atomic.Int64
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer rc.Close()
	s := start(t, func(c *node.Config) {
		c.Notify = notify.Config{MaxAttempts: 2, Backoff: 10 * time.Millisecond, FailingAfter: 1, BoardURL: "https://vward.example"}
	})
	ctx := context.Background()
	st := s.node.Notify.Store()
	if err := st.PutChannel(ctx, notify.ChannelConfig{Name: "pager", Kind: notify.KindWebhook, URL: rc.URL, Secret: "a-signing-key-for-the-test"}); err != nil {
		t.Fatal(err)
	}
	for _, tier := range []int{0, 1} {
		if _, err := st.AddRoute(ctx, notify.Route{Ward: ward, Queue: "clinical", Tier: tier, TargetKind: "user", Target: nurse, Channel: "pager"}); err != nil {
			t.Fatal(err)
		}
	}

	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-2", time.Now().Add(-10*time.Second), 26, 91, 98, 124, "C", 39.2))
	step(t, b, "the failing channel's banner", chromedp.WaitVisible("#channel-banner"))
	if banner := text(t, b, "#channel-banner"); !strings.Contains(banner, "pager") || !strings.Contains(banner, "Respiratory") {
		t.Errorf("banner says %q; want the channel and the ward", banner)
	}
	if n := got.Load(); n != 2 {
		t.Errorf("the endpoint got %d attempts, want MaxAttempts 2", n)
	}
	step(t, b, "open the patient", chromedp.Click(`tr[data-patient="p1"]`), chromedp.WaitVisible("#tl-items .tl-alert"))
	read(t, b, "the delivery line", chromedp.Poll[bool](`[...document.querySelectorAll("#tl-items .deliveries")].some((p) => p.textContent.includes("gave up"))`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if line := text(t, b, "#tl-items .deliveries"); !strings.Contains(line, "nurse by pager (tier 0): gave up") || !strings.Contains(line, "attempt 2") {
		t.Errorf("delivery line says %q", line)
	}
	screenshot(t, b, "notification-failing")

	// The channel delivers again (notify's tests show the dispatcher
	// saying so): its alert resolves and the banner goes.
	s.node.Alerts.ChannelFailing(ward, "pager", false, "delivered again")
	read(t, b, "the banner goes", chromedp.Poll[bool](`document.getElementById("channel-banner").hidden`, chromedp.WithPollingTimeout(15*time.Second)))
}
