package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
)

// MQTTConfig says how ingest reaches the broker.
type MQTTConfig struct {
	URL      string // tcp://host:1883
	Username string
	Password string
	// ClientID must stay the same across restarts: the broker keeps the
	// persistent session, and so the unacknowledged messages, under it.
	ClientID string
}

// Source subscribes to device readings and feeds the pipeline. It never
// acknowledges by itself: the pipeline acks once a message is stored.
type Source struct {
	cfg       MQTTConfig
	pipeline  *Pipeline
	log       *slog.Logger
	client    mqtt.Client
	connected atomic.Bool
	ctx       atomic.Pointer[context.Context]
}

// NewSource builds a source for the pipeline and plugs itself in as the
// pipeline's rejection notifier.
func NewSource(cfg MQTTConfig, p *Pipeline, log *slog.Logger) *Source {
	s := &Source{cfg: cfg, pipeline: p, log: log.With("component", "mqtt", "client_id", cfg.ClientID)}
	p.SetNotifier(s)
	return s
}

// SetURL points the source at a broker known only after it was built (the
// demo's embedded broker). Call it before Run.
func (s *Source) SetURL(url string) { s.cfg.URL = url }

// Connected reports whether the broker connection is up.
func (s *Source) Connected() bool { return s.connected.Load() }

// Run connects, subscribes on every (re)connect, and feeds the pipeline until
// ctx is cancelled. It then waits for the pipeline to flush, so that the
// acknowledgements of what was stored reach the broker, and disconnects.
func (s *Source) Run(ctx context.Context) error {
	s.ctx.Store(&ctx)
	opts := mqtt.NewClientOptions().
		AddBroker(s.cfg.URL).
		SetClientID(s.cfg.ClientID).
		SetUsername(s.cfg.Username).
		SetPassword(s.cfg.Password).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			s.connected.Store(false)
			s.log.Warn("broker connection lost; unacknowledged messages will be redelivered", "err", err)
		})
	s.client = mqtt.NewClient(opts)
	s.client.Connect() // with ConnectRetry it keeps trying in the background
	<-ctx.Done()
	<-s.pipeline.Drained()
	s.client.Disconnect(500)
	s.connected.Store(false)
	return nil
}

func (s *Source) onConnect(c mqtt.Client) {
	s.connected.Store(true)
	s.log.Info("connected to broker", "url", s.cfg.URL)
	// Subscribing on every connect, not once, because a broker that lost
	// its state (or a clean restart) would otherwise leave us deaf.
	tok := c.Subscribe(vward.ReadingsFilter, 1, s.onMessage)
	go func() {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			s.log.Error("subscribe failed", "filter", vward.ReadingsFilter, "err", tok.Error())
		}
	}()
}

func (s *Source) onMessage(_ mqtt.Client, m mqtt.Message) {
	ctx := context.Background()
	if p := s.ctx.Load(); p != nil {
		ctx = *p
	}
	// Submit blocks while too many messages await storage. That stalls this
	// connection, and so the broker, which keeps the backlog: what we want.
	if err := s.pipeline.Submit(ctx, Delivery{Topic: m.Topic(), Payload: m.Payload(), Ack: m.Ack}); err != nil {
		s.log.Debug("message left unacknowledged for redelivery", "err", err)
	}
}

// rejectionNotice is what a device reads on its rejected topic.
type rejectionNotice struct {
	MsgID  string `json:"msg_id,omitempty"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	At     string `json:"at"`
}

// NotifyRejected implements RejectionNotifier. It does not wait for the
// broker's PUBACK: waiting here could stall the delivery path.
func (s *Source) NotifyRejected(r Rejection) {
	if s.client == nil || r.Device == "" || !s.connected.Load() {
		return
	}
	b, err := json.Marshal(rejectionNotice{MsgID: r.MsgID, Code: r.Code, Reason: r.Reason, At: r.Received.UTC().Format(time.RFC3339)})
	if err != nil {
		return
	}
	s.client.Publish(vward.RejectedTopic(r.Device), 1, false, b)
}

// String names the source in logs.
func (s *Source) String() string { return fmt.Sprintf("mqtt %s as %s", s.cfg.URL, s.cfg.ClientID) }
