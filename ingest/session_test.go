package ingest

import (
	"slices"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func TestSessionStoreKeepsOnlyWhatIsReadBack(t *testing.T) {
	s := newSessionStore()
	s.Open()
	defer s.Close()

	publish := func(qos byte, id uint16) *packets.PublishPacket {
		p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
		p.Qos, p.MessageID = qos, id
		return p
	}
	pubrel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
	pubrel.MessageID = 3

	s.Put("i.1", publish(1, 1)) // a device's reading: the broker holds it, not us
	s.Put("i.2", publish(2, 2)) // a QoS 2 handshake: paho needs it back
	s.Put("i.3", pubrel)
	s.Put("o.4", publish(1, 4)) // something vward published: resent on reconnect

	if got := s.Get("i.1"); got != nil {
		t.Errorf("an inbound QoS 1 PUBLISH was kept: %v", got)
	}
	for _, k := range []string{"i.2", "i.3", "o.4"} {
		if s.Get(k) == nil {
			t.Errorf("%s was not kept", k)
		}
	}
	keys := s.All()
	slices.Sort(keys)
	if want := []string{"i.2", "i.3", "o.4"}; !slices.Equal(keys, want) {
		t.Errorf("All() = %v, want %v", keys, want)
	}

	s.Del("i.1") // the PUBACK of a reading that was never kept
	s.Del("i.2")
	s.Del("o.4")
	if keys := s.All(); !slices.Equal(keys, []string{"i.3"}) {
		t.Errorf("after Del, All() = %v, want [i.3]", keys)
	}
	s.Reset()
	if keys := s.All(); len(keys) != 0 {
		t.Errorf("after Reset, All() = %v", keys)
	}
}
