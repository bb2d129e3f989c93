package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
)

// Hub fans board events out to websocket clients. A publisher never waits
// for a client: each client keeps only the latest update of each patient
// (coalescing), so a slow client costs at most one row per patient of
// memory, and a client that cannot take a write within WriteTimeout is
// dropped without slowing the others.
type Hub struct {
	log          *slog.Logger
	writeTimeout time.Duration

	mu      sync.RWMutex
	clients map[*client]struct{}
	// audience mirrors which wards clients watch, for ListeningTo, which
	// the monitor asks for every row it could build and must not contend
	// for mu. It is replaced, never changed, under mu.
	audience atomic.Pointer[audience]
	// gone are the counts of clients that left, for the metrics; those of
	// clients still here are added when /metrics is scraped. Guarded by mu.
	gone clientCounts

	Dropped atomic.Int64 // clients dropped for being too slow or gone
	stats   hubStats
}

// drainGap is the least time between two of a client's batches of writes.
// Events keep arriving in between, so at thousands of readings a second a
// write carries a few hundred events rather than one; at a quiet ward the
// first event after a pause goes at once. 10 ms is nothing to a person
// and far within the board's 250 ms.
const drainGap = 10 * time.Millisecond

// NewHub builds an empty hub.
func NewHub(log *slog.Logger) *Hub {
	return &Hub{log: log.With("component", "board"), writeTimeout: 10 * time.Second, clients: make(map[*client]struct{}), stats: newHubStats()}
}

// client is one board connection.
type client struct {
	conn  *websocket.Conn
	wards map[vward.WardID]bool // nil: every ward

	mu    sync.Mutex
	rows  map[vward.PatientID]queued // latest update per patient
	order []vward.PatientID          // first-dirtied first, so no row starves
	wake  chan struct{}

	alerts        [][]byte // alert events in order, never coalesced (alerts.go)
	alertOverflow bool     // more than maxQueuedAlerts waited: drop the client

	// fetched and row are the writer's room for the rows it fetches from a
	// RowSource and for their events, reused so that a row costs no
	// allocation.
	fetched alerting.Row
	row     []byte

	// since is when the oldest update waiting was queued (under mu), for
	// the board's update delay.
	since     time.Time
	coalesced int64        // updates replaced by a newer one before sent (under mu)
	frames    atomic.Int64 // websocket messages written
}

// queued is a patient's latest update that a client has not been sent: a
// changed row, which the writer fetches from its source
// (alerting.RowPublisher) when it sends it, so that a row replaced before
// then costs nothing; or an event, the patient's discharge.
type queued struct {
	event *encoded // nil for a row change
	row   alerting.RowChange
}

// over returns what to queue in place of old, an update of the same
// patient the client has not been sent. A row carries the NEWS2 trend only
// when it changed, so a row change without the trend that replaces one
// with it must carry it on, or the client would never see it.
func (q queued) over(old queued, was bool) queued {
	if was && q.event == nil && old.event == nil {
		q.row.Trend = q.row.Trend || old.row.Trend
	}
	return q
}

// encoded is an event encoded at most once, when the first client's writer
// needs it, for every client that is sent it.
type encoded struct {
	once  sync.Once
	event Event
	b     []byte
	err   error
}

func (e *encoded) bytes() ([]byte, error) {
	e.once.Do(func() { e.b, e.err = json.Marshal(e.event) })
	return e.b, e.err
}

func (c *client) sees(w vward.WardID) bool { return c.wards == nil || c.wards[w] }

// Clients returns the number of connected clients.
func (h *Hub) Clients() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// audience is who watches what: clients seeing every ward, and for each
// ward the clients of the others that see it.
type audience struct {
	all   int
	wards map[vward.WardID]int
}

// watchedLocked rebuilds the audience from the clients. The caller holds
// mu for writing. Clients come and go rarely; rows are built thousands of
// times a second.
func (h *Hub) watchedLocked() {
	a := &audience{wards: map[vward.WardID]int{}}
	for c := range h.clients {
		if c.wards == nil {
			a.all++
			continue
		}
		for w, ok := range c.wards {
			if ok {
				a.wards[w]++
			}
		}
	}
	h.audience.Store(a)
}

// ListeningTo implements alerting.Listener: the monitor builds a patient's
// row only when a connected client sees the patient's ward.
func (h *Hub) ListeningTo(ward vward.WardID) bool {
	a := h.audience.Load()
	return a != nil && (a.all > 0 || a.wards[ward] > 0)
}

var _ alerting.RowPublisher = (*Hub)(nil)

// Publish implements alerting.Publisher: an alert event, or a patient's
// discharge, which replaces any row of the patient queued. It never blocks
// and never encodes: the clients' writers do, once for all of them.
func (h *Hub) Publish(e alerting.Event) {
	if e.Alert != nil {
		h.publishAlert(e)
		return
	}
	if e.Patient == "" {
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if len(h.clients) == 0 {
		return
	}
	q := queued{event: &encoded{event: eventOf(e)}}
	for c := range h.clients {
		if c.sees(e.Ward) {
			c.queue(e.Patient, q)
		}
	}
}

// RowChanged implements alerting.RowPublisher: what is queued is only
// which row changed, and the writer fetches the row when it sends it.
func (h *Hub) RowChanged(rc alerting.RowChange) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	q := queued{row: rc}
	for c := range h.clients {
		if c.sees(rc.Ward) {
			c.queue(rc.Patient, q)
		}
	}
}

