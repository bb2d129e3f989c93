package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// DeviceStatus is a device's retained status message on
// vward/v1/devices/{id}/status: "online" or "offline" as plain text, or
// {"online": true|false, "ts": "<RFC 3339>"}. A device sets its MQTT will to
// the offline form, so the broker says it when the connection drops.
type DeviceStatus struct {
	Online bool
	At     time.Time // the message's ts, else when it was received
	// Stamped says At is the device's own ts.
	Stamped bool
}

// maxStatusPayload bounds a status message; it is a word or a tiny object.
const maxStatusPayload = 1024

// DecodeStatus reads a status payload received at now. A ts is checked
// against the clock-skew limit only: a retained status may be old.
func DecodeStatus(payload []byte, now time.Time, lim Limits) (DeviceStatus, error) {
	if len(payload) > maxStatusPayload {
		return DeviceStatus{}, reject(RejectTooLarge, "status is %d bytes; the limit is %d", len(payload), maxStatusPayload)
	}
	st := DeviceStatus{At: now.UTC()}
	switch strings.ToLower(string(bytes.TrimSpace(payload))) {
	case "online":
		st.Online = true
		return st, nil
	case "offline":
		return st, nil
	}
	var w struct {
		Online *bool  `json:"online"`
		TS     string `json:"ts"`
	}
	if err := json.Unmarshal(payload, &w); err != nil {
		return DeviceStatus{}, reject(RejectJSON, "status is neither online, offline nor a JSON object: %s", describeJSONError(err))
	}
	if w.Online == nil {
		return DeviceStatus{}, reject(RejectEnvelope, "status object has no online field")
	}
	st.Online = *w.Online
	if w.TS != "" {
		t, err := time.Parse(time.RFC3339Nano, w.TS)
		if err != nil {
			return DeviceStatus{}, reject(RejectTime, "ts: %q is not an RFC 3339 time", clipString(w.TS))
		}
		if t.After(now.Add(lim.ClockSkew)) {
			return DeviceStatus{}, reject(RejectTime, "ts: %s is in the future", w.TS)
		}
		st.At, st.Stamped = t.UTC(), true
	}
	return st, nil
}

func (s DeviceStatus) String() string {
	if s.Online {
		return fmt.Sprintf("online at %s", s.At.Format(time.RFC3339))
	}
	return fmt.Sprintf("offline at %s", s.At.Format(time.RFC3339))
}
