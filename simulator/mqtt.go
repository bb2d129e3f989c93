package simulator

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vward/vward"
)

// A device connection is a minimal MQTT 3.1.1 client that publishes at QoS 1
// and does nothing else. A paho client per device costs several goroutines,
// channels and buffers each; at 20,000 devices on two cores that is the
// bottleneck, not the broker. This one costs one goroutine (blocked reading
// PUBACKs) and a few hundred bytes while connected, and nothing while its
// device is offline. Writes are made by the fleet's workers.
//
// It implements exactly what a device needs: CONNECT with username and
// password, PUBLISH QoS 1 with DUP on resend, PUBACK, PINGREQ/PINGRESP and
// DISCONNECT. Unacknowledged messages are resent, in order, on reconnect.

// ErrRefused wraps a CONNACK refusal (bad credentials, not authorised).
var ErrRefused = errors.New("broker refused the connection")

// broker is a parsed broker URL.
type broker struct {
	addr string
	tls  *tls.Config
}

// parseBroker accepts tcp://, mqtt://, ssl://, tls:// and mqtts:// URLs,
// or a bare host:port.
func parseBroker(raw string) (broker, error) {
	if !strings.Contains(raw, "://") {
		raw = "tcp://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return broker{}, fmt.Errorf("broker url %q: %w", raw, err)
	}
	b := broker{addr: u.Host}
	switch u.Scheme {
	case "tcp", "mqtt":
		if u.Port() == "" {
			b.addr = net.JoinHostPort(u.Hostname(), "1883")
		}
	case "ssl", "tls", "mqtts":
		if u.Port() == "" {
			b.addr = net.JoinHostPort(u.Hostname(), "8883")
		}
		b.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	default:
		return broker{}, fmt.Errorf("broker url %q: scheme %q is not tcp, mqtt, ssl, tls or mqtts", raw, u.Scheme)
	}
	if u.Hostname() == "" {
		return broker{}, fmt.Errorf("broker url %q has no host", raw)
	}
	return b, nil
}

type outMsg struct {
	id      uint16
	topic   string
	payload []byte
	written int // connection generation it was last written on; 0: never
}

// conn is one device's connection.
type conn struct {
	f                  *Fleet
	device             vward.DeviceID
	clientID, username string
	password           string
	topic              string

	mu        sync.Mutex // guards what follows
	nc        net.Conn   // nil while down
	gen       int        // bumped on every successful connect
	running   bool       // a run goroutine exists
	wantOff   bool       // the scenario has taken the device offline
	closing   bool       // the fleet is shutting down
	nextID    uint16
	inflight  map[uint16]*outMsg
	order     []*outMsg // unacknowledged, in publish order (acked ones pruned lazily)
	lastWrite time.Time
	refusal   error

	wmu sync.Mutex // serialises writes to nc
	// wdeadline is when the write deadline on wnc was last moved (guarded
	// by wmu): moving it costs a runtime timer update, so a busy device
	// moves it at most every writeDeadlineSlack, not on every write.
	wdeadline time.Time
	wnc       net.Conn
}

// writeTimeout bounds a write to the broker; writeDeadlineSlack is how
// stale the deadline may get before it is moved (so a write is given
// between writeTimeout-writeDeadlineSlack and writeTimeout).
const (
	writeTimeout       = 10 * time.Second
	writeDeadlineSlack = time.Second
)

// extendWriteDeadline moves nc's write deadline unless it was moved
// recently. The caller holds wmu.
func (c *conn) extendWriteDeadline(nc net.Conn) {
	now := time.Now()
	if c.wnc == nc && now.Sub(c.wdeadline) < writeDeadlineSlack {
		return
	}
	c.wnc, c.wdeadline = nc, now
	_ = nc.SetWriteDeadline(now.Add(writeTimeout))
}

func newConn(f *Fleet, id Identity) *conn {
	user := id.Username
	if user == "" {
		user = string(id.Device)
	}
	return &conn{
		f: f, device: id.Device, clientID: "sim-" + string(id.Device), username: user, password: id.Password,
		topic: vward.ReadingsTopic(id.Device), inflight: map[uint16]*outMsg{},
	}
}

// online starts connecting (if not already) and keeps the connection up
// until offline or shutdown.
func (c *conn) online() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wantOff = false
	if c.running || c.closing {
		return
	}
	c.running = true
	c.f.wg.Add(1)
	go c.run()
}

// offline drops the connection abruptly, as a lost line does: no
// DISCONNECT, so the broker sees the connection die.
func (c *conn) offline() {
	c.mu.Lock()
	c.wantOff = true
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

// shutdown ends the connection cleanly with DISCONNECT.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.closing = true
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		c.wmu.Lock()
		c.wnc = nil // this deadline is not extendWriteDeadline's
		_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = nc.Write([]byte{0xE0, 0x00})
		c.wmu.Unlock()
		nc.Close()
	}
}

