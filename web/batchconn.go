package web

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxBatch sends a held batch once it is this large.
const maxBatch = 64 << 10

// batchConn lets the hub send a wake's worth of board events in one write.
// Between Hold and Release, what gorilla writes (whole frames, one frame's
// writes at a time) gathers in a buffer; otherwise writes go straight out,
// after anything gathered, so frames keep their order. At thousands of
// readings a second, a write (and a deadline timer update) per event was a
// large share of vward's CPU (docs/design/board-batched-writes.md).
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	holding  bool
	buf      []byte
	deadline time.Time // the write deadline gorilla asked for
	applied  time.Time // the one set on the socket
}

// Hold gathers writes until Release.
func (c *batchConn) Hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// Release sends what was gathered and stops gathering.
func (c *batchConn) Release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	return c.sendLocked()
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if c.holding && len(c.buf) < maxBatch {
		return len(p), nil
	}
	if err := c.sendLocked(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SetWriteDeadline takes effect at the next send: gorilla sets it for
// every frame, and a socket deadline is a runtime timer update.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *batchConn) sendLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	if !c.deadline.Equal(c.applied) {
		if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
			return err
		}
		c.applied = c.deadline
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > 2*maxBatch {
		c.buf = nil // do not keep a burst's buffer
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// hijacker hands gorilla a batchConn in place of the hijacked connection.
type hijacker struct {
	http.ResponseWriter
	conn *batchConn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &batchConn{Conn: nc}
	return h.conn, brw, nil
}

// upgrade makes r a websocket whose writes the hub can batch.
func upgrade(w http.ResponseWriter, r *http.Request) (*websocket.Conn, *batchConn, error) {
	h := &hijacker{ResponseWriter: w}
	conn, err := upgrader.Upgrade(h, r, nil)
	if err != nil {
		return nil, nil, err
	}
	// The request's read deadline (RequestReadTimeout) stays on the
	// hijacked connection. A board answers the hub's pings; one that has
	// not been heard from for streamReadTimeout is gone.
	_ = conn.SetReadDeadline(time.Now().Add(streamReadTimeout))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(streamReadTimeout)) })
	return conn, h.conn, nil
}
