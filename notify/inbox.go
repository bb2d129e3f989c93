package notify

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/vward/vward/alerting"
)

// Inbox is the hand-off from the alert engine to the Dispatcher: an
// alerting.Publisher whose Publish never blocks. Events wait in a bounded
// queue; when it is full an event is not kept, and the dispatcher
// recomputes what is owed from the open alerts instead, as at a start.
//
// An acknowledgement (or a shelve, or a resolution) acts in Publish itself:
// every send still pending for the alert is cancelled at once, and nothing
// older than it is sent afterwards, however long the queue.
type Inbox struct {
	events  chan alerting.Event
	wake    chan struct{}
	overrun atomic.Bool

	mu      sync.Mutex
	stopped map[int64]stopped                            // by alert: the newest stopping change
	pending map[int64]map[string]context.CancelCauseFunc // by alert, by notification
}

type stopped struct {
	version int
	why     error
}

// NewInbox returns an inbox holding up to size events (default 4096).
func NewInbox(size int) *Inbox {
	if size <= 0 {
		size = 4096
	}
	return &Inbox{
		events: make(chan alerting.Event, size), wake: make(chan struct{}, 1),
		stopped: make(map[int64]stopped), pending: make(map[int64]map[string]context.CancelCauseFunc),
	}
}

var _ alerting.Publisher = (*Inbox)(nil)

// errStopped is the cause of a send cancelled because the alert no longer
// needs anyone told.
var errStopped = errors.New("stopped")

// stops reports whether a change ends the need to tell anyone.
func stops(change string) bool {
	return change == alerting.ActAcknowledged || change == alerting.ActShelved || change == alerting.ActResolved
}

// notifies reports whether an alert change is told to people: a clinical
// change that pages, or a new technical alert.
func notifies(a *alerting.Alert, change string, page bool) bool {
	if a.Queue == alerting.Technical {
		return change == alerting.ActRaised
	}
	return page
}

// Publish implements alerting.Publisher.
func (in *Inbox) Publish(e alerting.Event) {
	if e.Type != "alert" || e.Alert == nil {
		return
	}
	a := e.Alert
	stop := stops(e.Change)
	if stop {
		why := &stopError{change: e.Change, by: e.Alert.AcknowledgedBy}
		if e.Change == alerting.ActResolved {
			why.by = e.Alert.ResolvedBy
		} else if e.Change == alerting.ActShelved {
			why.by = e.Alert.ShelvedBy
		}
		in.mu.Lock()
		if s, ok := in.stopped[a.ID]; !ok || s.version < a.Version {
			in.stopped[a.ID] = stopped{version: a.Version, why: why}
		}
		for _, cancel := range in.pending[a.ID] {
			cancel(why)
		}
		in.mu.Unlock()
	}
	if !stop && !notifies(a, e.Change, e.Page) {
		return
	}
	select {
	case in.events <- e:
	default:
		in.overrun.Store(true)
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
}

// stopError says why sends were cancelled, for the delivery log.
type stopError struct{ change, by string }

func (s *stopError) Error() string {
	if s.by == "" {
		return "alert " + s.change
	}
	return "alert " + s.change + " by " + s.by
}

func (s *stopError) Is(target error) bool { return target == errStopped }

// stoppedSince returns why the alert needs nobody told any more, if a
// stopping change newer than version has been published.
func (in *Inbox) stoppedSince(alert int64, version int) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.stopped[alert]; ok && s.version > version {
		return s.why
	}
	return nil
}

// forget drops an alert's stop once its event has come through the queue:
// every event before it has been handled.
func (in *Inbox) forget(alert int64, version int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.stopped[alert]; ok && s.version <= version {
		delete(in.stopped, alert)
	}
}

// forgetStops drops every stop once the queue is empty: every event older
// than them has been handled, and newer ones are not held back by them. It
// ends the stops whose own events a full queue lost, which would otherwise
// be kept for ever.
func (in *Inbox) forgetStops() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.events) == 0 {
		clear(in.stopped)
	}
}

// track registers a pending send so that a stop cancels it; it reports
// false, registering nothing, if the alert was stopped after version.
func (in *Inbox) track(alert int64, version int, id string, cancel context.CancelCauseFunc) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.stopped[alert]; ok && s.version > version {
		return false
	}
	m := in.pending[alert]
	if m == nil {
		m = make(map[string]context.CancelCauseFunc)
		in.pending[alert] = m
	}
	if _, dup := m[id]; dup {
		return false
	}
	m[id] = cancel
	return true
}

// untrack ends a pending send's registration.
func (in *Inbox) untrack(alert int64, id string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if m := in.pending[alert]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(in.pending, alert)
		}
	}
}

// Pending returns how many notifications are being delivered.
func (in *Inbox) Pending() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, m := range in.pending {
		n += len(m)
	}
	return n
}
