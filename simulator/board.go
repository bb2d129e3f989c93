package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// BoardLogin is a clinician's sign-in to a running vward's board.
type BoardLogin struct {
	URL      string // http://host:8080
	Username string
	Password string
}

// BoardWatch follows a board's live stream (docs/websocket.md) as a signed-in
// clinician and keeps what it showed about patients' risk: every change of a
// patient's NEWS2 band or score, and every alert event. It reconnects, as
// the board page does, if the stream drops.
type BoardWatch struct {
	login  BoardLogin
	client *http.Client
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	seen    []boardSeen
	last    map[lastKey]boardSeen
	reconns int
	rows    int // patient rows received
	alerts  int // alert events received
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
func WatchBoard(ctx context.Context, login BoardLogin, log *slog.Logger) (*BoardWatch, error) {
	if log == nil {
		log = slog.Default()
	}
	jar, _ := cookiejar.New(nil)
	w := &BoardWatch{
		login: login, client: &http.Client{Jar: jar, Timeout: 30 * time.Second},
		log: log.With("component", "simulator", "board", login.URL), done: make(chan struct{}),
		last: map[lastKey]boardSeen{},
	}
	if err := w.signIn(ctx); err != nil {
		return nil, err
	}
	ws, _, err := w.dial(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(rctx, ws)
	return w, nil
}

func (w *BoardWatch) signIn(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"username": w.login.Username, "password": w.login.Password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(w.login.URL, "/")+"/api/v1/login", strings.NewReader(string(body)))
	if err != nil {
		return fmt.Errorf("sign in to the board: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("sign in to the board at %s: %w", w.login.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("sign in to the board as %q: status %d: %s", w.login.Username, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// dial opens the stream and reads its first snapshot.
func (w *BoardWatch) dial(ctx context.Context) (*websocket.Conn, boardMessage, error) {
	var first boardMessage
	base, err := url.Parse(strings.TrimRight(w.login.URL, "/"))
	if err != nil {
		return nil, first, fmt.Errorf("board url: %w", err)
	}
	hdr := http.Header{}
	for _, c := range w.client.Jar.Cookies(base) {
		hdr.Add("Cookie", c.String())
	}
	wsURL := *base
	wsURL.Scheme = map[string]string{"https": "wss"}[base.Scheme]
	if wsURL.Scheme == "" {
		wsURL.Scheme = "ws"
	}
	wsURL.Path += "/api/v1/stream"
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL.String(), hdr)
	if err != nil {
		if resp != nil {
			return nil, first, fmt.Errorf("open the board stream: %w (status %d)", err, resp.StatusCode)
		}
		return nil, first, fmt.Errorf("open the board stream: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	if err := ws.ReadJSON(&first); err != nil || first.Type != "snapshot" {
		ws.Close()
		return nil, first, fmt.Errorf("the board stream did not start with a snapshot (type %q): %v", first.Type, err)
	}
	return ws, first, nil
}

func (w *BoardWatch) run(ctx context.Context, ws *websocket.Conn) {
	defer close(w.done)
	go func() {
		<-ctx.Done()
		ws.Close()
	}()
	for {
		err := w.read(ws)
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("board stream dropped; reconnecting", "err", err)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			nws, snap, err := w.dial(ctx)
			if err != nil && strings.Contains(err.Error(), "status 401") {
				if err = w.signIn(ctx); err == nil {
					nws, snap, err = w.dial(ctx)
				}
			}
			if err == nil {
				w.mu.Lock()
				w.reconns++
				w.mu.Unlock()
				ws = nws
				go func() {
					<-ctx.Done()
					nws.Close()
				}()
				// The fresh snapshot is what the board shows now.
				now := time.Now()
				for _, r := range snap.Patients {
					w.row(now, r)
				}
				break
			}
			w.log.Warn("board stream: reconnect failed", "err", err)
		}
	}
}

func (w *BoardWatch) read(ws *websocket.Conn) error {
	for {
		_ = ws.SetReadDeadline(time.Now().Add(time.Minute)) // the server pings every 20 s
		_, data, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		now := time.Now()
		var m boardMessage
		if err := json.Unmarshal(data, &m); err != nil {
			w.log.Warn("unreadable board message", "err", err)
			continue
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
func (w *BoardWatch) Reconnects() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reconns
}

// Close stops watching.
func (w *BoardWatch) Close() {
	w.cancel()
	<-w.done
}
