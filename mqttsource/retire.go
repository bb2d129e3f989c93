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

// retireIdle is how long a retiring session must stay quiet, with all it
// delivered acknowledged, before it is deleted. The broker sends a resumed
// session's queue at once, so quiet means empty.
var retireIdle = 3 * time.Second

// retiree drains one session vward no longer uses.
type retiree struct {
	src          *Source
	clientID     string
	log          *slog.Logger
	delivered    prometheus.Counter
	pending      atomic.Int64 // delivered, not yet acknowledged
	lastDelivery atomic.Int64 // unix nanoseconds
	unsubscribed atomic.Bool
}

// allFilters are every filter a vward session may hold, plain and shared,
// so that a retiring session is unsubscribed whatever it was.
func (s *Source) allFilters() []string {
	plain := Config{}.SubscriptionFilters()
	shared := Config{Connections: 2, ShareGroup: s.cfg.ShareGroup}.SubscriptionFilters()
	return append(plain, shared...)
}

// retire connects as clientID, unsubscribes so that the broker routes
// nothing more to the session, hands what the session holds to the
// pipeline, and once that is acknowledged and the session has been quiet
// for retireIdle, deletes it with a clean connect. It gives up, leaving the
// session for the next start, when ctx ends first.
func (s *Source) retire(ctx context.Context, clientID string) {
	r := &retiree{src: s, clientID: clientID, log: s.log.With("client_id", clientID, "retiring", true),
		delivered: s.metrics.Delivered.WithLabelValues(clientID)}
	r.lastDelivery.Store(time.Now().UnixNano())
	var client mqtt.Client
	opened := func(conn *bufferedConn) { readOwnPublishes(conn, client, r.log, r.submit) }
	client = mqtt.NewClient(s.clientOptions(clientID, r.onConnect, r.onMessage, opened))
	client.Connect()
	r.log.Info("retiring an unused session: draining it")

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			<-s.pipeline.Drained()
			client.Disconnect(500)
			r.log.Warn("stopped before the session was drained; it is retired at the next start")
			return
		case <-tick.C:
		}
		quiet := time.Since(time.Unix(0, r.lastDelivery.Load()))
		if r.unsubscribed.Load() && r.pending.Load() == 0 && quiet >= retireIdle {
			break
		}
	}
	client.Disconnect(500)
	// A clean connect discards the session, subscriptions and all.
	clean := mqtt.NewClient(s.clientOptions(clientID, nil, nil, nil).SetCleanSession(true).SetConnectRetry(false).SetAutoReconnect(false))
	tok := clean.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		r.log.Error("drained, but could not delete the session; it is retried at the next start", "err", tok.Error())
		return
	}
	clean.Disconnect(250)
	s.retired.Store(clientID, true)
	s.metrics.SessionsRetired.Inc()
	r.log.Info("session drained and deleted")
}

func (r *retiree) onConnect(cl mqtt.Client) {
	tok := cl.Unsubscribe(r.src.allFilters()...)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		r.log.Error("unsubscribe failed; retrying at the next connect", "err", tok.Error())
		return
	}
	r.unsubscribed.Store(true)
}

func (r *retiree) onMessage(_ mqtt.Client, m mqtt.Message) { r.submit(delivery(m)) }

// submit hands a message to the pipeline, counted as pending until it is
// acknowledged.
func (r *retiree) submit(d ingest.Delivery) {
	r.delivered.Inc()
	r.pending.Add(1)
	r.lastDelivery.Store(time.Now().UnixNano())
	ack := d.Ack
	d.Ack = func() {
		if ack != nil {
			ack()
		}
		r.pending.Add(-1)
	}
	if err := r.src.pipeline.Submit(r.src.runContext(), d); err != nil {
		r.log.Debug("message left unacknowledged for redelivery", "err", err)
	}
}

// RetiredSessions reports the client ids whose sessions this run deleted.
func (s *Source) RetiredSessions() []string {
	var out []string
	s.retired.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	return out
}
