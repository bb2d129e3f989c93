package mqttsource

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// inboundPublish is a PUBLISH the broker sent, as the connection read it.
type inboundPublish struct {
	Topic    string
	Payload  []byte
	ID       uint16 // the packet id; 0 at QoS 0
	QoS      byte   // 0 or 1: the connection leaves a QoS 2 PUBLISH to paho (fromPaho)
	Dup      bool   // the broker sent it before
	Retained bool
}

// errMalformed is wrapped by every error for a packet the connection
// could not read: the connection is then dropped, as paho drops one on a
// malformed packet, and the broker resends what was not acknowledged.
var errMalformed = errors.New("malformed MQTT packet from the broker")

// readInbound is Read when the connection reads its own PUBLISH packets
// (onPublish is set). It hands each QoS 0 or 1 PUBLISH to onPublish, on
// the calling goroutine (paho's reader), and gives paho the bytes of every
// other packet (CONNACK, SUBACK, PINGRESP, the PUBACKs of what vward
// publishes, a QoS 2 PUBLISH) as the broker sent them.
//
// Why: paho passes each PUBLISH from its reader through two more
// goroutines to the handler, and formats a store key for it (fmt) on the
// way: with its packet decoding, about a quarter of vward's CPU at 12,700
// msgs/s (docs/design/mqtt-read-off-the-connection.md). paho still owns the session:
// CONNECT, SUBSCRIBE, keepalive, reconnects, and what vward publishes.
// Messages are handed over in the order the broker sent them, and a
// handler that blocks (the pipeline's window is full) stops this
// connection reading, as paho's in-order router did.
func (c *bufferedConn) readInbound(p []byte) (int, error) {
	for len(c.passHead) == 0 && c.passBody == 0 {
		if err := c.nextPacket(); err != nil {
			return 0, err
		}
	}
	if len(c.passHead) > 0 {
		n := copy(p, c.passHead)
		c.passHead = c.passHead[n:]
		return n, nil
	}
	if len(p) > c.passBody {
		p = p[:c.passBody]
	}
	n, err := c.r.Read(p)
	c.passBody -= n
	return n, err
}

// nextPacket reads one packet's fixed header. A PUBLISH of QoS 0 or 1 is
// read whole and delivered; any other packet is left for paho: its header
// in passHead, its remaining length in passBody. mochi's packets decode
// the header and the PUBLISH.
func (c *bufferedConn) nextPacket() error {
	first, err := c.r.ReadByte()
	if err != nil {
		return err // unwrapped: paho recognises a closed connection by its text
	}
	c.headBuf[0], c.headLen = first, 1
	length, n, err := packets.DecodeLength((*lengthReader)(c))
	if err != nil && !errors.Is(err, packets.ErrMalformedVariableByteInteger) {
		return err
	}
	if err != nil || n > 4 {
		return fmt.Errorf("%w: packet type %d: remaining length longer than 4 bytes (% x)", errMalformed, first>>4, c.headBuf[:min(c.headLen, len(c.headBuf))])
	}
	var fh packets.FixedHeader
	fhErr := fh.Decode(first)
	if fh.Type != packets.Publish || fhErr == nil && fh.Qos > 1 {
		c.passHead, c.passBody = c.headBuf[:c.headLen], length
		return nil
	}
	if fhErr != nil {
		return fmt.Errorf("%w: PUBLISH %#02x: %w", errMalformed, first, fhErr)
	}
	fh.Remaining = length
	body, err := readBody(c.r, length)
	if err != nil {
		return err
	}
	// One Packet per connection, reused: mochi's Packet is 800 bytes,
	// and clearing a new one costs about a tenth of reading a message.
	pk := &c.pk
	pk.FixedHeader, pk.PacketID = fh, 0
	if err := pk.PublishDecode(body); err != nil {
		return malformedPublish(fh.Qos, body, err)
	}
	c.heard()
	c.onPublish(inboundPublish{
		// A copy of its own: the device id read from the topic outlives
		// the packet (alerting keeps readings), and must not keep the
		// whole packet's bytes alive.
		Topic:    strings.Clone(pk.TopicName),
		Payload:  pk.Payload,
		ID:       pk.PacketID,
		QoS:      fh.Qos,
		Dup:      fh.Dup,
		Retained: fh.Retain,
	})
	return nil
}

// lengthReader is the connection as the byte reader packets.DecodeLength
// reads a remaining length from: it keeps the bytes it read in headBuf,
// after the first, so that a packet left to paho is passed on as the
// broker sent it. (A conversion of c, so that reading a header neither
// allocates nor stores a pointer.)
type lengthReader bufferedConn

func (l *lengthReader) ReadByte() (byte, error) {
	b, err := l.r.ReadByte()
	if err == nil {
		if l.headLen < len(l.headBuf) {
			l.headBuf[l.headLen] = b
		}
		l.headLen++
	}
	return b, err
}

// malformedPublish says, in terms of its lengths, what mochi's decoder
// (err) found wrong with a QoS 0 or 1 PUBLISH whose body is body.
func malformedPublish(qos byte, body []byte, err error) error {
	if len(body) < 2 {
		return fmt.Errorf("%w: PUBLISH of %d bytes has no room for its topic length", errMalformed, len(body))
	}
	topicLen := int(binary.BigEndian.Uint16(body))
	what, need := "topic", 2+topicLen
	if qos > 0 {
		what, need = "topic and packet id", need+2
	}
	if need > len(body) {
		return fmt.Errorf("%w: PUBLISH of %d bytes cannot hold its %d-byte %s", errMalformed, len(body), topicLen, what)
	}
	return fmt.Errorf("%w: PUBLISH: %w", errMalformed, err)
}

// readBody reads the n bytes after a fixed header into a slice of their
// own: the pipeline keeps the payload of a rejected message. A length over
// a megabyte is taken as the bytes arrive rather than allocated up front,
// so that a length the stream does not carry (it ends first) costs no
// more than what did arrive.
func readBody(r io.Reader, n int) ([]byte, error) {
	const upFront = 1 << 20
	if n <= upFront {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	buf := bytes.NewBuffer(make([]byte, 0, upFront))
	got, err := buf.ReadFrom(io.LimitReader(r, int64(n)))
	if err == nil && got < int64(n) {
		err = io.ErrUnexpectedEOF
	}
	return buf.Bytes(), err
}

// heardEvery is how often a read tells paho's keepalive that the broker
// was heard from: paho pings when it has heard nothing for a keepalive
// period (30 s), and the PUBLISH packets read here never reach it.
const heardEvery = time.Second

// heard tells paho's keepalive, at most once every heardEvery.
func (c *bufferedConn) heard() {
	if c.received == nil {
		return
	}
	now := time.Now()
	if now.Sub(c.lastHeard) < heardEvery {
		return
	}
	c.lastHeard = now
	c.received()
}
