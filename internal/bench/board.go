package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vward/vward/boardclient"
)

// board watches the board's stream as a signed-in clinician and measures,
// for every patient update it sees, how long after the reading's
// measurement time (which the bench sets to the moment it is due to be
// published) the update arrived. The board coalesces a patient's updates
// for a slow client, so a reading superseded before it was written is
// never seen; each patient's newest measurement time is counted once.
type board struct {
	stream *boardclient.Stream
	since  time.Time // ignore readings measured before the run
	events atomic.Int64
	seen   atomic.Int64
	alerts atomic.Int64

	// outageFrom and outageTo (unix nanos; 0 is unset, and an unset end
	// is open) bound the measurement times whose latencies are also kept
	// apart, in during: those of messages due while the history was out.
	outageFrom, outageTo atomic.Int64

	mu     sync.Mutex
	lat    latencies
	window latencies // since the progress display last asked
	during latencies
	last   map[string]time.Time

	stop context.CancelFunc
	done chan struct{}
}

// openBoard signs the clinician in and opens the board's stream, which
// watch then reads.
func openBoard(ctx context.Context, login boardclient.Login) (*board, error) {
	b := &board{last: map[string]time.Time{}, done: make(chan struct{})}
	// No reconnecting: a dropped stream ends the measuring, and the
	// figures say how many events it saw.
	s, err := boardclient.Open(ctx, login, b.handle, boardclient.Options{})
	if err != nil {
		return nil, err
	}
	b.stream = s
	return b, nil
}

// watch reads the stream until close, measuring readings measured from
// since on.
func (b *board) watch(since time.Time) {
	b.since = since
	ctx, stop := context.WithCancel(context.Background())
	b.stop = stop
	go func() {
		defer close(b.done)
		_ = b.stream.Run(ctx)
	}()
}

type boardEvent struct {
	Type    string `json:"type"`
	Patient *struct {
		Patient string `json:"patient"`
		Vitals  map[string]struct {
			At time.Time `json:"at"`
		} `json:"vitals"`
	} `json:"patient"`
}

func (b *board) handle(now time.Time, msg []byte) {
	b.events.Add(1)
	patient, newest, ok := scanPatientEvent(msg)
	if !ok {
		var e boardEvent
		if json.Unmarshal(msg, &e) != nil {
			return
		}
		switch e.Type {
		case "alert":
			b.alerts.Add(1)
			return
		case "patient":
		default:
			return
		}
		if e.Patient == nil {
			return
		}
		patient = e.Patient.Patient
		for _, v := range e.Patient.Vitals {
			if v.At.After(newest) {
				newest = v.At
			}
		}
	}
	if newest.Before(b.since) {
		return
	}
	b.mu.Lock()
	if newest.After(b.last[patient]) {
		b.last[patient] = newest
		b.lat.add(now.Sub(newest))
		b.window.add(now.Sub(newest))
		if b.inOutage(newest) {
			b.during.add(now.Sub(newest))
		}
		b.seen.Add(1)
	}
	b.mu.Unlock()
}

func (b *board) latencies() latencies {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lat.clone()
}

// outage sets the window of measurement times counted apart; a zero to
// leaves it open.
func (b *board) outage(from, to time.Time) {
	var end int64
	if !to.IsZero() {
		end = to.UnixNano()
	}
	b.outageTo.Store(end)
	b.outageFrom.Store(from.UnixNano())
}

func (b *board) inOutage(at time.Time) bool {
	from := b.outageFrom.Load()
	if from == 0 || at.UnixNano() < from {
		return false
	}
	to := b.outageTo.Load()
	return to == 0 || at.UnixNano() < to
}

func (b *board) outageLatencies() latencies {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.during.clone()
}

// recent summarises the latencies since it was last called, for the
// progress display: cheap however long the run.
func (b *board) recent() Percentiles {
	b.mu.Lock()
	w := b.window
	b.window = latencies{ms: make([]float32, 0, len(w.ms))}
	b.mu.Unlock()
	return w.percentiles()
}

func (b *board) close() {
	b.stop()
	<-b.done
}

// vitalsEnd are what may follow a patient row's vitals, in the row's order.
var vitalsEnd = [][]byte{[]byte(`},"news2":`), []byte(`},"needs":`), []byte(`},"trend":`), []byte(`},"last_seen":`)}

// scanPatientEvent reads a patient event's id and newest vital time without
// a JSON decoder: the bench reads every board event on the same two cores
// as what it measures, so its own cost matters. It relies on the event's
// shape ({"type":"patient","patient":{"patient":"…",…,"vitals":{…"at":"…"…},…})
// and reports false for anything else, which the caller decodes properly.
func scanPatientEvent(msg []byte) (string, time.Time, bool) {
	const head = `{"type":"patient","patient":{"patient":"`
	if !bytes.HasPrefix(msg, []byte(head)) {
		return "", time.Time{}, false
	}
	rest := msg[len(head):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", time.Time{}, false
	}
	patient := string(rest[:end])
	vi := bytes.Index(rest, []byte(`"vitals":{`))
	if vi < 0 {
		return "", time.Time{}, false
	}
	vitals := rest[vi:]
	// Vitals end where the score, the trend or last_seen begins, whichever
	// comes first of those the row has (an update may have neither score
	// nor trend).
	end = -1
	for _, next := range vitalsEnd {
		if e := bytes.Index(vitals, next); e >= 0 {
			end = e
			break
		}
	}
	if end < 0 {
		return "", time.Time{}, false
	}
	vitals = vitals[:end]
	var newest time.Time
	for {
		i := bytes.Index(vitals, []byte(`"at":"`))
		if i < 0 {
			break
		}
		vitals = vitals[i+6:]
		j := bytes.IndexByte(vitals, '"')
		if j < 0 {
			return "", time.Time{}, false
		}
		t, err := time.Parse(time.RFC3339Nano, string(vitals[:j]))
		if err != nil {
			return "", time.Time{}, false
		}
		if t.After(newest) {
			newest = t
		}
		vitals = vitals[j:]
	}
	return patient, newest, true
}
