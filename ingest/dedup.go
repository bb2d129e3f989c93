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
	seen  map[uint64]uint64 // key (device and msg_id, hashed) → fingerprint of the payload
	order []uint64          // ring of keys, oldest at next once full
	next  int
	full  bool
}

func newRecentMessages(size int) *recentMessages {
	return &recentMessages{
		seed:  maphash.MakeSeed(),
		seen:  make(map[uint64]uint64, size),
		order: make([]uint64, size),
	}
}

// key hashes a message's device and msg_id. Keys of 64 bits rather than the
// strings keep the window free of pointers, so the garbage collector does not
// walk its tens of thousands of entries, and a lookup compares one word. Two
// messages whose keys collide are told apart by their payloads' fingerprints
// (a collision of both, 2⁻¹²⁸, is what it would take to miss scoring one);
// a key collision alone reads as a reused msg_id: scored, and logged.
func (r *recentMessages) key(device vward.DeviceID, msgID string) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(string(device))
	h.WriteByte(0) // MQTT forbids NUL in a topic, so in a device ID: "ab"+"c" and "a"+"bc" differ
	h.WriteString(msgID)
	return h.Sum64()
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
	k := r.key(device, msgID)
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
