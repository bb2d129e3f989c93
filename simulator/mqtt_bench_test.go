package simulator

import (
	"io"
	"testing"

	"github.com/vward/vward"
)

// Encoding and writing one device message's PUBLISH: the load generator's
// work per message.
func BenchmarkPublishPacket(b *testing.B) {
	topic := vward.ReadingsTopic("dev-00042")
	payload := []byte(`{"msg_id":"b-000000012345","ts":"2026-11-23T10:15:30.123456789Z","readings":[` +
		`{"type":"heart_rate","value":72},{"type":"spo2","value":97},{"type":"resp_rate","value":16},` +
		`{"type":"temperature","value":36.9},{"type":"systolic_bp","value":121}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := writePublish(io.Discard, topic, 7, payload, false); err != nil {
			b.Fatal(err)
		}
	}
}
