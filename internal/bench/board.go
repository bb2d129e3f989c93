package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// board watches the board's stream as a signed-in clinician and measures,
// for every patient update it sees, how long after the reading's
// measurement time (which the bench sets to the moment it is due to be
// published) the update arrived. The board coalesces a patient's updates
// for a slow client, so a reading superseded before it was written is
// never seen; each patient's newest measurement time is counted once.
type board struct {
	ws     *websocket.Conn
	since  time.Time // ignore readings measured before the run
	events atomic.Int64
	seen   atomic.Int64
	alerts atomic.Int64

	mu     sync.Mutex
	lat    latencies
	window latencies // since the progress display last asked
	last   map[string]time.Time
	err    error
	done   chan struct{}
}

// signIn signs a clinician in and returns a client holding the session.
func signIn(ctx context.Context, base, user, password string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/login", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sign in as %s: %w", user, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("sign in as %s: %s", user, resp.Status)
	}
	return c, nil
}

func watchBoard(ctx context.Context, base, user, password string, since time.Time) (*board, error) {
	c, err := signIn(ctx, base, user, password)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(base)
	hdr := http.Header{}
	for _, ck := range c.Jar.Cookies(u) {
		hdr.Add("Cookie", ck.String())
	}
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 64 << 10}
	ws, _, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+"/api/v1/stream", hdr)
	if err != nil {
		return nil, fmt.Errorf("dial board stream: %w", err)
	}
	b := &board{ws: ws, since: since, last: map[string]time.Time{}, done: make(chan struct{})}
	go b.read()
	return b, nil
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

func (b *board) read() {
	defer close(b.done)
	// One buffer for every message: the board client shares the machine
	// with what it measures, and ReadMessage allocates each message anew.
	var buf bytes.Buffer
	for {
		_, r, err := b.ws.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		now := time.Now()
		if err != nil {
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
			return
		}
		msg := buf.Bytes()
		b.events.Add(1)
		patient, newest, ok := scanPatientEvent(msg)
		if !ok {
			var e boardEvent
			if json.Unmarshal(msg, &e) != nil {
				continue
			}
			switch e.Type {
			case "alert":
				b.alerts.Add(1)
				continue
			case "patient":
			default:
				continue
			}
			if e.Patient == nil {
				continue
			}
			patient = e.Patient.Patient
			for _, v := range e.Patient.Vitals {
				if v.At.After(newest) {
					newest = v.At
				}
			}
		}
		if newest.Before(b.since) {
			continue
		}
		b.mu.Lock()
		if newest.After(b.last[patient]) {
			b.last[patient] = newest
			b.lat.add(now.Sub(newest))
			b.window.add(now.Sub(newest))
			b.seen.Add(1)
		}
		b.mu.Unlock()
	}
}

func (b *board) latencies() latencies {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lat.clone()
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

func (b *board) close() error {
	b.ws.Close()
	<-b.done
	return nil
}

// vitalsEnd are what may follow a patient row's vitals, in the row's order.
var vitalsEnd = [][]byte{[]byte(`},"news2":`), []byte(`},"trend":`), []byte(`},"last_seen":`)}

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
