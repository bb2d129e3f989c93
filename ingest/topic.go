package ingest

import (
	"fmt"
	"strings"

	"github.com/vward/vward"
)

// RejectTopic is the rejection code of a message on a topic vward cannot read.
const RejectTopic = "bad_topic"

// ParseTopic reads the device id from a readings topic.
func ParseTopic(topic string) (vward.DeviceID, error) {
	rest, ok := strings.CutPrefix(topic, vward.TopicPrefix)
	if !ok {
		return "", fmt.Errorf("topic %q is not under %s", topic, vward.TopicPrefix)
	}
	device, leaf, ok := strings.Cut(rest, "/")
	if !ok || device == "" {
		return "", fmt.Errorf("topic %q has no device id", topic)
	}
	if leaf != "readings" {
		return vward.DeviceID(device), fmt.Errorf("topic %q: %q is not a readings topic", topic, leaf)
	}
	return vward.DeviceID(device), nil
}
