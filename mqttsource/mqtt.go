package mqttsource

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/vward/vward"
	"github.com/vward/vward/ingest"
)

// Config says how vward reaches the broker.
type Config struct {
	URL      string // tcp://host:1883
	Username string
	Password string
	// ClientID must stay the same across restarts: the broker keeps the
	// persistent session, and so the unacknowledged messages, under it.
	ClientID string
	// Connections is how many subscriber connections share the devices'
	// messages (default 1). With more than one, connection i (1-based)
	// uses client id ClientID-i and a shared subscription
	// $share/ShareGroup/<filter>, so the broker hands each message to one
	// of them. Changing it changes the client ids: see docs/operator.md.
	Connections int
	// ShareGroup names the shared subscription (default "vward").
	ShareGroup string
	// Retire names client ids of sessions vward no longer uses, after a
	// change of Connections or ClientID. The broker keeps such a session
	// and its subscriptions, so it goes on collecting readings nobody
	// reads. Each is connected once, unsubscribed, drained into the
	// pipeline (stored and acknowledged like any message) and deleted.
	Retire []string
	// TLS is how a TLS URL (mqtts://, ssl://) is dialled: the CAs to trust
	// and vward's client certificate, built once at start. Nil trusts the
	// system's roots and presents no certificate. It is an error with a
	// URL that is not TLS. Whatever it says, nothing older than TLS 1.2 is
	// spoken.
	TLS *tls.Config
}

// DefaultShareGroup is the shared-subscription group of vward's connections.
const DefaultShareGroup = "vward"

// Validate says what is wrong with the configuration, if anything.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("MQTT broker URL %q: %w", c.URL, err)
	}
	if _, ok := brokerSchemes[u.Scheme]; !ok {
		return fmt.Errorf("MQTT broker URL %q: scheme %q is not an MQTT one; use tcp://host:1883 or ssl://host:8883", u.Redacted(), u.Scheme)
	}
	if u.Host == "" || u.Port() == "" {
		return fmt.Errorf("MQTT broker URL %q: give the host and port, as in tcp://host:1883", u.Redacted())
	}
	if c.TLS != nil && !brokerSchemes[u.Scheme] {
		return fmt.Errorf("MQTT broker URL %q is not TLS, but TLS settings were given: use mqtts://host:8883 (or drop the TLS settings)", u.Redacted())
	}
	if !vward.IsServiceID(c.ClientID) {
		return fmt.Errorf("MQTT client id %q must begin with %q: no device id may, so no device can take over vward's session (docs/security.md)", c.ClientID, vward.ServiceIDPrefix)
	}
	return nil
}

// ClientIDs returns the client id of each subscriber connection.
func (c Config) ClientIDs() []string {
	if c.Connections <= 1 {
		return []string{c.ClientID}
	}
	ids := make([]string, c.Connections)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", c.ClientID, i+1)
	}
	return ids
}

// SubscriptionFilters returns the topic filters each connection subscribes
// to: the plain ones for one connection, shared ones for several.
func (c Config) SubscriptionFilters() []string {
	if c.Connections <= 1 {
		return append([]string(nil), ingest.Filters...)
	}
	group := c.ShareGroup
	if group == "" {
		group = DefaultShareGroup
	}
	out := make([]string, len(ingest.Filters))
	for i, f := range ingest.Filters {
		out[i] = "$share/" + group + "/" + f
	}
	return out
}

// Source subscribes to device readings and feeds the pipeline. It never
// acknowledges by itself: the pipeline acks once a message is stored.
type Source struct {
	cfg      Config
	pipeline *ingest.Pipeline
	metrics  *Metrics
	log      *slog.Logger
	ctx      atomic.Pointer[context.Context]
	conns    []*subscriber
	tls      *tls.Config // cfg.TLS at TLS 1.2 or later
	retired  sync.Map    // client id → true once its session is deleted
	// refused carries the broker's refusal of vward's credentials before
	// any connection was ever accepted: a configuration error, which Run
	// returns rather than retrying for ever in silence.
	refused chan error
	// notices are the pipeline's rejections, each told to its device.
	notices <-chan ingest.Rejection
}

