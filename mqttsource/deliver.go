package mqttsource

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vward/vward/ingest"
)

// inbox is what deliver counts a session's messages against: each
// subscriber connection has one, and so does each session being retired.
type inbox struct {
	log       *slog.Logger
	delivered prometheus.Counter
	// draining is set for a retiring session: deliver then keeps count of
	// what it delivered and is not yet acknowledged, and of when it last
	// delivered, for retire to know when the session is empty.
	draining     bool
	unacked      atomic.Int64
	lastDelivery atomic.Int64 // unix nanoseconds
}

// deliver is where a device's message enters vward: a PUBLISH the broker
// sent becomes an ingest.Delivery and is handed to Pipeline.Submit. ack,
// which the pipeline calls once the message is stored, writes its PUBACK
// on the connection the message came in on (readOwnPublishes); it is nil
// at QoS 0. deliver runs on that connection's reading goroutine, in the
// broker's order, and blocks while the pipeline's window is full: that
// stops this connection reading, and the broker keeps the backlog.
func (s *Source) deliver(in *inbox, p inboundPublish, ack func()) {
	in.delivered.Inc()
	if in.draining {
		in.unacked.Add(1)
		in.lastDelivery.Store(time.Now().UnixNano())
		stored := ack
		ack = func() {
			if stored != nil {
				stored()
			}
			in.unacked.Add(-1)
		}
	}
	d := ingest.Delivery{Topic: p.Topic, Payload: p.Payload, Ack: ack, Redelivered: p.Dup, Retained: p.Retained}
	if err := s.pipeline.Submit(s.runContext(), d); err != nil {
		in.log.Debug("message left unacknowledged for redelivery", "err", err)
	}
}

// readOwnPublishes has conn read the QoS 0 and 1 PUBLISH packets itself
// and deliver each, on paho's reading goroutine and in the broker's order,
// a QoS 1 one with an ack that writes its PUBACK on conn (bufferedConn.ack,
// readInbound). The ack needs no more thought about which connection it
// belongs to: it is the one the message came in on. An ack after that
// connection closed is dropped, as paho drops one, and the broker resends
// the message on the next (ack-after-store makes that safe). paho's
// keepalive is told of every send and of what is heard, since it sees
// neither those packets nor the PUBACKs: otherwise it would ping every
// keepalive period, and a PINGRESP queued behind messages vward cannot yet
// take (its window full while InfluxDB is slow) would come too late and
// drop the connection.
func (s *Source) readOwnPublishes(conn *bufferedConn, client mqtt.Client, in *inbox) {
	if k, ok := client.(keepaliveClock); ok {
		conn.sent, conn.received = k.UpdateLastSent, k.UpdateLastReceived
	} else {
		// TestPahoClientHasAKeepaliveClock fails first on a paho that drops it.
		in.log.Warn("the MQTT client cannot be told of packets vward reads and writes itself; it will ping every keepalive period")
	}
	conn.onPublish = func(p inboundPublish) {
		var ack func()
		if p.QoS == 1 {
			id := p.ID
			ack = func() { conn.ack(id) }
		}
		s.deliver(in, p, ack)
	}
}

// keepaliveClock is the part of paho's client that its keepalive reads:
// when a packet was last sent and last received.
type keepaliveClock interface {
	UpdateLastSent()
	UpdateLastReceived()
}

// fromPaho delivers a message paho read: only a QoS 2 one comes this way
// (readOwnPublishes takes the others), and vward subscribes at QoS 1, so
// none should.
func (s *Source) fromPaho(in *inbox) mqtt.MessageHandler {
	return func(_ mqtt.Client, m mqtt.Message) {
		p := inboundPublish{Topic: m.Topic(), Payload: m.Payload(), ID: m.MessageID(), QoS: m.Qos(), Dup: m.Duplicate(), Retained: m.Retained()}
		s.deliver(in, p, m.Ack)
	}
}

// runContext is Run's context, or the background before Run: a message
// can arrive while Run is starting its connections.
func (s *Source) runContext() context.Context {
	if p := s.ctx.Load(); p != nil {
		return *p
	}
	return context.Background()
}
