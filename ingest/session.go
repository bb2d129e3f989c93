package ingest

import (
	"strings"
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// sessionStore is the client side of vward's MQTT session: paho's
// in-memory store, minus the one thing it kept that vward never reads.
//
// paho stores every inbound QoS 1 PUBLISH under "i.<packet id>" until its
// PUBACK is sent, and with acknowledgement after storage that is every
// message in vward's window: a map insert and delete per message, into a
// map of up to the window's size. Nothing reads them back. The broker, not
// vward, holds an unacknowledged message and resends it after a reconnect;
// paho's own resume discards a stored inbound PUBLISH as invalid. What an
// inbound key must keep is QoS 2 state (a PUBLISH awaiting its PUBREL, or the
// PUBREL itself), and that is kept.
type sessionStore struct {
	mqtt.Store // outbound state: what vward publishes at QoS 1 or 2

	mu      sync.Mutex
	inbound map[string]packets.ControlPacket // QoS 2 handshakes in progress
}

func newSessionStore() *sessionStore {
	return &sessionStore{Store: mqtt.NewMemoryStore(), inbound: make(map[string]packets.ControlPacket)}
}

// isInbound reports whether key is paho's key for a packet the broker sent.
func isInbound(key string) bool { return strings.HasPrefix(key, "i.") }

func (s *sessionStore) Put(key string, m packets.ControlPacket) {
	if !isInbound(key) {
		s.Store.Put(key, m)
		return
	}
	if p, ok := m.(*packets.PublishPacket); ok && p.Qos < 2 {
		return
	}
	s.mu.Lock()
	s.inbound[key] = m
	s.mu.Unlock()
}

func (s *sessionStore) Get(key string) packets.ControlPacket {
	if !isInbound(key) {
		return s.Store.Get(key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inbound[key]
}

func (s *sessionStore) All() []string {
	keys := s.Store.All()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.inbound {
		keys = append(keys, k)
	}
	return keys
}

func (s *sessionStore) Del(key string) {
	if !isInbound(key) {
		s.Store.Del(key)
		return
	}
	s.mu.Lock()
	delete(s.inbound, key)
	s.mu.Unlock()
}

func (s *sessionStore) Reset() {
	s.Store.Reset()
	s.mu.Lock()
	clear(s.inbound)
	s.mu.Unlock()
}
