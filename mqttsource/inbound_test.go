package mqttsource

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// inboundConn is a buffered connection reading stream, a byte at a time
// from below (the worst a socket does), recording what it hands over.
func inboundConn(stream []byte) (*bufferedConn, *[]string) {
	var log []string
	c := &bufferedConn{r: bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(stream)), 64<<10)}
	c.onPublish = func(p inboundPublish) {
		log = append(log, fmt.Sprintf("vward: PUBLISH qos=%d id=%d dup=%t retain=%t %s %q", p.QoS, p.ID, p.Dup, p.Retained, p.Topic, p.Payload))
	}
	return c, &log
}

func publishPacket(qos byte, id uint16, dup, retain bool, topic string, payload []byte) *packets.PublishPacket {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.MessageID, p.Dup, p.Retain, p.TopicName, p.Payload = qos, id, dup, retain, topic, payload
	return p
}

// The connection hands vward every QoS 0 and 1 PUBLISH, whole and in the
// broker's order, and paho every other packet, byte for byte: the stream
// is written by paho's own encoder, and paho's decoder reads what is left.
func TestBufferedConnReadsItsOwnPublishes(t *testing.T) {
	large := bytes.Repeat([]byte("x"), 20000) // a 3-byte remaining length
	connack := packets.NewControlPacket(packets.Connack).(*packets.ConnackPacket)
	connack.SessionPresent = true
	suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
	suback.MessageID, suback.ReturnCodes = 9, []byte{1, 1}
	puback := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
	puback.MessageID = 77
	sent := []packets.ControlPacket{
		connack,
		publishPacket(1, 0x0102, true, false, "devices/ox-1/readings", []byte(`{"v":1}`)), // resent before SUBSCRIBE
		publishPacket(1, 0xfffe, false, false, "devices/ox-1/readings", nil),
		suback,
		publishPacket(0, 0, false, true, "devices/ox-1/status", []byte("offline")),
		publishPacket(1, 3, false, false, "devices/ox-2/readings", large),
		puback, // of a rejection notice vward published
		publishPacket(2, 4, false, false, "devices/ox-3/readings", []byte("qos 2")),
		packets.NewControlPacket(packets.Pingresp),
		publishPacket(1, 5, false, false, "", []byte("no topic")),
	}
	var stream bytes.Buffer
	var want []string
	for _, p := range sent {
		if err := p.Write(&stream); err != nil {
			t.Fatal(err)
		}
		if pub, ok := p.(*packets.PublishPacket); ok && pub.Qos < 2 {
			want = append(want, fmt.Sprintf("vward: PUBLISH qos=%d id=%d dup=%t retain=%t %s %q", pub.Qos, pub.MessageID, pub.Dup, pub.Retain, pub.TopicName, pub.Payload))
		} else {
			want = append(want, "paho: "+p.String())
		}
	}

	c, got := inboundConn(stream.Bytes())
	for {
		p, err := packets.ReadPacket(c)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("paho's read after %d packets: %v", len(*got), err)
		}
		*got = append(*got, "paho: "+p.String())
	}
	if strings.Join(*got, "\n") != strings.Join(want, "\n") {
		t.Errorf("handed over:\n%s\nwant:\n%s", strings.Join(*got, "\n"), strings.Join(want, "\n"))
	}
}

// A packet the connection cannot read is an error that says what was
// wrong (paho then drops the connection, and the broker resends), not a
// crash, a hang or a message lost quietly.
func TestBufferedConnRejectsMalformedPackets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{"remaining length over 4 bytes", []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, "remaining length longer than 4 bytes"},
		{"PUBLISH without a topic length", []byte{0x30, 1, 0}, "PUBLISH of 1 bytes has no room for its topic length"},
		{"topic longer than the packet", []byte{0x30, 5, 0, 9, 'a', 'b', 'c'}, "PUBLISH of 5 bytes cannot hold its 9-byte topic"},
		{"QoS 1 with no packet id", []byte{0x32, 3, 0, 1, 'a'}, "PUBLISH of 3 bytes cannot hold its 1-byte topic and packet id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, got := inboundConn(tc.stream)
			_, err := c.Read(make([]byte, 16))
			if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want errMalformed saying %q", err, tc.want)
			}
			if len(*got) != 0 {
				t.Errorf("handed vward %q from a malformed packet", *got)
			}
		})
	}

	// A connection that ends inside a packet is the connection's error.
	for _, cut := range []int{1, 2, 10} {
		var stream bytes.Buffer
		_ = publishPacket(1, 1, false, false, "devices/ox-1/readings", []byte("{}")).Write(&stream)
		c, got := inboundConn(stream.Bytes()[:cut])
		if _, err := c.Read(make([]byte, 16)); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v, want end of file", cut, err)
		}
		if len(*got) != 0 {
			t.Errorf("cut at %d: handed vward %q", cut, *got)
		}
	}
}

// paho's keepalive hears of the PUBLISH packets it never sees, but not at
// the cost of a clock read and store per message.
func TestBufferedConnReportsWhatItHears(t *testing.T) {
	var stream bytes.Buffer
	for i := range 100 {
		_ = publishPacket(1, uint16(i+1), false, false, "devices/ox-1/readings", []byte("{}")).Write(&stream)
	}
	c, got := inboundConn(stream.Bytes())
	heard := 0
	c.received = func() { heard++ }
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v, want EOF after the publishes", err)
	}
	if len(*got) != 100 {
		t.Fatalf("handed over %d publishes, want 100", len(*got))
	}
	if heard != 1 { // 100 packets read well within heardEvery
		t.Errorf("keepalive told %d times, want once", heard)
	}
}

// No input makes the connection panic or hang: it ends in an error, after
// handing vward only PUBLISH packets that fit their own length.
func FuzzBufferedConnRead(f *testing.F) {
	var stream bytes.Buffer
	_ = publishPacket(1, 1, true, false, "devices/ox-1/readings", []byte(`{"v":1}`)).Write(&stream)
	_ = packets.NewControlPacket(packets.Pingresp).Write(&stream)
	_ = publishPacket(0, 0, false, true, "devices/ox-1/status", []byte("online")).Write(&stream)
	f.Add(stream.Bytes())
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x32, 3, 0, 1, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &bufferedConn{r: bufio.NewReader(bytes.NewReader(data))}
		handed := 0
		c.onPublish = func(p inboundPublish) {
			handed += 2 + len(p.Topic) + len(p.Payload)
			if p.QoS == 1 {
				handed += 2
			}
		}
		passed := 0
		buf := make([]byte, 7)
		for range len(data) + 1 { // each Read consumes a byte or more, or fails
			n, err := c.Read(buf)
			passed += n
			if err != nil {
				if handed+passed > len(data) {
					t.Fatalf("handed over %d bytes of a %d-byte stream", handed+passed, len(data))
				}
				return
			}
			if n == 0 {
				t.Fatal("Read returned nothing and no error")
			}
		}
		t.Fatal("Read never ended")
	})
}
