package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/boardclient"
	"github.com/vward/vward/news2"
)

// BoardWatch follows a board's live stream (docs/websocket.md) as a signed-in
// clinician and keeps what it showed about patients' risk: every change of a
// patient's NEWS2 band or score, and every alert event. It reconnects, as
// the board page does, if the stream drops.
type BoardWatch struct {
	stream *boardclient.Stream
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	// started is set once the first snapshot has been passed over; only
	// the stream's Run goroutine reads it.
	started bool

	mu     sync.Mutex
	seen   []boardSeen
	last   map[lastKey]boardSeen
	rows   int // patient rows received
	alerts int // alert events received
}

type lastKey struct {
	p vward.PatientID
	s Source
}

// boardSeen is one thing the board showed, at the real time it arrived.
type boardSeen struct {
	arrived   time.Time
	source    Source
	patient   vward.PatientID
	risk      news2.Risk
	score     int
	complete  bool
	condition string
	lastSeen  time.Time
	detail    string
}

// boardRow is the part of a patient row the watcher reads.
type boardRow struct {
	Patient  vward.PatientID `json:"patient"`
	News2    *boardNEWS2     `json:"news2"`
	LastSeen time.Time       `json:"last_seen"`
}

type boardNEWS2 struct {
	Score     int            `json:"score"`
	Risk      string         `json:"risk"`
	Complete  bool           `json:"complete"`
	Subscores map[string]int `json:"subscores"`
}

// boardAlert is an alert event's fields, at the top level of the message or
// inside an "alert" object.
type boardAlert struct {
	Patient   json.RawMessage `json:"patient"`
	Condition string          `json:"condition"`
	Risk      string          `json:"risk"`
	State     string          `json:"state"`
}

type boardMessage struct {
	Type     string          `json:"type"`
	Patients []boardRow      `json:"patients"`
	Patient  json.RawMessage `json:"patient"`
	Alert    json.RawMessage `json:"alert"`
	boardAlert
}

// WatchBoard signs in and opens the stream. It returns once the first
// snapshot has arrived, so that nothing published afterwards is missed.
// State in that first snapshot predates the run and is not kept.
func WatchBoard(ctx context.Context, login boardclient.Login, log *slog.Logger) (*BoardWatch, error) {
	if log == nil {
		log = slog.Default()
	}
	w := &BoardWatch{log: log.With("component", "simulator", "board", login.URL), done: make(chan struct{}),
		last: map[lastKey]boardSeen{}}
	// A stream that carries no message for a minute is taken for dead and
	// reopened.
	s, err := boardclient.Open(ctx, login, w.handle, boardclient.Options{Reconnect: true, IdleTimeout: time.Minute, Log: w.log})
	if err != nil {
		return nil, err
	}
	w.stream = s
	rctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() {
		defer close(w.done)
		if err := s.Run(rctx); err != nil {
			w.log.Warn("board stream ended", "err", err)
		}
	}()
	return w, nil
}

// handle keeps what one message of the stream shows. A snapshot after the
// first (after a reconnect) is what the board shows now.
func (w *BoardWatch) handle(now time.Time, data []byte) {
	if !w.started {
		w.started = true
		return
	}
	var m boardMessage
	if err := json.Unmarshal(data, &m); err != nil {
		w.log.Warn("unreadable board message", "err", err)
		return
	}
	switch m.Type {
	case "snapshot":
		for _, r := range m.Patients {
			w.row(now, r)
		}
	case "patient":
		var r boardRow
		if json.Unmarshal(m.Patient, &r) == nil {
			w.count(&w.rows)
			w.row(now, r)
		}
	case "alert":
		w.count(&w.alerts)
		w.alert(now, m)
	}
}

func (w *BoardWatch) row(now time.Time, r boardRow) {
	if r.News2 == nil {
		return
	}
	risk, err := ParseRisk(r.News2.Risk)
	if err != nil {
		return
	}
	var parts []string
	for _, p := range []string{"respiratory_rate", "spo2", "supplemental_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature"} {
		if n := r.News2.Subscores[p]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, n))
		}
	}
	w.keep(boardSeen{arrived: now, source: FromNEWS2, patient: r.Patient, risk: risk, score: r.News2.Score,
		complete: r.News2.Complete, lastSeen: r.LastSeen, detail: strings.Join(parts, ", ")})
}

func (w *BoardWatch) alert(now time.Time, m boardMessage) {
	a := m.boardAlert
	if len(m.Alert) > 0 {
		_ = json.Unmarshal(m.Alert, &a)
	}
	var id vward.PatientID
	if err := json.Unmarshal(a.Patient, &id); err != nil {
		var row boardRow
		if json.Unmarshal(a.Patient, &row) != nil {
			return
		}
		id = row.Patient
	}
	switch strings.ToLower(a.State) {
	case "resolved", "cleared", "closed":
		return
	}
	risk, err := ParseRisk(a.Risk)
	if err != nil {
		risk = news2.Low // a technical alert (device offline, battery) has no band
	}
	w.keep(boardSeen{arrived: now, source: FromAlert, patient: id, risk: risk, condition: a.Condition})
}

// keep stores a sighting if it differs from the patient's last one: a
// wearable's stream of unchanged scores costs nothing.
func (w *BoardWatch) keep(s boardSeen) {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := lastKey{s.patient, s.source}
	if l, ok := w.last[k]; ok && s.source == FromNEWS2 && l.risk == s.risk && l.score == s.score && l.complete == s.complete {
		return
	}
	w.last[k] = s
	w.seen = append(w.seen, s)
}

// Observations returns what the board showed, in scenario time on clock.
func (w *BoardWatch) Observations(clock Clock) []Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Observation, 0, len(w.seen))
	for _, s := range w.seen {
		o := Observation{
			Source: s.source, Patient: s.patient, Risk: s.risk, Score: s.score, Complete: s.complete,
			Condition: s.condition, At: clock.ScenarioTime(s.arrived), Detail: s.detail,
		}
		if !s.lastSeen.IsZero() {
			o.Measured = clock.ScenarioTimeOfStamp(s.lastSeen)
		}
		out = append(out, o)
	}
	return out
}

func (w *BoardWatch) count(n *int) {
	w.mu.Lock()
	*n++
	w.mu.Unlock()
}

// Counts returns how many patient rows and alert events the stream carried.
func (w *BoardWatch) Counts() (rows, alerts int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rows, w.alerts
}

// Reconnects is how often the stream dropped and was reopened.
func (w *BoardWatch) Reconnects() int { return w.stream.Reconnects() }

// Close stops watching.
func (w *BoardWatch) Close() {
	w.cancel()
	<-w.done
}