func (c *conn) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.wantOff || c.closing {
		c.running = false
		return true
	}
	return false
}

// run keeps the device connected until it is taken offline or the fleet
// closes, reconnecting with backoff after failures.
func (c *conn) run() {
	defer c.f.wg.Done()
	backoff := 200 * time.Millisecond
	for {
		if c.stopped() {
			return
		}
		nc, err := c.dial()
		if err != nil {
			if errors.Is(err, ErrRefused) {
				c.f.Stats.Refused.Add(1)
				c.mu.Lock()
				first := c.refusal == nil
				c.refusal = err
				c.mu.Unlock()
				if first {
					c.f.log.Warn("device refused by broker", "device", c.device, "err", err)
				}
				backoff = 5 * time.Second
			} else {
				c.f.Stats.ConnectFailures.Add(1)
			}
			if !c.f.sleep(backoff) {
				c.mu.Lock()
				c.running = false
				c.mu.Unlock()
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 200 * time.Millisecond
		if !c.up(nc) {
			nc.Close()
			continue // stopped() decides
		}
		c.f.Stats.Connected.Add(1)
		err = c.readLoop(nc)
		c.f.Stats.Connected.Add(-1)
		c.mu.Lock()
		c.nc = nil
		planned := c.wantOff || c.closing
		c.mu.Unlock()
		nc.Close()
		if !planned {
			c.f.Stats.Lost.Add(1)
			c.f.log.Debug("device connection lost", "device", c.device, "err", err)
		}
	}
}

// dial opens a TCP (or TLS) connection and completes CONNECT/CONNACK.
func (c *conn) dial() (net.Conn, error) {
	f := c.f
	select {
	case f.dialSlots <- struct{}{}:
	case <-f.done:
		return nil, errors.New("fleet closed")
	}
	defer func() { <-f.dialSlots }()
	d := net.Dialer{Timeout: 10 * time.Second}
	var nc net.Conn
	var err error
	if f.broker.tls != nil {
		nc, err = (&tls.Dialer{NetDialer: &d, Config: f.broker.tls}).Dial("tcp", f.broker.addr)
	} else {
		nc, err = d.Dial("tcp", f.broker.addr)
	}
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(connectPacket(c.clientID, c.username, c.password, f.keepAlive)); err != nil {
		nc.Close()
		return nil, err
	}
	var ack [4]byte
	if _, err := io.ReadFull(nc, ack[:]); err != nil {
		nc.Close()
		return nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if ack[0] != 0x20 || ack[1] != 0x02 {
		nc.Close()
		return nil, fmt.Errorf("expected CONNACK, got packet type %#x", ack[0])
	}
	if ack[3] != 0 {
		nc.Close()
		return nil, fmt.Errorf("%w: %s", ErrRefused, connackReason(ack[3]))
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

func connackReason(rc byte) string {
	switch rc {
	case 1:
		return "unacceptable protocol version"
	case 2:
		return "client identifier rejected"
	case 3:
		return "server unavailable"
	case 4:
		return "bad username or password"
	case 5:
		return "not authorised"
	}
	return fmt.Sprintf("return code %d", rc)
}

// up makes nc the live connection and resends what was never
// acknowledged, in order; it reports false if the device was taken offline
// meanwhile.
func (c *conn) up(nc net.Conn) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	if c.wantOff || c.closing {
		c.mu.Unlock()
		return false
	}
	c.nc = nc
	c.gen++
	c.refusal = nil
	gen := c.gen
	var resend []*outMsg
	for _, m := range c.order {
		if c.inflight[m.id] == m {
			resend = append(resend, m)
		}
	}
	c.mu.Unlock()
	for _, m := range resend {
		if err := c.writePublishLocked(nc, gen, m); err != nil {
			nc.Close()
			return true // the read loop sees the closed connection
		}
	}
	return true
}

// publish queues a message and writes it if the device is connected.
func (c *conn) publish(topic string, payload []byte) {
	if topic == "" {
		topic = c.topic
	}
	c.mu.Lock()
	m := &outMsg{topic: topic, payload: payload}
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if c.inflight[c.nextID] == nil {
			break
		}
	}
	m.id = c.nextID
	c.inflight[m.id] = m
	c.order = append(c.order, m)
	nc, gen := c.nc, c.gen
	c.mu.Unlock()
	c.f.Stats.InFlight.Add(1)
	if nc == nil {
		return // sent when the device connects
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.writePublishLocked(nc, gen, m); err != nil {
		nc.Close()
	}
}

// writePublishLocked writes m on nc unless it was already written on this
// connection generation. The caller holds wmu.
func (c *conn) writePublishLocked(nc net.Conn, gen int, m *outMsg) error {
	c.mu.Lock()
	if c.gen != gen || c.nc != nc || m.written == gen || c.inflight[m.id] != m {
		c.mu.Unlock()
		return nil
	}
	dup := m.written != 0
	m.written = gen
	c.lastWrite = time.Now()
	c.mu.Unlock()
	if dup {
		c.f.Stats.Resent.Add(1)
	}
	c.extendWriteDeadline(nc)
	_, err := nc.Write(publishPacket(m.topic, m.id, m.payload, dup))
	if err != nil {
		c.f.Stats.WriteErrors.Add(1)
	}
	return err
}

// ping sends PINGREQ if nothing was written for a while, so that the
// broker's keepalive does not drop an idle device.
func (c *conn) ping(idle time.Duration) {
	c.mu.Lock()
	nc, quiet := c.nc, time.Since(c.lastWrite) > idle
	if nc != nil && quiet {
		c.lastWrite = time.Now()
	}
	c.mu.Unlock()
	if nc == nil || !quiet {
		return
	}
	c.wmu.Lock()
	c.extendWriteDeadline(nc)
	_, err := nc.Write([]byte{0xC0, 0x00})
	c.wmu.Unlock()
	if err != nil {
		nc.Close()
	}
}

// readLoop handles PUBACKs (and PINGRESPs) until the connection fails.
func (c *conn) readLoop(nc net.Conn) error {
	r := bufio.NewReaderSize(nc, 64)
	// The read deadline is moved at most every quarter keepalive rather
	// than per packet (a runtime timer update each): the broker is then
	// given between 1.25 and 1.5 keepalives to answer.
	var moved time.Time
	for {
		if now := time.Now(); now.Sub(moved) >= c.f.keepAlive/4 {
			moved = now
			_ = nc.SetReadDeadline(now.Add(c.f.keepAlive * 3 / 2))
		}
		h, err := r.ReadByte()
		if err != nil {
			return err
		}
		n, err := readRemaining(r)
		if err != nil {
			return err
		}
		switch h >> 4 {
		case 4: // PUBACK
			var id [2]byte
			if n != 2 {
				return fmt.Errorf("PUBACK of %d bytes", n)
			}
			if _, err := io.ReadFull(r, id[:]); err != nil {
				return err
			}
			c.ack(binary.BigEndian.Uint16(id[:]))
		default: // PINGRESP and anything unexpected: skip it
			if _, err := r.Discard(n); err != nil {
				return err
			}
		}
	}
}

func (c *conn) ack(id uint16) {
	c.mu.Lock()
	m := c.inflight[id]
	if m == nil || m.written == 0 {
		c.mu.Unlock()
		return
	}
	delete(c.inflight, id)
	// Prune acknowledged messages from the front of the order list.
	i := 0
	for i < len(c.order) && c.inflight[c.order[i].id] != c.order[i] {
		i++
	}
	if i > 0 {
		c.order = append(c.order[:0], c.order[i:]...)
	}
	c.mu.Unlock()
	c.f.Stats.InFlight.Add(-1)
	c.f.Stats.Acked.Add(1)
}

// pending is how many messages await a PUBACK, and whether the device is
// offline by the scenario's choice.
func (c *conn) pending() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.inflight), c.wantOff
}

func readRemaining(r *bufio.Reader) (int, error) {
	n, shift := 0, 0
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			return n, nil
		}
		shift += 7
	}
	return 0, errors.New("malformed remaining length")
}