// connectLogEvery is how often a connection that keeps failing for the
// same reason says so again.
const connectLogEvery = time.Minute

// subscriber is one broker connection with its own persistent session.
type subscriber struct {
	inbox
	src        *Source
	clientID   string
	client     mqtt.Client
	connected  atomic.Bool
	subscribed atomic.Bool

	mu        sync.Mutex
	lastErr   error     // why the last attempt to connect failed; nil once connected
	loggedErr string    // the reason last logged
	loggedAt  time.Time // when
	accepted  bool      // the broker has accepted this connection at least once
}

// NewSource builds a source for the pipeline. notices is the receive side
// of the channel the pipeline was built with (ingest.NewPipeline): the
// source publishes each rejection on the device's rejected topic. notices
// and metrics may be nil, for tests that do not look at them.
func NewSource(cfg Config, p *ingest.Pipeline, notices <-chan ingest.Rejection, metrics *Metrics, log *slog.Logger) *Source {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	s := &Source{cfg: cfg, pipeline: p, notices: notices, metrics: metrics, log: log.With("component", "mqtt"), refused: make(chan error, 1), tls: minTLS12(cfg.TLS)}
	for _, id := range cfg.ClientIDs() {
		s.conns = append(s.conns, &subscriber{src: s, clientID: id,
			inbox: inbox{log: s.log.With("client_id", id), delivered: s.metrics.Delivered.WithLabelValues(id)}})
	}
	return s
}

// Metrics returns the broker connection's metrics.
func (s *Source) Metrics() *Metrics { return s.metrics }

// Connected reports whether every subscriber connection is up.
func (s *Source) Connected() bool { return s.Check() == nil }

// Check says which subscriber connections are down or unsubscribed, for
// /readyz. With a shared subscription, a session that is down still gets
// its share of messages, which wait until it is back: one down connection
// delays readings.
func (s *Source) Check() error {
	var down, deaf []string
	for _, c := range s.conns {
		switch {
		case !c.connected.Load():
			c.mu.Lock()
			why := c.lastErr
			c.mu.Unlock()
			if why != nil {
				down = append(down, c.clientID+": "+why.Error())
			} else {
				down = append(down, c.clientID)
			}
		case !c.subscribed.Load():
			deaf = append(deaf, c.clientID)
		}
	}
	var parts []string
	if len(down) > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d broker connections down (%s)", len(down), len(s.conns), strings.Join(down, ", ")))
	}
	if len(deaf) > 0 {
		parts = append(parts, fmt.Sprintf("subscription not confirmed on %s", strings.Join(deaf, ", ")))
	}
	if len(parts) == 0 {
		return nil
	}
	return fmt.Errorf("%s at %s", strings.Join(parts, "; "), s.cfg.URL)
}

// Run connects, subscribes on every (re)connect, and feeds the pipeline until
// ctx is cancelled. It then waits for the pipeline to flush, so that the
// acknowledgements of what was stored reach the broker, and disconnects.
func (s *Source) Run(ctx context.Context) error {
	s.ctx.Store(&ctx)
	for _, c := range s.conns {
		c.start()
	}
	var retiring sync.WaitGroup
	for _, id := range s.cfg.Retire {
		if slices.Contains(s.cfg.ClientIDs(), id) {
			s.log.Error("not retiring a session still in use", "client_id", id)
			continue
		}
		retiring.Go(func() { s.retire(ctx, id) })
	}
	// Notices are told until the pipeline has drained, since it still
	// rejects what it stores while it drains.
	stopNotices, notifying := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(notifying)
		s.tellDevices(stopNotices)
	}()
	var refused error
	select {
	case <-ctx.Done():
	case refused = <-s.refused:
		s.log.Error("the broker refused vward's credentials; check --mqtt-username, --mqtt-password and the broker's password file (docs/operator.md)",
			"url", s.cfg.URL, "err", refused)
	}
	if refused != nil {
		close(stopNotices)
		<-notifying
		for _, c := range s.conns {
			c.client.Disconnect(0)
		}
		retiring.Wait()
		return fmt.Errorf("the broker at %s refused vward's connection as %q: %w (check --mqtt-username and --mqtt-password)", s.cfg.URL, s.cfg.Username, refused)
	}
	<-s.pipeline.Drained()
	retiring.Wait()
	close(stopNotices)
	<-notifying
	for _, c := range s.conns {
		// Disconnect's quiesce lets the acknowledgements the pipeline
		// just issued reach the broker before DISCONNECT.
		c.client.Disconnect(500)
		if c.connected.Swap(false) {
			s.metrics.ConnectionsUp.Dec()
		}
	}
	return nil
}

