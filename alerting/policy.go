package alerting

import (
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/news2"
)

// PerRisk holds one duration per NEWS2 risk band.
type PerRisk struct {
	Low, LowMedium, Medium, High time.Duration
}

// For returns the duration of a band.
func (p PerRisk) For(r news2.Risk) time.Duration {
	switch r {
	case news2.High:
		return p.High
	case news2.Medium:
		return p.Medium
	case news2.LowMedium:
		return p.LowMedium
	}
	return p.Low
}

func (p PerRisk) over(def PerRisk) PerRisk {
	return PerRisk{
		Low: orDur(p.Low, def.Low), LowMedium: orDur(p.LowMedium, def.LowMedium),
		Medium: orDur(p.Medium, def.Medium), High: orDur(p.High, def.High),
	}
}

// Intervals holds the longest gap allowed between complete-enough
// observation sets, per RCP minimum monitoring frequency.
type Intervals struct {
	TwelveHourly    time.Duration // score 0
	FourToSixHourly time.Duration // score 1–4
	Hourly          time.Duration // red score or 5–6
	Continuous      time.Duration // 7 or more
}

// For returns the interval the result's monitoring frequency calls for.
func (i Intervals) For(r news2.Result) time.Duration {
	switch r.Monitoring() {
	case "continuous":
		return i.Continuous
	case "hourly":
		return i.Hourly
	case "12-hourly":
		return i.TwelveHourly
	}
	return i.FourToSixHourly
}

func (i Intervals) over(def Intervals) Intervals {
	return Intervals{
		TwelveHourly: orDur(i.TwelveHourly, def.TwelveHourly), FourToSixHourly: orDur(i.FourToSixHourly, def.FourToSixHourly),
		Hourly: orDur(i.Hourly, def.Hourly), Continuous: orDur(i.Continuous, def.Continuous),
	}
}

// Policy is a ward's escalation policy. Zero fields take DefaultPolicy's;
// docs/alerts.md explains each default.
type Policy struct {
	// AckTimeout is how long a raised alert may stay unacknowledged before
	// it escalates to the next tier, per risk (shortest for high). Low is
	// used only by the overdue alerts of low-risk patients.
	AckTimeout PerRisk
	// Reminder is how often an unacknowledged alert is re-notified.
	Reminder PerRisk
	// Overdue is the longest gap between complete-enough sets.
	Overdue Intervals
	// Tiers names the escalation tiers, first the ward clinician.
	Tiers []string
	// ClearSets and ClearPeriod are the NEWS2 hysteresis: the alert clears
	// only after ClearSets consecutive complete-enough sets below every
	// alerting band, the first and last at least ClearPeriod apart (by
	// measurement time). A negative ClearPeriod means no period.
	ClearSets   int
	ClearPeriod time.Duration
	// MinParameters is how many of the seven NEWS2 parameters a set needs
	// to count as complete enough: to be an observation round for the
	// overdue check, and to count as better for the hysteresis. A partial
	// set may still raise, since its score is the least the full one is.
	MinParameters int
	// MaxShelve bounds how long a clinician may shelve an alert.
	MaxShelve time.Duration
	// DeviceSilence is how long a device may go unheard before it is
	// offline; OfflineGrace how long after its will says offline.
	DeviceSilence time.Duration
	OfflineGrace  time.Duration
	// BatteryLow raises battery_low below it; BatteryClear (higher)
	// clears it, so a battery hovering at the threshold does not flap.
	BatteryLow   float64
	BatteryClear float64
	// StreamConfirm is how long a NEWS2 alert that a streaming device's
	// reading would raise is held for confirmation, so that a moment's
	// artefact pages nobody; a spot check's or a person's set raises at
	// once. At most MaxStreamConfirm; NoStreamConfirm raises at once.
	StreamConfirm time.Duration
}

// MaxStreamConfirm bounds Policy.StreamConfirm: a real deterioration on a
// wearable waits no longer than this to be raised.
const MaxStreamConfirm = time.Minute

// NoStreamConfirm, as Policy.StreamConfirm, raises a streaming device's
// set at once.
const NoStreamConfirm time.Duration = -1

// StreamingGap: two readings of one kind from one device measured less
// than this apart make the device streaming (a wearable, a patch sending
// every few seconds), not a spot check.
const StreamingGap = time.Minute

