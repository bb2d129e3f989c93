package mqttsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
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

// mqttPublish is the MQTT control packet type of PUBLISH.
const mqttPublish = 3

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
// in passHead, its remaining length in passBody.
func (c *bufferedConn) nextPacket() error {
	first, err := c.r.ReadByte()
	if err != nil {
		return err // unwrapped: paho recognises a closed connection by its text
	}
	head := append(c.headBuf[:0], first)
	length := 0
	for i := 0; ; i++ {
		b, err := c.r.ReadByte()
		if err != nil {
			return err
		}
		head = append(head, b)
		length |= int(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return fmt.Errorf("%w: packet type %d: remaining length longer than 4 bytes (% x)", errMalformed, first>>4, head)
		}
	}
	qos := (first >> 1) & 3
	if first>>4 != mqttPublish || qos > 1 {
		c.passHead, c.passBody = head, length
		return nil
	}
	body, err := readBody(c.r, length)
	if err != nil {
		return err
	}
	pub, err := parsePublish(first, body)
	if err != nil {
		return err
	}
	c.heard()
	c.onPublish(pub)
	return nil
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

// parsePublish reads a QoS 0 or 1 PUBLISH's variable header and payload
// from body, the packet after its fixed header.
func parsePublish(first byte, body []byte) (inboundPublish, error) {
	p := inboundPublish{QoS: (first >> 1) & 3, Dup: first&0x08 != 0, Retained: first&0x01 != 0}
	if len(body) < 2 {
		return p, fmt.Errorf("%w: PUBLISH of %d bytes has no room for its topic length", errMalformed, len(body))
	}
	topicLen := int(body[0])<<8 | int(body[1])
	end := 2 + topicLen
	if p.QoS > 0 {
		end += 2
	}
	if end > len(body) {
		what := "topic"
		if p.QoS > 0 {
			what = "topic and packet id"
		}
		return p, fmt.Errorf("%w: PUBLISH of %d bytes cannot hold its %d-byte %s", errMalformed, len(body), topicLen, what)
	}
	if p.QoS > 0 {
		p.Topic = string(body[2 : end-2])
		p.ID = uint16(body[end-2])<<8 | uint16(body[end-1])
	} else {
		p.Topic = string(body[2:end])
	}
	p.Payload = body[end:]
	return p, nil
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
