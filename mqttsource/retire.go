package mqttsource

import (
	"context"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// retireIdle is how long a retiring session must stay quiet, with all it
// delivered acknowledged, before it is deleted. The broker sends a resumed
// session's queue at once, so quiet means empty.
var retireIdle = 3 * time.Second

// retiree drains one session vward no longer uses.
type retiree struct {
	inbox        // draining: deliver counts what it holds
	src          *Source
	clientID     string
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
	r := &retiree{src: s, clientID: clientID, inbox: inbox{log: s.log.With("client_id", clientID, "retiring", true),
		delivered: s.metrics.Delivered.WithLabelValues(clientID), draining: true}}
	r.lastDelivery.Store(time.Now().UnixNano())
	var client mqtt.Client
	opened := func(conn *bufferedConn) { s.readOwnPublishes(conn, client, &r.inbox) }
	client = mqtt.NewClient(s.clientOptions(clientID, r.onConnect, s.fromPaho(&r.inbox), opened))
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
		if r.unsubscribed.Load() && r.unacked.Load() == 0 && quiet >= retireIdle {
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

// RetiredSessions reports the client ids whose sessions this run deleted.
func (s *Source) RetiredSessions() []string {
	var out []string
	s.retired.Range(func(k, _ any) bool {
		out = append(out, k.(string))
		return true
	})
	return out
}
