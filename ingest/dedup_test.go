package ingest

import (
	"fmt"
	"testing"

	"github.com/vward/vward"
)

// BenchmarkRecentMessages is the dedup window at its production size, full,
// with 12,700 devices each sending a new msg_id: a lookup, an eviction and
// an insert per message.
func BenchmarkRecentMessages(b *testing.B) {
	const devices = 12700
	r := newRecentMessages(65536)
	ids := make([]vward.DeviceID, devices)
	for i := range ids {
		ids[i] = vward.DeviceID(fmt.Sprintf("bench-%05d", i))
	}
	msgIDs := make([]string, 1<<17)
	for i := range msgIDs {
		msgIDs[i] = fmt.Sprintf("m-%07d", i)
	}
	payload := []byte(`{"msg_id":"m-0000001","ts":"2026-11-24T08:00:00.000001Z","readings":[{"type":"heart_rate","value":72}]}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// A pair recurs only after lcm(12,700, 2¹⁷) messages, far outside the window.
		if r.check(ids[i%devices], msgIDs[i%len(msgIDs)], payload) == duplicate {
			b.Fatal("a new message was taken for a duplicate")
		}
	}
}
