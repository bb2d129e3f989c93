// Package notify tells people of alerts: it takes the alert engine's events,
// finds who a ward's escalation tier names (users, a role, an on-call rota),
// and sends each of them a Notification over a Channel (a signed webhook,
// email), with retries, a delivery log per alert, and metrics. An
// acknowledgement stops every send still pending for the alert at once.
//
// The alert engine never waits on a channel: Dispatcher.Publish only queues,
// and what a full queue or a restart would lose is recomputed from the open
// alerts and the delivery log (docs/alerts.md, "Who is told when").
package notify

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
)

// SchemaVersion names the Notification's JSON schema (docs/webhooks.md). A
// change that a receiver could trip on is a new version, never an edit.
const SchemaVersion = "vward.notification.v1"

// Detail is how much of the patient a channel's notifications carry: the
// least that lets the reader act, chosen per channel.
type Detail string

// The detail levels, least first.
const (
	// DetailNone names the ward and the alert only; the link opens the board.
	DetailNone Detail = "none"
	// DetailID adds vward's patient id, and links to the patient's view.
	DetailID Detail = "id"
	// DetailInitials adds the patient's initials. The default.
	DetailInitials Detail = "initials"
	// DetailName adds the patient's full name, for channels inside the
	// trust's own network.
	DetailName Detail = "name"
)

// ParseDetail checks a detail level's name; empty is DetailInitials.
func ParseDetail(s string) (Detail, error) {
	switch d := Detail(s); d {
	case "":
		return DetailInitials, nil
	case DetailNone, DetailID, DetailInitials, DetailName:
		return d, nil
	}
	return "", vward.Errorf(vward.ErrInvalid, "detail %q is not none, id, initials or name", s)
}

// PatientRef is the patient a notification is about, as far as its
// channel's Detail allows.
type PatientRef struct {
	ID       vward.PatientID `json:"id"`
	Initials string          `json:"initials,omitempty"`
	Name     string          `json:"name,omitempty"`
}

// Notification is one alert event told to one recipient over one channel.
// Its JSON is the webhook body (docs/webhooks.md).
type Notification struct {
	Schema string `json:"schema"`
	// ID is the idempotency key: the same on every attempt and after a
	// restart, so a receiver can drop a repeat.
	ID           string `json:"id"`
	AlertID      int64  `json:"alert_id"`
	AlertVersion int    `json:"alert_version"`
	// Event is the alert change told: raised, upgraded, reraised,
	// escalated, reminded or unshelved.
	Event     string             `json:"event"`
	Ward      vward.WardID       `json:"ward"`
	Patient   *PatientRef        `json:"patient,omitempty"`
	Device    vward.DeviceID     `json:"device,omitempty"`
	Rule      string             `json:"rule,omitempty"` // the care plan rule of a care_plan alert
	Condition alerting.Condition `json:"condition"`
	Queue     alerting.Queue     `json:"queue"`
	Risk      string             `json:"risk"`
	Score     int                `json:"score"`
	State     alerting.State     `json:"state"`
	Tier      int                `json:"tier"`
	TierName  string             `json:"tier_name"`
	Reason    string             `json:"reason"`
	// Recipient is who the tier names (a username); Address is where the
	// channel reaches them (an email address), not sent in the body.
	Recipient string `json:"recipient"`
	Address   string `json:"-"`
	Channel   string `json:"channel"`
	// EvidenceAt is the measurement time of the data behind the alert,
	// EvidenceAgeSeconds how old it was when the notification was made.
	EvidenceAt         time.Time `json:"evidence_at,omitzero"`
	EvidenceAgeSeconds int64     `json:"evidence_age_seconds,omitempty"`
	// Link opens the board on the patient (or on the board, DetailNone).
	Link string `json:"link,omitempty"`
	// At is when the alert changed; SentAt when this attempt was made.
	At     time.Time `json:"at"`
	SentAt time.Time `json:"sent_at"`
}

// notificationID is the idempotency key of an alert change told to one
// recipient over one channel: alert id and version name the change.
func notificationID(alert int64, version int, channel, recipient string) string {
	return fmt.Sprintf("a%d.v%d.%s.%s", alert, version, channel, recipient)
}

// Initials returns a name's initials, "A.L." for "Ada Lovelace".
func Initials(name string) string {
	var b strings.Builder
	for _, f := range strings.FieldsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || r == '-' }) {
		for _, r := range f {
			if unicode.IsLetter(r) {
				b.WriteRune(unicode.ToUpper(r))
				b.WriteByte('.')
				break
			}
		}
	}
	return b.String()
}

// Subject is a one-line summary, for an email's subject or a pager.
func (n Notification) Subject() string {
	if n.Event == "test" {
		return fmt.Sprintf("[vward] Test notification over %s to %s", n.Channel, n.Recipient)
	}
	var who string
	switch {
	case n.Patient == nil:
	case n.Patient.Name != "":
		who = " " + n.Patient.Name
	case n.Patient.Initials != "":
		who = " " + n.Patient.Initials
	default:
		who = " patient " + string(n.Patient.ID)
	}
	what := string(n.Condition)
	switch n.Condition {
	case alerting.News2:
		what = fmt.Sprintf("NEWS2 %d, %s risk", n.Score, n.Risk)
	case alerting.Overdue:
		what = alerting.OverdueWhat(n.Rule)
	case alerting.DeviceOffline:
		what = "device " + string(n.Device) + " offline"
	case alerting.BatteryLow:
		what = "device " + string(n.Device) + " battery low"
	case alerting.CarePlan:
		what = "care plan rule " + n.Rule + ", " + n.Risk + " risk"
	case alerting.Concern:
		what = "concern reported by the patient or carer, " + n.Risk + " risk"
	}
	return fmt.Sprintf("[vward %s] %s%s: %s (%s)", n.Ward, strings.ToUpper(n.Event[:1])+n.Event[1:], who, what, n.TierName)
}

// Text is the notification in a few lines, for email bodies.
func (n Notification) Text() string {
	var b strings.Builder
	if n.Event == "test" {
		fmt.Fprintf(&b, "%s\n\nThis is a test of the channel %s, sent by vward notify test-send; no patient is involved and nothing need be done.\n", n.Subject(), n.Channel)
		if n.Link != "" {
			fmt.Fprintf(&b, "\nThe board: %s\n", n.Link)
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%s\n\n", n.Subject())
	fmt.Fprintf(&b, "Ward: %s\n", n.Ward)
	if n.Patient != nil {
		fmt.Fprintf(&b, "Patient: %s", n.Patient.ID)
		if n.Patient.Name != "" {
			fmt.Fprintf(&b, " (%s)", n.Patient.Name)
		} else if n.Patient.Initials != "" {
			fmt.Fprintf(&b, " (%s)", n.Patient.Initials)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "Alert: %d, %s, %s risk, %s\n", n.AlertID, n.Condition, n.Risk, n.State)
	fmt.Fprintf(&b, "Tier: %d (%s)\n", n.Tier, n.TierName)
	if !n.EvidenceAt.IsZero() {
		fmt.Fprintf(&b, "Evidence measured: %s (%s old)\n", n.EvidenceAt.UTC().Format(time.RFC3339), time.Duration(n.EvidenceAgeSeconds)*time.Second)
	}
	fmt.Fprintf(&b, "Why: %s\n", n.Reason)
	if n.Link != "" {
		fmt.Fprintf(&b, "\nOpen the board: %s\n", n.Link)
	}
	b.WriteString("\nAcknowledge the alert on the board to stop further notifications.\n")
	return b.String()
}
