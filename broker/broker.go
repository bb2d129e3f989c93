// Package broker runs the embedded MQTT broker of `vward demo`, so that the
// demo needs nothing installed. Ingest connects to it over loopback exactly
// as it connects to Mosquitto in production, so the demo exercises the real
// reading path. Devices authenticate with their registry secret and may
// publish only as themselves.
//
// It is not the production broker: its store of unacknowledged messages per
// client is capped (65,535), where Mosquitto configured as docs/operator.md
// says holds a backlog without limit.
package broker

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/vward/vward"
)

// Authenticator checks a device's credentials.
type Authenticator interface {
	Authenticate(device vward.DeviceID, secret []byte) bool
}

// Config says who may connect.
type Config struct {
	Addr string // host:port to listen on
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

// Start listens on cfg.Addr and serves until Close.
func Start(cfg Config, log *slog.Logger) (*Broker, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen on %s: %w", cfg.Addr, err)
	}
	opts := &mqtt.Options{
		Logger: log.With("component", "broker"),
		Capabilities: func() *mqtt.Capabilities {
			c := mqtt.NewDefaultServerCapabilities()
			c.MaximumInflight = 65535 // the most mochi allows; see the package doc
			c.MaximumClientWritesPending = 65535
			return c
		}(),
		InlineClient: false,
	}
	s := mqtt.New(opts)
	if err := s.AddHook(&access{cfg: cfg}, nil); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded broker auth hook: %w", err)
	}
	l := listeners.NewNet("tcp", ln)
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
}

func (a *access) ID() string { return "vward-access" }

func (a *access) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (a *access) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	if user == "" {
		return false
	}
	if user == a.cfg.ServiceUser {
		// An empty configured password must not let anyone in.
		return a.cfg.ServicePassword != "" && subtle.ConstantTimeCompare(pass, []byte(a.cfg.ServicePassword)) == 1
	}
	return a.cfg.Devices != nil && a.cfg.Devices.Authenticate(vward.DeviceID(user), pass)
}

// OnACLCheck lets a device write only under its own id and read only its
// own rejected topic; the service account may do anything.
func (a *access) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if user == a.cfg.ServiceUser {
		return true
	}
	own := "vward/v1/devices/" + user + "/"
	if write {
		return strings.HasPrefix(topic, own) && !strings.ContainsAny(topic[len(own):], "+#") && topic != own+"rejected"
	}
	return topic == own+"rejected"
}