// clientOptions are every vward connection's: a persistent session under a
// fixed client id, manual acknowledgement, in-order delivery.
// opened, if not nil, is told of each connection opened.
func (s *Source) clientOptions(clientID string, onConnect mqtt.OnConnectHandler, onMessage mqtt.MessageHandler, opened func(*bufferedConn)) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().
		AddBroker(s.cfg.URL).
		SetClientID(clientID).
		SetUsername(s.cfg.Username).
		SetPassword(s.cfg.Password).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		// In order, as the connection's reads are: a blocked Submit stops
		// this connection reading, and the broker keeps the rest.
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(5 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetTLSConfig(s.tls).
		// The connection reads QoS 0 and 1 messages itself
		// (readOwnPublishes, deliver), from the first packet after CONNACK. Any
		// other (QoS 2, which vward does not subscribe at) goes to the
		// default handler; vward adds no routes. Anything the session
		// delivers is ours: a topic vward cannot read is dead-lettered
		// and acknowledged, not left in the session. It is in place before the first CONNECT, which
		// matters: on a resumed session the broker resends what it holds
		// right after CONNACK, before our SUBSCRIBE is even sent, and paho
		// drops a message it has no handler for without acknowledging it,
		// stranding it in the session (a restarted process would lose its
		// backlog that way). No routes, because paho matches a message
		// against each by splitting both topics into levels: allocation
		// per message per route, and every route would lead here anyway.
		SetDefaultPublishHandler(onMessage).
		SetOnConnectHandler(onConnect).
		SetCustomOpenConnectionFn(func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			c, err := dialBuffered(uri, o)
			if err != nil {
				return nil, err
			}
			if opened != nil {
				opened(c)
			}
			return c, nil
		})
}

func (c *subscriber) start() {
	s := c.src
	opened := func(conn *bufferedConn) { s.readOwnPublishes(conn, c.client, &c.inbox) }
	opts := s.clientOptions(c.clientID, c.onConnect, s.fromPaho(&c.inbox), opened).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			c.subscribed.Store(false)
			if c.connected.Swap(false) {
				s.metrics.ConnectionsUp.Dec()
			}
			s.metrics.ConnectionsLost.Inc()
			c.log.Warn("broker connection lost; unacknowledged messages will be redelivered", "err", err)
		})
	opts.SetConnectionNotificationHandler(func(_ mqtt.Client, n mqtt.ConnectionNotification) {
		if f, ok := n.(mqtt.ConnectionNotificationFailed); ok {
			c.failed(f.Reason)
		}
	})
	c.client = mqtt.NewClient(opts)
	c.client.Connect() // with ConnectRetry it keeps trying in the background
}

// failed records and logs why a connection attempt failed: at once, then
// again when the reason changes or every connectLogEvery. A refusal of
// the credentials before the broker ever accepted them stops the source.
func (c *subscriber) failed(err error) {
	if err == nil {
		return
	}
	err = explainTLS(err)
	now := time.Now()
	c.mu.Lock()
	c.lastErr = err
	first := !c.accepted
	logIt := err.Error() != c.loggedErr || now.Sub(c.loggedAt) >= connectLogEvery
	if logIt {
		c.loggedErr, c.loggedAt = err.Error(), now
	}
	c.mu.Unlock()
	if first && (errors.Is(err, packets.ErrorRefusedNotAuthorised) || errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) ||
		errors.Is(err, packets.ErrorRefusedIDRejected)) {
		select {
		case c.src.refused <- err:
		default:
		}
		return
	}
	if logIt {
		c.log.Warn("cannot connect to the broker; retrying", "url", c.src.cfg.URL, "err", err)
	}
}

