package mqttsource

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// Small writes (paho's PUBACKs) are gathered and reach the socket
// together, in order, when the delay ends or the connection closes.
func TestBufferedConnGathersWrites(t *testing.T) {
	client, server := tcpPair(t)
	under := &countingConn{Conn: client}
	c := newBufferedConn(under, time.Hour) // only Close or size flushes
	var want bytes.Buffer
	for i := range 1000 {
		p := []byte{0x40, 0x02, byte(i >> 8), byte(i)}
		want.Write(p)
		if n, err := c.Write(p); n != 4 || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if n := under.writes.Load(); n != 0 {
		t.Fatalf("%d socket writes before the delay or Close, want 0", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("peer read %d bytes, want the %d written, in order", len(got), want.Len())
	}
	if n := under.writes.Load(); n != 1 {
		t.Errorf("%d socket writes for 1,000 packets, want 1", n)
	}
	if _, err := c.Write([]byte{0xc0, 0}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after Close: %v, want net.ErrClosed", err)
	}
}

// A write is sent when the delay ends, without waiting for more; a large
// burst is sent as soon as it passes the size bound.
func TestBufferedConnSendsAfterDelayOrSize(t *testing.T) {
	client, server := tcpPair(t)
	c := newBufferedConn(client, time.Millisecond)
	if _, err := c.Write([]byte{0xc0, 0x00}); err != nil {
		t.Fatal(err)
	}
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [2]byte
	if _, err := io.ReadFull(server, b[:]); err != nil || b != [2]byte{0xc0, 0} {
		t.Fatalf("peer read %v, %v; want the PINGREQ after the delay", b, err)
	}

	client2, server2 := tcpPair(t)
	under := &countingConn{Conn: client2}
	c2 := newBufferedConn(under, time.Hour)
	big := bytes.Repeat([]byte{1}, maxPendingWrite)
	if _, err := c2.Write(big); err != nil {
		t.Fatal(err)
	}
	_ = server2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(server2, make([]byte, len(big))); err != nil {
		t.Fatalf("a full buffer was not sent at once: %v", err)
	}
}

// A broker that stops reading must not hang Close (paho closes the
// connection to break a stuck write); the stuck write then fails, and so
// does every later one.
func TestBufferedConnCloseFreesAStuckSend(t *testing.T) {
	client, _ := tcpPair(t) // the server end is never read
	c := newBufferedConn(client, time.Hour)
	stuck := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte{1}, maxPendingWrite)
		for {
			if _, err := c.Write(chunk); err != nil {
				stuck <- err
				return
			}
		}
	}()
	// Let the socket buffers fill and the sender block.
	time.Sleep(200 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close hung behind a send to a peer that does not read")
	}
	select {
	case err := <-stuck:
		if err == nil {
			t.Fatal("the stuck write returned no error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stuck write never returned")
	}
	if _, err := c.Write([]byte{0}); err == nil {
		t.Error("write after a failed send succeeded")
	}
}

// ack writes a QoS 1 PUBACK of the packet id: 0x40, length 2, the id high
// byte first.
func TestBufferedConnAckIsAPuback(t *testing.T) {
	client, server := tcpPair(t)
	c := newBufferedConn(client, time.Hour)
	c.ack(0x1234)
	c.ack(7)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0x40, 2, 0x12, 0x34, 0x40, 2, 0, 7}; !bytes.Equal(got, want) {
		t.Errorf("sent % x, want % x", got, want)
	}
}

// A send that reaches the socket is reported (sent), so paho's keepalive
// counts the acknowledgements vward writes itself.
func TestBufferedConnReportsSends(t *testing.T) {
	client, server := tcpPair(t)
	c := newBufferedConn(client, time.Millisecond)
	var sent atomic.Int64
	c.sent = func() { sent.Add(1) }
	c.ack(1)
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sent.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if sent.Load() != 1 {
		t.Errorf("sends reported: %d, want 1", sent.Load())
	}
	_ = c.Close()
}
