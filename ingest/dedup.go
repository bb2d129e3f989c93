package ingest

import (
	"hash/maphash"
	"sync"

	"github.com/vward/vward"
)

// recentMessages remembers the last size messages by device and msg_id, with
// a fingerprint of each payload, so that a redelivered message is stored
// and acknowledged again but not scored again.
//
// It is one bounded FIFO for the whole fleet rather than a window per
// device: its memory is fixed whatever the fleet size, and redeliveries come
// from the broker's in-flight window (at most MaxInFlight messages) or soon
// after a device reconnects, both well inside a window of a few times
// MaxInFlight. A duplicate older than the window is observed again, which
// the monitor tolerates: an identical reading does not change an
// observation set.
type recentMessages struct {
	seed maphash.Seed

	mu    sync.Mutex
	seen  map[msgKey]uint64 // fingerprint of the payload
	order []msgKey          // ring of keys, oldest at next once full
	next  int
	full  bool
}

type msgKey struct {
	device vward.DeviceID
	msgID  string
}

func newRecentMessages(size int) *recentMessages {
	return &recentMessages{
		seed:  maphash.MakeSeed(),
		seen:  make(map[msgKey]uint64, size),
		order: make([]msgKey, size),
	}
}

// Verdicts of recentMessages.check.
const (
	firstSeen = iota
	duplicate // same device, msg_id and payload: a redelivery
	reused    // same device and msg_id, different payload: a device bug
)

// check records a message and says whether it was seen recently. A msg_id
// reused with a different payload is not a redelivery: its readings are
// new and must be scored, so it counts as seen afresh.
func (r *recentMessages) check(device vward.DeviceID, msgID string, payload []byte) int {
	fp := maphash.Bytes(r.seed, payload)
	k := msgKey{device, msgID}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.seen[k]; ok {
		if old == fp {
			return duplicate
		}
		r.seen[k] = fp
		return reused
	}
	if r.full {
		delete(r.seen, r.order[r.next])
	}
	r.seen[k] = fp
	r.order[r.next] = k
	r.next++
	if r.next == len(r.order) {
		r.next, r.full = 0, true
	}
	return firstSeen
}