// minTLS12 is a copy of cfg that speaks nothing older than TLS 1.2; nil
// gives the defaults (the system's roots, no client certificate).
func minTLS12(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	cfg = cfg.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	return cfg
}

// explainTLS says what a TLS failure to connect means for the operator:
// the broker's certificate did not verify, the broker refused the
// handshake (most often: it requires a client certificate vward did not
// present, or one its CA did not issue; with TLS 1.3 that refusal comes
// only when vward reads the CONNACK), or the broker does not speak TLS on
// that port.
func explainTLS(err error) error {
	var (
		verify    *tls.CertificateVerificationError
		op        *net.OpError
		header    tls.RecordHeaderError
		handshake *handshakeError
	)
	switch {
	case errors.As(err, &verify):
		return fmt.Errorf("the broker's TLS certificate did not verify (its CA must be in --mqtt-ca-file, and it must name the URL's host or --mqtt-tls-server-name): %w", err)
	case errors.As(err, &op) && op.Op == "remote error":
		return fmt.Errorf("the broker refused the TLS handshake (does it require a client certificate, --mqtt-cert-file and --mqtt-key-file, from a CA it trusts?): %w", err)
	case errors.As(err, &header):
		return fmt.Errorf("the broker did not answer in TLS (is the port a plain MQTT listener? use tcp:// for it): %w", err)
	case errors.As(err, &handshake):
		return fmt.Errorf("the TLS handshake with the broker failed (is %s a TLS listener? a plain MQTT one hangs up at once; use tcp:// for it): %w", handshake.host, err)
	}
	return err
}

func (c *subscriber) onConnect(cl mqtt.Client) {
	s := c.src
	if !c.connected.Swap(true) {
		s.metrics.ConnectionsUp.Inc()
	}
	s.metrics.Connects.Inc()
	c.mu.Lock()
	c.lastErr, c.loggedErr, c.accepted = nil, "", true
	c.mu.Unlock()
	c.log.Info("connected to broker", "url", s.cfg.URL)
	// Subscribing on every connect, not once, because a broker that lost
	// its state (or a clean restart) would otherwise leave us deaf.
	filters := make(map[string]byte)
	for _, f := range s.cfg.SubscriptionFilters() {
		filters[f] = 1
	}
	tok := cl.SubscribeMultiple(filters, nil) // nil: no route; the default handler takes all
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		c.log.Error("subscribe failed", "filters", s.cfg.SubscriptionFilters(), "err", tok.Error())
		return
	}
	// MQTT 3.1.1 reports a refused filter (an ACL, say) as return code
	// 0x80 in the SUBACK, not as an error.
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code > 2 {
				c.log.Error("broker refused the subscription", "filter", f, "code", code)
				return
			}
		}
	}
	c.subscribed.Store(true)
}

// rejectionNotice is what a device reads on its rejected topic.
type rejectionNotice struct {
	MsgID  string `json:"msg_id,omitempty"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
	At     string `json:"at"`
}

// tellDevices publishes the pipeline's notices until stop is closed, then
// those already queued.
func (s *Source) tellDevices(stop <-chan struct{}) {
	if s.notices == nil {
		return
	}
	for {
		select {
		case r := <-s.notices:
			s.notify(r)
		case <-stop:
			for {
				select {
				case r := <-s.notices:
					s.notify(r)
				default:
					return
				}
			}
		}
	}
}

// notify publishes r on its device's rejected topic. It does not wait for
// the broker's PUBACK: telling devices is best effort, and a wait here
// would hold up the notices behind it.
func (s *Source) notify(r ingest.Rejection) {
	if r.Device == "" {
		return
	}
	for _, c := range s.conns {
		if c.client == nil || !c.connected.Load() {
			continue
		}
		b, err := json.Marshal(rejectionNotice{MsgID: r.MsgID, Code: r.Code, Reason: r.Reason, At: r.Received.UTC().Format(time.RFC3339)})
		if err != nil {
			return
		}
		c.client.Publish(vward.RejectedTopic(r.Device), 1, false, b)
		return
	}
}

// String names the source in logs.
func (s *Source) String() string {
	return fmt.Sprintf("mqtt %s as %s", s.cfg.URL, strings.Join(s.cfg.ClientIDs(), ", "))
}
