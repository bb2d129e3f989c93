// Package broker runs the embedded MQTT broker of `vward demo`, so that the
// demo needs nothing installed. Ingest connects to it over loopback exactly
// as it connects to Mosquitto in production, so the demo exercises the real
// reading path. Devices authenticate with their registry secret and may
// publish only as themselves.
//
// It guards what Mosquitto configured as deploy/mosquitto guards (see
// docs/security.md): a device's client id is always its device id, whatever
// it asked for, so it cannot take over vward's session or another
// device's; vward's own client ids begin with vward.ServiceIDPrefix, which
// no device id may; a packet larger than MaxPacketSize, and a connection
// that sends no CONNECT within ConnectTimeout, are refused.
//
// It is not the production broker: its store of unacknowledged messages per
// client is capped (65,535), where Mosquitto configured as docs/operator.md
// says holds a backlog without limit.
package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vward/vward"
)

// Authenticator checks a device's credentials.
type Authenticator interface {
	Authenticate(device vward.DeviceID, secret []byte) bool
}

// MaxPacketSize is the largest MQTT packet the broker reads: a device
// message's payload limit (64 KiB, ingest.DefaultLimits) with room for its
// topic and properties. A larger one closes the connection before its body
// is read, so a client cannot make the broker reserve memory it claims.
const MaxPacketSize = 128 << 10

// ConnectTimeout is how long a new connection has to send its CONNECT.
const ConnectTimeout = 5 * time.Second

// Config says who may connect.
type Config struct {
	Addr string // host:port to listen on
	// Listener, if not nil, is served instead of listening on Addr, and
	// is the broker's to close from then on: for a caller that must know
	// the broker's address before the broker can be started (the demo
	// builds vward's connection to it first).
	Listener net.Listener
	// ServiceUser and ServicePassword are vward's own account: it reads
	// every device's readings and writes their rejected topics.
	ServiceUser, ServicePassword string
	Devices                      Authenticator
}

// Broker is a running embedded broker.
type Broker struct {
	server *mqtt.Server
	addr   string
}

// Start listens on cfg.Addr, or takes cfg.Listener, and serves until Close.
func Start(cfg Config, log *slog.Logger) (*Broker, error) {
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("embedded broker listen on %s: %w", cfg.Addr, err)
		}
	}
	opts := &mqtt.Options{
		Logger: log.With("component", "broker"),
		Capabilities: func() *mqtt.Capabilities {
			c := mqtt.NewDefaultServerCapabilities()
			c.MaximumInflight = 65535 // the most mochi allows; see the package doc
			c.MaximumClientWritesPending = 65535
			c.MaximumPacketSize = MaxPacketSize
			return c
		}(),
		InlineClient: false,
	}
	s := mqtt.New(opts)
	if err := s.AddHook(&access{cfg: cfg, log: opts.Logger}, nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker auth hook: %w", err)
	}
	l := listeners.NewNet("tcp", connectDeadline{ln, ConnectTimeout, opts.Logger})
	if err := s.AddListener(l); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker listener: %w", err)
	}
	if err := s.Serve(); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &Broker{server: s, addr: ln.Addr().String()}, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as a paho URL.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close stops the broker.
func (b *Broker) Close() error { return b.server.Close() }

// Run closes the broker when ctx ends.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	return b.Close()
}

// access is the authentication and ACL hook.
type access struct {
	mqtt.HookBase
	cfg Config
	log *slog.Logger
}

func (a *access) ID() string { return "vward-access" }

func (a *access) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish}, []byte{b})
}

// OnConnectAuthenticate checks the account and binds the client id to it:
// the service account must use ids beginning with vward.ServiceIDPrefix,
// and a device is given its device id, as Mosquitto's
// use_username_as_clientid does. The session a device resumes is then its
// own, and no one else's is taken over.
func (a *access) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	if user == "" {
		return false
	}
	if user == a.cfg.ServiceUser {
		// An empty configured password must not let anyone in.
		if a.cfg.ServicePassword == "" || subtle.ConstantTimeCompare(pass, []byte(a.cfg.ServicePassword)) != 1 {
			return false
		}
		if !vward.IsServiceID(cl.ID) {
			a.log.Warn("refused the service account: its client id must begin with "+vward.ServiceIDPrefix, "client_id", cl.ID)
			return false
		}
		return true
	}
	if vward.IsServiceID(user) || a.cfg.Devices == nil || !a.cfg.Devices.Authenticate(vward.DeviceID(user), pass) {
		return false
	}
	cl.ID = user
	return true
}

// connectDeadline gives each accepted connection until timeout to be read
// from: the broker reads the CONNECT under it, then sets its own deadline
// from the keepalive. It also retries a failed accept (out of file
// descriptors, say), as net/http does: mochi stops serving at the first
// error Accept returns, which would leave every device unable to connect.
type connectDeadline struct {
	net.Listener
	timeout time.Duration
	log     *slog.Logger
}

func (l connectDeadline) Accept() (net.Conn, error) {
	delay := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		if err != nil {
			l.log.Warn("accept a connection; retrying", "err", err, "in", delay)
			time.Sleep(delay)
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		if err := c.SetDeadline(time.Now().Add(l.timeout)); err != nil {
			l.log.Warn("set the CONNECT deadline; closing the connection", "err", err)
			c.Close()
			continue
		}
		return c, nil
	}
}

// OnACLCheck lets a device write only its own readings, SenML and status
// topics, the protocol's, and read only its own rejected topic; the
// service account may do anything. A refused publish is answered: an
// MQTT 5 device gets "not authorized" in its PUBACK, a 3.1.1 device is
// disconnected (3.1.1 has no negative PUBACK), so a typo in a topic never
// vanishes behind an acknowledgement.
func (a *access) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if user == a.cfg.ServiceUser {
		return true
	}
	d := vward.DeviceID(user)
	if write {
		return topic == vward.ReadingsTopic(d) || topic == vward.SenMLTopic(d) || topic == vward.StatusTopic(d)
	}
	return topic == vward.RejectedTopic(d)
}

// MaxRetainedStatus is the largest status message the broker retains.
const MaxRetainedStatus = 1 << 10

// OnPublish keeps retained state bounded: only a device's status (at most
// MaxRetainedStatus bytes) is retained; any other message marked retained
// is delivered as an ordinary one.
func (a *access) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain && string(cl.Properties.Username) != a.cfg.ServiceUser &&
		(pk.TopicName != vward.StatusTopic(vward.DeviceID(cl.Properties.Username)) || len(pk.Payload) > MaxRetainedStatus) {
		pk.FixedHeader.Retain = false
	}
	return pk, nil
}
