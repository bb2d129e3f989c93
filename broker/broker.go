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
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
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
//
// It accepts connections itself and hands each to mochi, rather than give
// mochi a listener: mochi's Close waits for every connection to end but
// disconnects only the clients that have finished signing in, so one
// caught mid-CONNECT, or one whose socket is full because it stopped
// reading, kept Close from ever returning. Owning the connections, Close
// can end every one of them.
type Broker struct {
	server *mqtt.Server
	ln     net.Listener
	addr   string
	log    *slog.Logger

	closing chan struct{} // closed when Close begins
	conns   conns
	serving sync.WaitGroup // the accept loop and each connection's goroutine
	once    sync.Once
}

// listenerID names the broker's one listener to mochi.
const listenerID = "tcp"

// closeGrace is how long Close lets clients be told the server is going
// (an MQTT 5 client hears why) before it closes their connections.
const closeGrace = time.Second

// Start listens on cfg.Addr, or takes cfg.Listener, and serves until Close.
func Start(cfg Config, log *slog.Logger) (*Broker, error) {
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("embedded broker listen on %s: %w", cfg.Addr, err)
		}
	}
	log = log.With("component", "broker")
	opts := &mqtt.Options{
		Logger: log,
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
	if err := s.AddHook(&access{cfg: cfg, log: log}, nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker auth hook: %w", err)
	}
	if err := s.Serve(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	b := &Broker{server: s, ln: ln, addr: ln.Addr().String(), log: log, closing: make(chan struct{})}
	b.conns.open = map[net.Conn]struct{}{}
	b.serving.Add(1)
	go b.accept()
	return b, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() string { return b.addr }

// URL is the broker's address as a paho URL.
func (b *Broker) URL() string { return "tcp://" + b.addr }

// Close stops the broker: it stops accepting, tells the connected clients
// it is shutting down, closes every connection, signed in or not, and
// returns once each connection's goroutine has ended. It may be called
// more than once.
func (b *Broker) Close() error {
	var err error
	b.once.Do(func() {
		close(b.closing)
		if cerr := b.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("embedded broker: close listener: %w", cerr)
		}
		told := make(chan struct{})
		go func() {
			defer close(told)
			for _, cl := range b.server.Clients.GetAll() {
				_ = b.server.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}()
		select {
		case <-told:
		case <-time.After(closeGrace):
			b.log.Warn("clients still being told the broker is closing; closing their connections", "after", closeGrace)
		}
		b.conns.closeAll() // also unblocks a write to a client that stopped reading
		<-told
		b.serving.Wait()
		// Every connection has ended, so mochi's own wait for them returns.
		if cerr := b.server.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("embedded broker: %w", cerr)
		}
	})
	return err
}

// Run closes the broker when ctx ends.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	return b.Close()
}

// accept hands each connection to mochi under ConnectTimeout: mochi reads
// the CONNECT under it, then sets its own deadline from the keepalive. A
// failed accept (out of file descriptors, say) is retried, as net/http
// does, rather than leave every device unable to connect.
func (b *Broker) accept() {
	defer b.serving.Done()
	delay := 5 * time.Millisecond
	for {
		c, err := b.ln.Accept()
		if err != nil {
			select {
			case <-b.closing:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				b.log.Error("the broker's listener closed; no device can connect", "err", err)
				return
			}
			b.log.Warn("accept a connection; retrying", "err", err, "in", delay)
			select {
			case <-b.closing:
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		if err := c.SetDeadline(time.Now().Add(ConnectTimeout)); err != nil {
			b.log.Warn("set the CONNECT deadline; closing the connection", "err", err)
			c.Close()
			continue
		}
		if !b.conns.add(c) {
			c.Close() // Close has begun
			return
		}
		b.serving.Add(1)
		go func() {
			defer b.serving.Done()
			defer b.conns.remove(c)
			if err := b.server.EstablishConnection(listenerID, c); err != nil {
				b.log.Info("client connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// conns is the set of open connections, so that Close can end them all.
type conns struct {
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
}

// add keeps c, or reports false once closeAll has run.
func (s *conns) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.open[c] = struct{}{}
	return true
}

func (s *conns) remove(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, c)
}

func (s *conns) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.open {
		c.Close()
	}
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

// OnACLCheck lets a device write only its own readings, SenML, status and
// questionnaire topics, the protocol's, and read only its own rejected topic; the
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
		return topic == vward.ReadingsTopic(d) || topic == vward.SenMLTopic(d) || topic == vward.StatusTopic(d) ||
			topic == vward.QuestionnaireTopic(d)
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