func appendRemaining(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func connectPacket(clientID, user, pass string, keepAlive time.Duration) []byte {
	var body []byte
	body = appendString(body, "MQTT")
	flags := byte(0x02) // clean session: a device that only publishes needs no session
	if user != "" {
		flags |= 0x80
	}
	if pass != "" {
		flags |= 0x40
	}
	body = append(body, 4, flags)
	body = binary.BigEndian.AppendUint16(body, uint16(keepAlive/time.Second))
	body = appendString(body, clientID)
	if user != "" {
		body = appendString(body, user)
	}
	if pass != "" {
		body = appendString(body, pass)
	}
	out := appendRemaining([]byte{0x10}, len(body))
	return append(out, body...)
}

func publishPacket(topic string, id uint16, payload []byte, dup bool) []byte {
	h := byte(0x32) // PUBLISH, QoS 1
	if dup {
		h |= 0x08
	}
	n := 2 + len(topic) + 2 + len(payload)
	out := make([]byte, 0, 5+n)
	out = appendRemaining(append(out, h), n)
	out = appendString(out, topic)
	out = binary.BigEndian.AppendUint16(out, id)
	return append(out, payload...)
}

// sleep waits d or until the fleet closes; it reports false on close.
func (f *Fleet) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.done:
		return false
	}
}
