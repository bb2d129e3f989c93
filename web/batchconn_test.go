package web

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// recordingConn records what reaches the socket.
type recordingConn struct {
	net.Conn
	writes    [][]byte
	deadlines []time.Time
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordingConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

// Held writes leave together, in order, with the last deadline asked for;
// writes outside a hold go straight out.
func TestBatchConnSendsAHeldBatchInOneWrite(t *testing.T) {
	under := &recordingConn{}
	c := &batchConn{Conn: under}
	d1, d2 := time.Unix(100, 0), time.Unix(200, 0)

	c.Hold()
	for i, frame := range []string{"one", "two", "three"} {
		_ = c.SetWriteDeadline([]time.Time{d1, d1, d2}[i])
		if n, err := c.Write([]byte(frame)); n != len(frame) || err != nil {
			t.Fatalf("write %q: %d, %v", frame, n, err)
		}
	}
	if len(under.writes) != 0 || len(under.deadlines) != 0 {
		t.Fatalf("held writes reached the socket: %q, deadlines %v", under.writes, under.deadlines)
	}
	if err := c.Release(); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 1 || string(under.writes[0]) != "onetwothree" {
		t.Fatalf("socket writes %q, want one: onetwothree", under.writes)
	}
	if len(under.deadlines) != 1 || !under.deadlines[0].Equal(d2) {
		t.Errorf("socket deadlines %v, want just %v", under.deadlines, d2)
	}

	// Not held: straight out; the same deadline is not set again.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 2 || string(under.writes[1]) != "ping" || len(under.deadlines) != 1 {
		t.Errorf("unheld write: writes %q, deadlines %v", under.writes, under.deadlines)
	}

	// A held batch that grows past maxBatch is sent without waiting.
	c.Hold()
	big := bytes.Repeat([]byte{'x'}, maxBatch)
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	if len(under.writes) != 3 || len(under.writes[2]) != maxBatch {
		t.Errorf("a full batch was held: %d writes", len(under.writes))
	}
	if err := c.Release(); err != nil || len(under.writes) != 3 {
		t.Errorf("release of an empty batch: %v, %d writes", err, len(under.writes))
	}
}

// A write that fails (a client gone) is reported at Release, so the hub
// drops the client.
func TestBatchConnReportsAFailedSend(t *testing.T) {
	a, b := net.Pipe()
	b.Close()
	c := &batchConn{Conn: a}
	c.Hold()
	if _, err := c.Write([]byte("event")); err != nil {
		t.Fatalf("held write: %v", err)
	}
	if err := c.Release(); err == nil {
		t.Fatal("Release to a closed peer returned nil")
	}
}
