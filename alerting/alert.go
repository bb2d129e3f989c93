package alerting

import (
	"encoding/json"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// Condition is what an alert is about. A patient has at most one open alert
// per condition (per device, for the technical ones): a worsening upgrades
// the open alert, it never spawns another.
type Condition string

// The conditions vward watches. docs/alerts.md says when each holds.
const (
	// News2 holds while the patient's current observation set scores in a
	// band that calls for a response: low-medium (a red score), medium or
	// high. It is one condition whose risk upgrades, not one per band.
	News2 Condition = "news2"
	// Overdue holds while no complete-enough set has been measured within
	// the monitoring interval the patient's latest score calls for.
	Overdue Condition = "overdue"
	// DeviceOffline holds while a device is silent or its will said offline.
	DeviceOffline Condition = "device_offline"
	// BatteryLow holds while a device reports a low battery.
	BatteryLow Condition = "battery_low"
	// ChannelFailing holds while a notification channel keeps failing a
	// ward (notify gave up on several notifications in a row): alerts may
	// reach nobody away from the board. It is the ward's, not a patient's.
	ChannelFailing Condition = "channel_failing"
	// CarePlan holds while a rule of the patient's care plan holds
	// (careplan.Finding). It is one alert per rule, named by Key.Rule, at
	// the rule's risk; it is raised beside NEWS2, never instead of it.
	CarePlan Condition = "care_plan"
)

// Conditions lists every condition, for the hazard log's check that each
// is covered (safety.Required).
var Conditions = []Condition{News2, Overdue, DeviceOffline, BatteryLow, ChannelFailing, CarePlan, Concern}

// Queue separates clinical alarms from technical ones: a technical alert is
// never escalated, never reminded and never pages a clinician.
type Queue string

// The two queues.
const (
	Clinical  Queue = "clinical"
	Technical Queue = "technical"
)

// Queue returns the queue the condition's alerts belong to.
func (c Condition) Queue() Queue {
	if c == DeviceOffline || c == BatteryLow || c == ChannelFailing {
		return Technical
	}
	return Clinical
}

// State is where an alert is in its lifecycle (docs/alerts.md has the table).
type State string

// The states of an alert.
const (
	// Raised: the condition holds and no clinician has acknowledged it.
	Raised State = "raised"
	// Acknowledged: the condition holds and a clinician has taken it on.
	Acknowledged State = "acknowledged"
	// Shelved: silenced by a clinician for a limited time, with a reason.
	Shelved State = "shelved"
	// Cleared: the patient returned to normal before anyone acknowledged
	// the alert. It stays open until a clinician acknowledges it.
	Cleared State = "cleared"
	// Resolved: over. A resolved alert never changes again.
	Resolved State = "resolved"
)

// Open reports whether the alert is not yet resolved.
func (s State) Open() bool { return s != Resolved && s != "" }

// Key names the one open alert a patient may have for a condition. Device is
// empty for the clinical conditions. An alert of no patient (a failing
// notification channel) is one per ward and channel. Rule is the care plan
// rule's ID of a care_plan alert: one open alert per rule, not per plan.
type Key struct {
	Patient   vward.PatientID
	Condition Condition
	Device    vward.DeviceID
	Ward      vward.WardID // only when Patient is empty
	Channel   string
	Rule      string
}

// Alert is one alert as the REST API, the board and the store see it.
type Alert struct {
	ID      int64 `json:"id"`
	Version int   `json:"version"` // increments on every change: apply events in order of it

	Patient   vward.PatientID `json:"patient"`
	Ward      vward.WardID    `json:"ward"`
	Condition Condition       `json:"condition"`
	Queue     Queue           `json:"queue"`
	Device    vward.DeviceID  `json:"device,omitempty"`
	// Channel is the notification channel a channel_failing alert is about.
	Channel string `json:"channel,omitempty"`
	// Rule is the ID of the care plan rule a care_plan alert is about.
	Rule string `json:"rule,omitempty"`

	// Risk is the highest band the condition reached since the alert was
	// last (re)raised; technical alerts are "low".
	Risk news2.Risk `json:"risk"`
	// Score is the NEWS2 aggregate behind the latest raise or upgrade (for
	// a partial set, the least the full score could be).
	Score int   `json:"score"`
	State State `json:"state"`
	// Active reports whether the condition still holds.
	Active bool `json:"active"`
	// Tier is the escalation tier (0 = ward clinician), TierName its name.
	Tier     int    `json:"tier"`
	TierName string `json:"tier_name"`
	Reason   string `json:"reason"` // the latest transition, in words

	RaisedAt  time.Time `json:"raised_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// UnackedSince is when the current unacknowledged period began; time
	// to acknowledge is measured from it.
	UnackedSince   time.Time `json:"unacknowledged_since,omitzero"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitzero"`
	AcknowledgedBy string    `json:"acknowledged_by,omitempty"`
	AckNote        string    `json:"ack_note,omitempty"`
	ShelvedUntil   time.Time `json:"shelved_until,omitzero"`
	ShelvedBy      string    `json:"shelved_by,omitempty"`
	ShelveReason   string    `json:"shelve_reason,omitempty"`
	ShelvedFrom    State     `json:"shelved_from,omitempty"`
	EscalateAt     time.Time `json:"escalate_at,omitzero"`
	RemindAt       time.Time `json:"remind_at,omitzero"`
	ClearedAt      time.Time `json:"cleared_at,omitzero"`
	ResolvedAt     time.Time `json:"resolved_at,omitzero"`
	ResolvedBy     string    `json:"resolved_by,omitempty"`
	// EvidenceAt is the measurement time of the newest observation set
	// behind a transition. A set no newer than a resolved alert's
	// EvidenceAt cannot raise a new one, so redelivered readings never
	// re-raise.
	EvidenceAt time.Time `json:"evidence_at,omitzero"`

	// Hysteresis, kept in memory only: after a restart the streak starts
	// again, which errs on keeping the alert.
	better      int       // consecutive complete-enough sets below the condition
	betterSince time.Time // measurement time of the first of them
	lastCounted time.Time // measurement time of the last set counted
}

// Key returns the alert's key.
func (a *Alert) Key() Key {
	k := Key{Patient: a.Patient, Condition: a.Condition, Device: a.Device, Channel: a.Channel, Rule: a.Rule}
	if a.Patient == "" {
		k.Ward = a.Ward
	}
	return k
}

// Audit actions, one per kind of state change.
const (
	ActRaised       = "raised"
	ActUpgraded     = "upgraded"
	ActReraised     = "reraised"
	ActEscalated    = "escalated"
	ActReminded     = "reminded"
	ActAcknowledged = "acknowledged"
	ActShelved      = "shelved"
	ActUnshelved    = "unshelved"
	ActCleared      = "cleared"
	ActResolved     = "resolved"
	// A clinician handed the patient over to another service from the
	// alert (package handover), and later recorded what came of it. Neither
	// changes the alert's state.
	ActHandover        = "handover"
	ActHandoverOutcome = "handover_outcome"
)

// System is the actor of every change vward makes by itself.
const System = "system"

// AuditEntry is one state change of an alert: who or what, when, why, and the
// observations behind it.
type AuditEntry struct {
	ID      int64        `json:"id"`
	AlertID int64        `json:"alert_id"`
	Ward    vward.WardID `json:"ward"`
	At      time.Time    `json:"at"`
	Actor   string       `json:"actor"` // a clinician's username, or "system"
	Action  string       `json:"action"`
	From    State        `json:"from,omitempty"`
	To      State        `json:"to"`
	Risk    news2.Risk   `json:"risk"`
	Tier    int          `json:"tier"`
	Reason  string       `json:"reason"`
	Note    string       `json:"note,omitempty"`
	// ResponseSeconds is, on an acknowledgement, the time since the alert
	// became unacknowledged.
	ResponseSeconds *float64 `json:"response_seconds,omitempty"`
	// Observations is the evidence: the scored observation set for a
	// clinical change, the device's state for a technical one.
	Observations json.RawMessage `json:"observations,omitempty"`
}

// conflictf and invalidf refuse a clinician's action with one of vward's
// error kinds, which the web layer answers with a status; each message
// begins with the words the alert API answers that kind with.
func conflictf(format string, args ...any) error {
	return vward.Errorf(vward.ErrConflict, "not allowed in the alert's state: "+format, args...)
}

func invalidf(format string, args ...any) error {
	return vward.Errorf(vward.ErrInvalid, "invalid request: "+format, args...)
}

// errNoSuchAlert is the answer for an alert id the store does not hold.
var errNoSuchAlert = vward.Errorf(vward.ErrNotFound, "no such alert")
