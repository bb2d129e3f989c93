package mqttsource

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"
)

// brokerSchemes are the broker URL schemes vward dials, each saying
// whether it is TLS.
var brokerSchemes = map[string]bool{
	"mqtt": false, "tcp": false,
	"ssl": true, "tls": true, "mqtts": true, "mqtt+ssl": true, "tcps": true,
}

// IsTLSURL reports whether a broker URL's scheme is one vward dials with
// TLS (mqtts://, ssl://, tls://, mqtt+ssl://, tcps://).
func IsTLSURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && brokerSchemes[u.Scheme]
}

// dialBuffered opens the broker connection with buffered reads and
// coalesced writes. paho reads each packet's fixed header and remaining
// length a few bytes at a time, and at thousands of messages a second
// those small reads were about a fifth of vward's CPU; and each PUBACK
// (written by bufferedConn.ack) is a write of its own, which unbuffered
// would be a syscall (and a TCP segment for the broker to take) per
// message, though acknowledgements leave in bursts, a stored batch at a
// time (docs/design/mqtt-read-off-the-connection.md).
func dialBuffered(uri *url.URL, o mqtt.ClientOptions) (*bufferedConn, error) {
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	var (
		conn net.Conn
		err  error
	)
	switch tlsScheme, ok := brokerSchemes[uri.Scheme]; {
	case !ok:
		return nil, fmt.Errorf("broker URL %s: scheme %q is not supported; use tcp:// or ssl://", uri.Redacted(), uri.Scheme)
	case tlsScheme:
		conn, err = tls.DialWithDialer(d, "tcp", uri.Host, o.TLSConfig)
		var op *net.OpError
		if err != nil && !(errors.As(err, &op) && op.Op == "dial") {
			err = &handshakeError{host: uri.Host, err: err}
		}
	default:
		conn, err = d.Dial("tcp", uri.Host)
	}
	if err != nil {
		return nil, err
	}
	return newBufferedConn(conn, writeDelay), nil
}

// handshakeError is a TLS handshake that failed once the TCP connection
// was open (explainTLS says what it means).
type handshakeError struct {
	host string
	err  error
}

func (e *handshakeError) Error() string { return "TLS handshake with " + e.host + ": " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// writeDelay is how long a write may wait for others to join it: well under
// anything MQTT times (keepalive, CONNACK), and an acknowledgement's delay
// costs nothing but the broker's memory for a millisecond more.
const writeDelay = time.Millisecond

// maxPendingWrite flushes at once a buffer this large.
const maxPendingWrite = 32 << 10

// closeFlushTimeout bounds the last send when the connection is closed.
const closeFlushTimeout = time.Second

// bufferedConn is a connection whose reads go through a buffer and whose
// writes are gathered for up to a delay and sent together. With onPublish
// set it also reads the devices' messages itself (readInbound), and vward
// acknowledges them on it (ack). A failed send is returned by the next
// Write. ack ignores it, but a failed send is not reported to paho's
// keepalive (sent), so within a keepalive period paho tries a PINGREQ,
// which fails too, and after its ping timeout takes the connection as lost
// (its reader, on a broken connection, usually finds out first). What was
// not sent is then unacknowledged and the broker resends it, which is
// safe (ack-after-store, and duplicates are harmless).
type bufferedConn struct {
	net.Conn
	r     *bufio.Reader
	delay time.Duration

	mu      sync.Mutex
	pending []byte
	timer   *time.Timer // armed while pending is not empty
	err     error       // of the last send
	closed  bool

	// sent, if not nil, is called after each successful send, for paho's
	// keepalive, which never sees the PUBACKs vward writes itself
	// (readOwnPublishes says why it must know).
	sent func()

	// onPublish, if not nil, is handed each QoS 0 or 1 PUBLISH the broker
	// sends, which paho then never sees (readInbound); received is told
	// that the broker was heard from, for paho's keepalive. Both are set
	// before the connection is first read, and called only by its reader.
	onPublish func(inboundPublish)
	received  func()
	lastHeard time.Time
	headBuf   [5]byte        // a fixed header: type and flags, remaining length
	headLen   int            // bytes of it read (lengthReader), up to one too many
	pk        packets.Packet // the PUBLISH being read (nextPacket)
	passHead  []byte         // of a packet for paho: header bytes not yet read
	passBody  int            // and how many bytes of its body are left
}

func newBufferedConn(conn net.Conn, delay time.Duration) *bufferedConn {
	c := &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 64<<10), delay: delay}
	c.timer = time.AfterFunc(time.Hour, c.flushTimer)
	c.timer.Stop()
	return c
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.onPublish != nil {
		return c.readInbound(p)
	}
	return c.r.Read(p)
}

// ack queues the PUBACK of a QoS 1 PUBLISH that came in on c. vward
// writes it here rather than through paho's Message.Ack, which passes each
// acknowledgement through three goroutines (and formats a store key with
// fmt) before it reaches this same Write: about a tenth of vward's CPU at
// 12,700 msgs/s (docs/design/mqtt-ack-on-the-arrival-connection.md). Every
// packet paho writes is a single Write, so the two never interleave within
// a packet. An ack that fails (the connection is gone) is dropped, as paho
// drops one: the broker resends the message, which is safe
// (ack-after-store, and duplicates are harmless).
func (c *bufferedConn) ack(id uint16) {
	p := puback
	binary.BigEndian.PutUint16(p[len(p)-2:], id)
	_, _ = c.Write(p[:])
}

// puback is an MQTT 3.1.1 PUBACK of packet id 0 as mochi's packets encode
// it; ack puts each message's id in its last two bytes. Encoding each one
// afresh (Packet.PubackEncode) would cost three times what ack does.
var puback = func() (p [4]byte) {
	var buf bytes.Buffer
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}}
	if err := pk.PubackEncode(&buf); err != nil || buf.Len() != len(p) {
		panic(fmt.Sprintf("mochi's PUBACK is % x (%v), not %d bytes", buf.Bytes(), err, len(p)))
	}
	copy(p[:], buf.Bytes())
	return p
}()

// Write queues p to be sent within the delay.
func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, net.ErrClosed
	}
	if len(c.pending) == 0 {
		c.timer.Reset(c.delay)
	}
	c.pending = append(c.pending, p...)
	if len(c.pending) >= maxPendingWrite {
		c.flushLocked()
	}
	return len(p), nil
}

func (c *bufferedConn) flushTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

// flushLocked sends what is pending. The caller holds mu, so writes wait
// for the send, as they would for an unbuffered connection.
func (c *bufferedConn) flushLocked() {
	c.timer.Stop()
	if len(c.pending) == 0 || c.err != nil {
		return
	}
	_, c.err = c.Conn.Write(c.pending)
	if c.err == nil && c.sent != nil {
		c.sent()
	}
	if cap(c.pending) > 4*maxPendingWrite {
		c.pending = nil // do not keep a burst's buffer
	} else {
		c.pending = c.pending[:0]
	}
}

// Close sends what is pending (paho writes DISCONNECT and closes at once),
// then closes the connection. paho also closes a connection to break a
// write that is stuck on a broker that stopped reading, so the send is
// given a deadline, which also frees a stuck send holding mu.
func (c *bufferedConn) Close() error {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	c.mu.Lock()
	if !c.closed {
		c.flushLocked()
		c.closed = true
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
