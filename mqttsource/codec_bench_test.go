package mqttsource

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/vward/vward"
)

// benchPayload is a device message of the size vward bench publishes:
// five readings.
var benchPayload = []byte(`{"msg_id":"b-000000012345","ts":"2026-11-23T10:15:30.123456789Z","readings":[` +
	`{"type":"heart_rate","value":72},{"type":"spo2","value":97},{"type":"resp_rate","value":16},` +
	`{"type":"temperature","value":36.9},{"type":"systolic_bp","value":121}]}`)

// Reading one device's QoS 1 PUBLISH off the connection and handing it
// over: the per-message work of the read path, without the pipeline.
func BenchmarkReadPublish(b *testing.B) {
	var stream bytes.Buffer
	if err := publishPacket(1, 7, false, false, vward.ReadingsTopic("dev-00042"), benchPayload).Write(&stream); err != nil {
		b.Fatal(err)
	}
	src := bytes.NewReader(stream.Bytes())
	c := &bufferedConn{r: bufio.NewReaderSize(src, 64<<10)}
	handed := 0
	c.onPublish = func(p inboundPublish) { handed += len(p.Payload) }
	b.ReportAllocs()
	b.SetBytes(int64(stream.Len()))
	for b.Loop() {
		src.Reset(stream.Bytes())
		c.r.Reset(src)
		if err := c.nextPacket(); err != nil {
			b.Fatal(err)
		}
	}
	if handed == 0 {
		b.Fatal("nothing handed over")
	}
}

// discardConn is a connection whose writes succeed and go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// Writing one PUBACK: the per-message work of acknowledging.
func BenchmarkAck(b *testing.B) {
	c := newBufferedConn(discardConn{}, time.Hour)
	defer c.Close()
	b.ReportAllocs()
	id := uint16(0)
	for b.Loop() {
		id++
		c.ack(id)
	}
}