// queue queues q as the patient's latest update and wakes the writer.
func (c *client) queue(id vward.PatientID, q queued) {
	c.mu.Lock()
	old, was := c.rows[id]
	if !was {
		c.stampLocked()
		c.order = append(c.order, id)
	} else {
		c.coalesced++
	}
	c.rows[id] = q.over(old, was)
	c.mu.Unlock()
	c.wakeWriter()
}

// stampLocked notes when the oldest update waiting was queued, if nothing
// waited before this one. c.mu is held.
func (c *client) stampLocked() {
	if len(c.order) == 0 && len(c.alerts) == 0 {
		c.since = time.Now()
	}
}

// wakeWriter tells the client's writer there is something to send.
func (c *client) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// pingEvery is how often the hub pings a board; a board not heard from
// (its pongs) for streamReadTimeout is gone, and its stream ends.
const (
	pingEvery         = 20 * time.Second
	streamReadTimeout = 3 * pingEvery
)

// serve runs one client until it goes away or ctx ends. The client is
// registered first and snapshot taken after, so that no change falls
// between them: one made before is in the snapshot, one after is queued
// and follows it (a row queued just before the snapshot may repeat what
// it shows, which is harmless). batch, if not nil, is conn's connection,
// which lets a wake's events go out in one write.
func (h *Hub) serve(ctx context.Context, conn *websocket.Conn, batch *batchConn, wards map[vward.WardID]bool, snapshot func() ([]byte, error)) {
	c := &client{conn: conn, wards: wards, rows: make(map[vward.PatientID]queued), wake: make(chan struct{}, 1)}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.watchedLocked()
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.watchedLocked()
		h.gone.add(c.counts())
		h.mu.Unlock()
		conn.Close()
	}()

	// The reader notices a closed connection and answers pings; the board
	// sends nothing else.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		conn.SetReadLimit(4096)
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}()

	snap, err := snapshot()
	if err != nil {
		h.log.Error("board snapshot", "err", err)
		return
	}
	if !h.write(c, websocket.TextMessage, snap) {
		return
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	// Writes are spaced at least drainGap apart: what arrives meanwhile
	// waits and goes in the next batch, one write for many events.
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	var lastDrain time.Time
	for {
		select {
		case <-ctx.Done():
			msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
			if cause := context.Cause(ctx); errors.Is(cause, ErrSessionEnded) {
				msg = websocket.FormatCloseMessage(websocket.ClosePolicyViolation, cause.Error())
			}
			_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return
		case <-gone:
			return
		case <-ping.C:
			if !h.write(c, websocket.PingMessage, nil) {
				return
			}
		case <-c.wake:
			if wait := time.Until(lastDrain.Add(drainGap)); wait > 0 {
				pause.Reset(wait)
				select {
				case <-pause.C:
				case <-ctx.Done():
					continue // the loop says goodbye
				case <-gone:
					return
				}
			}
			lastDrain = time.Now()
			c.mu.Lock()
			alerts, overflow := c.alerts, c.alertOverflow
			c.alerts = nil
			order, rows := c.order, c.rows
			c.order, c.rows = nil, make(map[vward.PatientID]queued, len(rows))
			since := c.since
			c.mu.Unlock()
			if overflow {
				h.drop(dropAlertOverflow, errors.New("alert queue overflowed"))
				return
			}
			if !h.writeWake(c, batch, alerts, order, rows) {
				return
			}
			if len(alerts) > 0 || len(order) > 0 {
				h.stats.delay.Observe(time.Since(since).Seconds())
			}
		}
	}
}

// writeWake writes what a wake found queued, alerts first (they are what a
// clinician must not miss), as one batch when it can.
func (h *Hub) writeWake(c *client, batch *batchConn, alerts [][]byte, order []vward.PatientID, rows map[vward.PatientID]queued) bool {
	if batch != nil {
		batch.Hold()
	}
	for _, b := range alerts {
		if !h.write(c, websocket.TextMessage, b) {
			return false
		}
	}
	for _, id := range order {
		b, ok := h.rowBytes(c, id, rows[id])
		if !ok {
			continue
		}
		if !h.write(c, websocket.TextMessage, b) {
			return false
		}
	}
	if batch != nil {
		if err := batch.Release(); err != nil {
			h.drop(dropWriteFailed, err)
			return false
		}
	}
	return true
}

// rowBytes is the JSON of a queued update, fetched if it is a row change.
// A row is fetched as it is now, and the patient may have moved ward or
// left since the change: a row of a ward the client does not see is not
// sent, nor one of a patient discharged since (whose "discharged" event
// has replaced the change, or follows it). The row is copied under the
// monitor's lock and encoded after, into the client's room.
func (h *Hub) rowBytes(c *client, id vward.PatientID, q queued) ([]byte, bool) {
	if q.event != nil {
		b, err := q.event.bytes()
		if err != nil {
			h.log.Error("encode board event", "err", err)
			return nil, false
		}
		return b, true
	}
	if !q.row.Rows.CopyRow(id, q.row.Trend, &c.fetched) || !c.sees(c.fetched.Ward) {
		return nil, false
	}
	c.row = appendRowEvent(c.row[:0], &c.fetched)
	return c.row, true
}

func (h *Hub) write(c *client, kind int, b []byte) bool {
	_ = c.conn.SetWriteDeadline(time.Now().Add(h.writeTimeout))
	if err := c.conn.WriteMessage(kind, b); err != nil {
		h.drop(dropWriteFailed, err)
		return false
	}
	c.frames.Add(1)
	return true
}
