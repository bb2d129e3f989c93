package ingest

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// slowParse is the general path's envelope decoding and validation.
func slowParse(payload []byte, lim Limits) (wireMessage, bool) {
	var w wireMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if dec.Decode(&w) != nil || dec.More() || len(w.Readings) > lim.MaxReadings || checkEnvelope(&w) != nil {
		return w, false
	}
	return w, true
}

var fastSeeds = []string{
	`{"msg_id":"m","ts":"2026-11-23T10:15:00Z","readings":[{"type":"spo2","value":95}]}`,
	`{"msg_id":"m","ts":"2026-11-23T10:15:00Z","readings":[{"type":"consciousness","value":"V"},{"type":"supplemental_oxygen","value":false}],"battery":0.1}`,
	`{"msg_id":"m","ts":"2026-11-23T10:15:00Z","readings":[{"type":"temperature","value":"x","ts":"2026-11-23T10:00:00+01:00"}]}`,
	` { "msg_id" : "ox-1" , "ts":"2026-11-23T10:15:00.123456Z", "readings" : [ { "value" : -1.5e2 , "type" : "heart_rate" } ] , "battery" : 1 } `,
	`{"msg_id":"m","ts":"t","readings":[]}`,
	`{"msg_id":"m","ts":"t","readings":[{}]}`,
	`{"MSG_ID":"m","ts":"t","readings":[{"type":"spo2","value":1}]}`,
	`{"msg_id":"m","msg_id":"n","ts":"t","readings":[{"type":"spo2","value":1}]}`,
	`{"msg_id":"m\u0041","ts":"t","readings":[{"type":"spo2","value":1}]}`,
	`{"msg_id":"m","ts":"t","readings":[{"type":"spo2","value":1}],"battery":1.5}`,
	`{"msg_id":"m","ts":"t","readings":[{"type":"spo2","value":01}]}`,
	`{"msg_id":"m","ts":"t","readings":[{"type":"spo2","value":1}]} x`,
	`{"msg_id":"m","ts":"t","readings":[{"type":"spo2","value":null}],"extra":{"a":[1,2]}}`,
	`{"msg_id":"","ts":"t","readings":[{"type":"spo2","value":1}]}`,
	`{"msg_id":"é","ts":"t","readings":[{"type":"spo2","value":1}]}`,
	`{}`,
	`[]`,
}

// The fast path accepts only what the general path accepts, and decodes it
// identically.
func TestParseFastAgreesWithGeneralPath(t *testing.T) {
	for _, s := range fastSeeds {
		checkFastAgrees(t, []byte(s))
	}
	// The common case must actually take the fast path.
	var w wireMessage
	if _, ok := parseFast([]byte(fastSeeds[0]), &w, nil, DefaultLimits()); !ok {
		t.Error("a plain message did not take the fast path")
	}
	if _, ok := parseFast([]byte(fastSeeds[3]), &w, nil, DefaultLimits()); !ok {
		t.Error("a plain message did not take the fast path")
	}
}

func checkFastAgrees(t *testing.T, payload []byte) {
	t.Helper()
	if !utf8.Valid(payload) {
		// Decode refuses it before either path; encoding/json would
		// replace the bad bytes and the fast path keep them.
		return
	}
	var fast wireMessage
	var ok bool
	if fast.Readings, ok = parseFast(payload, &fast, nil, DefaultLimits()); !ok {
		return
	}
	slow, ok := slowParse(payload, DefaultLimits())
	if !ok {
		t.Fatalf("fast path accepted what the general path refuses: %s", payload)
	}
	norm := func(w wireMessage) wireMessage {
		for i := range w.Readings {
			w.Readings[i].Value = append(json.RawMessage(nil), w.Readings[i].Value...)
		}
		return w
	}
	if !reflect.DeepEqual(norm(fast), norm(slow)) {
		t.Fatalf("fast and general paths differ on %s:\nfast    %+v\ngeneral %+v", payload, fast, slow)
	}
	for _, r := range fast.Readings {
		if v, ok := fastNumber(r.Value); ok {
			var want float64
			if err := json.Unmarshal(r.Value, &want); err != nil || want != v {
				t.Fatalf("fastNumber(%s) = %v, json says %v (%v)", r.Value, v, want, err)
			}
		}
	}
}

func FuzzParseFast(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkFastAgrees(t, payload) })
}
