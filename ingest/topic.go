package ingest

import (
	"fmt"
	"strings"

	"github.com/vward/vward"
)

// RejectTopic is the rejection code of a message on a topic vward cannot read.
const RejectTopic = "bad_topic"

// Format is the payload format a topic carries.
type Format string

// The formats vward accepts, named by their topic leaf.
const (
	FormatV1    Format = "readings" // device protocol v1 JSON
	FormatSenML Format = "senml"    // SenML (RFC 8428) JSON
)

// Filters are the subscriptions ingest makes: every accepted reading
// format, devices' status, and answered questionnaires.
var Filters = []string{vward.ReadingsFilter, vward.SenMLFilter, vward.StatusFilter, vward.QuestionnaireFilter}

// ParseTopic reads the device id from a readings or senml topic.
func ParseTopic(topic string) (vward.DeviceID, error) {
	d, _, err := ParseDeviceTopic(topic)
	return d, err
}

// ParseDeviceTopic reads the device id and the payload format from a topic.
// On error the device id is still returned when the topic names one, so the
// rejection can be filed under it.
func ParseDeviceTopic(topic string) (vward.DeviceID, Format, error) {
	rest, ok := strings.CutPrefix(topic, vward.TopicPrefix)
	if !ok {
		return "", "", fmt.Errorf("topic %q is not under %s", topic, vward.TopicPrefix)
	}
	device, leaf, ok := strings.Cut(rest, "/")
	if !ok || device == "" {
		return "", "", fmt.Errorf("topic %q has no device id", topic)
	}
	switch f := Format(leaf); f {
	case FormatV1, FormatSenML:
		return vward.DeviceID(device), f, nil
	}
	return vward.DeviceID(device), "", fmt.Errorf("topic %q: %q is not a readings or senml topic", topic, leaf)
}

// statusLeaf is the topic leaf of a device's retained online status.
const statusLeaf = "status"

// StatusTopicDevice reads the device id from a status topic.
func StatusTopicDevice(topic string) (vward.DeviceID, bool) {
	rest, ok := strings.CutPrefix(topic, vward.TopicPrefix)
	if !ok {
		return "", false
	}
	device, leaf, ok := strings.Cut(rest, "/")
	if !ok || device == "" || leaf != statusLeaf {
		return "", false
	}
	return vward.DeviceID(device), true
}