// DefaultPolicy returns the product's defaults (docs/alerts.md, "Timers").
func DefaultPolicy() Policy {
	return Policy{
		AckTimeout: PerRisk{Low: 4 * time.Hour, LowMedium: time.Hour, Medium: 30 * time.Minute, High: 10 * time.Minute},
		Reminder:   PerRisk{Low: time.Hour, LowMedium: 20 * time.Minute, Medium: 10 * time.Minute, High: 5 * time.Minute},
		Overdue: Intervals{
			TwelveHourly: 12 * time.Hour, FourToSixHourly: 4 * time.Hour,
			Hourly: time.Hour, Continuous: 15 * time.Minute,
		},
		Tiers:         []string{"ward clinician", "senior clinician", "single point of access"},
		ClearSets:     3,
		ClearPeriod:   time.Hour,
		MinParameters: int(news2.NumParameters),
		MaxShelve:     4 * time.Hour,
		DeviceSilence: time.Hour,
		OfflineGrace:  5 * time.Minute,
		BatteryLow:    0.2,
		BatteryClear:  0.3,
		StreamConfirm: 30 * time.Second,
	}
}

// over fills p's zero fields from def.
func (p Policy) over(def Policy) Policy {
	out := p
	out.AckTimeout = p.AckTimeout.over(def.AckTimeout)
	out.Reminder = p.Reminder.over(def.Reminder)
	out.Overdue = p.Overdue.over(def.Overdue)
	if len(out.Tiers) == 0 {
		out.Tiers = def.Tiers
	}
	if out.ClearSets <= 0 {
		out.ClearSets = def.ClearSets
	}
	out.ClearPeriod = orDur(p.ClearPeriod, def.ClearPeriod)
	if out.MinParameters <= 0 || out.MinParameters > int(news2.NumParameters) {
		out.MinParameters = def.MinParameters
	}
	out.MaxShelve = orDur(p.MaxShelve, def.MaxShelve)
	out.DeviceSilence = orDur(p.DeviceSilence, def.DeviceSilence)
	out.OfflineGrace = orDur(p.OfflineGrace, def.OfflineGrace)
	if out.BatteryLow <= 0 {
		out.BatteryLow = def.BatteryLow
	}
	if out.BatteryClear < out.BatteryLow {
		out.BatteryClear = max(def.BatteryClear, out.BatteryLow)
	}
	switch {
	case out.StreamConfirm == 0:
		out.StreamConfirm = def.StreamConfirm
	case out.StreamConfirm > MaxStreamConfirm:
		out.StreamConfirm = MaxStreamConfirm
	}
	return out
}

func (p Policy) tierName(t int) string {
	if t >= 0 && t < len(p.Tiers) {
		return p.Tiers[t]
	}
	return ""
}

// completeEnough reports whether a set counts as an observation round.
func (p Policy) completeEnough(r news2.Result) bool {
	n := 0
	for q := range news2.NumParameters {
		if r.Has(q) {
			n++
		}
	}
	return n >= p.MinParameters
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Config configures the alert engine.
type Config struct {
	// Policy is every ward's policy; its zero fields take DefaultPolicy's.
	Policy Policy
	// Wards overrides the policy per ward; zero fields take Policy's.
	Wards map[vward.WardID]Policy
	// Tick is how often timers are checked; default one second.
	Tick time.Duration
	// Clock is the engine's clock; nil is time.Now. Tests inject one.
	Clock func() time.Time
	// Location is the wards' day, for the deadlines of care plans'
	// expected measurements ("weight daily by 10:00"); nil is time.Local.
	Location *time.Location
	// QueueSize bounds transitions waiting to be written. A full queue
	// makes the caller wait: a transition is never dropped. Default 1024.
	QueueSize int
}

func (c Config) withDefaults() Config {
	c.Policy = c.Policy.over(DefaultPolicy())
	wards := make(map[vward.WardID]Policy, len(c.Wards))
	for w, p := range c.Wards {
		wards[w] = p.over(c.Policy)
	}
	c.Wards = wards
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	return c
}

// PolicyFor returns a ward's effective policy.
func (c Config) PolicyFor(w vward.WardID) Policy {
	if p, ok := c.Wards[w]; ok {
		return p
	}
	return c.Policy
}
