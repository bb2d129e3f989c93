package simulator

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/mempool"
	"github.com/mochi-mqtt/server/v2/packets"

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
// DISCONNECT, each encoded and decoded by mochi's packets, the codec
// vward's own connection uses. Unacknowledged messages are resent, in
// order, on reconnect.

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
		_, _ = nc.Write(disconnectPacket)
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
		nc, r, err := c.dial()
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
		err = c.readLoop(nc, r)
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

// dial opens a TCP (or TLS) connection and completes CONNECT/CONNACK. It
// returns the connection and the reader of what the broker sends next.
func (c *conn) dial() (net.Conn, *bufio.Reader, error) {
	f := c.f
	select {
	case f.dialSlots <- struct{}{}:
	case <-f.done:
		return nil, nil, errors.New("fleet closed")
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
		return nil, nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(connectPacket(c.clientID, c.username, c.password, f.keepAlive)); err != nil {
		nc.Close()
		return nil, nil, err
	}
	r := bufio.NewReaderSize(nc, 64)
	fh, err := readHeader(r)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if fh.Type != packets.Connack || fh.Remaining != 2 {
		nc.Close()
		return nil, nil, fmt.Errorf("expected CONNACK, got packet type %d of %d bytes", fh.Type, fh.Remaining)
	}
	var body [2]byte
	ack := packets.Packet{FixedHeader: fh}
	if _, err := io.ReadFull(r, body[:]); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if err := ack.ConnackDecode(body[:]); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("read CONNACK: %w", err)
	}
	if ack.ReasonCode != packets.CodeSuccess.Code {
		nc.Close()
		return nil, nil, fmt.Errorf("%w: %s", ErrRefused, connackReason(ack.ReasonCode))
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, r, nil
}

// connackReason says what an MQTT 3.1.1 CONNACK's return code means
// (mochi's codes name them, but with no text).
func connackReason(rc byte) string {
	switch rc {
	case packets.Err3UnsupportedProtocolVersion.Code:
		return "unacceptable protocol version"
	case packets.Err3ClientIdentifierNotValid.Code:
		return "client identifier rejected"
	case packets.Err3ServerUnavailable.Code:
		return "server unavailable"
	case packets.ErrMalformedUsernameOrPassword.Code:
		return "bad username or password"
	case packets.Err3NotAuthorized.Code:
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
	err := writePublish(nc, m.topic, m.id, m.payload, dup)
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
	_, err := nc.Write(pingreqPacket)
	c.wmu.Unlock()
	if err != nil {
		nc.Close()
	}
}

// readLoop handles PUBACKs (and PINGRESPs) from r, what the broker sends
// on nc, until the connection fails.
func (c *conn) readLoop(nc net.Conn, r *bufio.Reader) error {
	// The read deadline is moved at most every quarter keepalive rather
	// than per packet (a runtime timer update each): the broker is then
	// given between 1.25 and 1.5 keepalives to answer.
	var moved time.Time
	for {
		if now := time.Now(); now.Sub(moved) >= c.f.keepAlive/4 {
			moved = now
			_ = nc.SetReadDeadline(now.Add(c.f.keepAlive * 3 / 2))
		}
		fh, err := readHeader(r)
		if err != nil {
			return err
		}
		switch fh.Type {
		case packets.Puback:
			var id [2]byte
			if fh.Remaining != len(id) {
				return fmt.Errorf("PUBACK of %d bytes", fh.Remaining)
			}
			if _, err := io.ReadFull(r, id[:]); err != nil {
				return err
			}
			pid, err := pubackID(fh, id[:])
			if err != nil {
				return err
			}
			c.ack(pid)
		default: // PINGRESP and anything unexpected: skip it
			if _, err := r.Discard(fh.Remaining); err != nil {
				return err
			}
		}
	}
}

// pubackID decodes the packet id of a PUBACK whose body is body. It is
// not inlined, so that its 800-byte Packet stays out of readLoop's frame,
// which every connected device's goroutine holds while it waits to read:
// inlined, it doubled each device's stack, from 4 KB to 8 KB.
//
//go:noinline
func pubackID(fh packets.FixedHeader, body []byte) (uint16, error) {
	pk := packets.Packet{FixedHeader: fh}
	if err := pk.PubackDecode(body); err != nil {
		return 0, fmt.Errorf("PUBACK: %w", err)
	}
	return pk.PacketID, nil
}

// readHeader reads a packet's fixed header from the broker.
func readHeader(r *bufio.Reader) (packets.FixedHeader, error) {
	var fh packets.FixedHeader
	first, err := r.ReadByte()
	if err != nil {
		return fh, err
	}
	if err := fh.Decode(first); err != nil {
		return fh, fmt.Errorf("packet %#02x from the broker: %w", first, err)
	}
	fh.Remaining, _, err = packets.DecodeLength(r)
	return fh, err
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

// connectPacket is a device's CONNECT: MQTT 3.1.1, a clean session (a
// device that only publishes needs none kept), with its credentials.
func connectPacket(clientID, user, pass string, keepAlive time.Duration) []byte {
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 4,
		Connect: packets.ConnectParams{
			ProtocolName:     []byte("MQTT"),
			Clean:            true,
			Keepalive:        uint16(keepAlive / time.Second),
			ClientIdentifier: clientID,
			UsernameFlag:     user != "",
			Username:         []byte(user),
			PasswordFlag:     pass != "",
			Password:         []byte(pass),
		},
	}
	var buf bytes.Buffer
	_ = pk.ConnectEncode(&buf) // fails only for MQTT 5 properties
	return buf.Bytes()
}

// pingreqPacket and disconnectPacket are the same for every device.
var (
	pingreqPacket = func() []byte {
		var buf bytes.Buffer
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}}
		_ = pk.PingreqEncode(&buf)
		return buf.Bytes()
	}()
	disconnectPacket = func() []byte {
		var buf bytes.Buffer
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}}
		_ = pk.DisconnectEncode(&buf)
		return buf.Bytes()
	}()
)

// writePublish writes a QoS 1 PUBLISH of payload on topic to w in one
// Write, DUP when resent. It encodes into a buffer of mochi's pool, which
// mochi's encoder also draws on: a message costs no buffer of its own.
func writePublish(w io.Writer, topic string, id uint16, payload []byte, dup bool) error {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Dup: dup},
		TopicName:   topic,
		PacketID:    id,
		Payload:     payload,
	}
	buf := mempool.GetBuffer()
	defer mempool.PutBuffer(buf)
	if err := pk.PublishEncode(buf); err != nil {
		return fmt.Errorf("encode PUBLISH %d: %w", id, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
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
