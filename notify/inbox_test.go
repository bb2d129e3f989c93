package notify

import (
	"context"
	"errors"
	"testing"

	"github.com/vward/vward/alerting"
)

// Publish never blocks: past its bound an event is not kept and the
// dispatcher is told to recompute. A stop cancels the alert's pending
// sends at once and refuses older ones, and is forgotten once the queue
// has drained.
func TestInboxOverflowAndStops(t *testing.T) {
	in := NewInbox(1)
	raised := func(id int64, v int) alerting.Event {
		return alerting.Event{Type: "alert", Change: alerting.ActRaised, Page: true, Alert: &alerting.Alert{ID: id, Version: v, Queue: alerting.Clinical}}
	}
	in.Publish(raised(1, 1))
	in.Publish(raised(2, 1)) // no room
	if !in.overrun.Load() || len(in.events) != 1 {
		t.Fatalf("after two events in an inbox of one: overrun %v, %d queued", in.overrun.Load(), len(in.events))
	}
	select {
	case <-in.wake:
	default:
		t.Error("an overrun did not wake the dispatcher")
	}
	in.Publish(alerting.Event{Type: "alert", Change: alerting.ActRaised, Alert: &alerting.Alert{ID: 3, Version: 1, Queue: alerting.Clinical}})
	in.Publish(alerting.Event{Type: "patient"})

	ctx, cancel := context.WithCancelCause(context.Background())
	if !in.track(1, 1, "a1.v1.pager.alice", cancel) {
		t.Fatal("track refused a first send")
	}
	if in.track(1, 1, "a1.v1.pager.alice", func(error) {}) {
		t.Error("track took the same notification twice")
	}
	in.Publish(alerting.Event{Type: "alert", Change: alerting.ActAcknowledged, Alert: &alerting.Alert{ID: 1, Version: 2, AcknowledgedBy: "alice", Queue: alerting.Clinical}})
	if why := context.Cause(ctx); !errors.Is(why, errStopped) || why.Error() != "alert acknowledged by alice" {
		t.Errorf("pending send's cause = %v", why)
	}
	if in.stoppedSince(1, 1) == nil || in.stoppedSince(1, 2) != nil {
		t.Error("the stop does not hold back exactly the older versions")
	}
	if in.track(1, 1, "a1.v1.mail.bob", func(error) {}) {
		t.Error("a send older than the stop was tracked")
	}
	in.untrack(1, "a1.v1.pager.alice")
	in.forgetStops() // the queue still holds alert 1's raise
	if in.stoppedSince(1, 1) == nil {
		t.Error("stops forgotten with events still queued")
	}
	<-in.events
	in.forgetStops()
	if in.stoppedSince(1, 1) != nil || in.Pending() != 0 {
		t.Errorf("after draining: stop kept, %d pending", in.Pending())
	}
}

func TestNotifies(t *testing.T) {
	for _, c := range []struct {
		queue  alerting.Queue
		change string
		page   bool
		want   bool
	}{
		{alerting.Clinical, alerting.ActRaised, true, true},
		{alerting.Clinical, alerting.ActEscalated, true, true},
		{alerting.Clinical, alerting.ActCleared, false, false},
		{alerting.Clinical, alerting.ActAcknowledged, false, false},
		{alerting.Technical, alerting.ActRaised, false, true},
		{alerting.Technical, alerting.ActResolved, false, false},
	} {
		if got := notifies(&alerting.Alert{Queue: c.queue}, c.change, c.page); got != c.want {
			t.Errorf("notifies(%s %s page %v) = %v, want %v", c.queue, c.change, c.page, got, c.want)
		}
	}
}
