package simulator

import (
	"fmt"
	"time"
)

// ClockMode says what a measurement's timestamp is when time is
// accelerated. Either way the run never stamps a reading later than the
// real time it is published: vward refuses readings more than two minutes
// in the future.
type ClockMode string

const (
	// RealClock stamps each measurement with the real time at which it is
	// due: physiology, schedules and faults run Speed times faster, and the
	// board scores every reading as current. Use it to check what the board
	// shows (scenario expectations).
	RealClock ClockMode = "real"
	// SimulatedClock stamps each measurement with simulated time, which
	// starts Span ago and catches up with the present exactly when the run
	// ends: a day at Speed 720 publishes a day of readings, stamped over the
	// past day, in two minutes. The stored history looks like a real day,
	// but the board scores only readings within its freshness window (an
	// hour) of the wall clock, so only the last simulated hour shows a
	// NEWS2.
	SimulatedClock ClockMode = "simulated"
)

// Clock maps scenario time (simulated time since the scenario started) to
// real time and to measurement timestamps.
type Clock struct {
	Mode ClockMode
	// Speed is simulated seconds per real second; 1 is real time.
	Speed float64
	// Origin is the real time at which scenario time 0 is due.
	Origin time.Time
	// Span is the scenario's simulated length; SimulatedClock needs it to
	// end at the present.
	Span time.Duration
}

// Check reports a clock that cannot work.
func (c Clock) Check() error {
	if c.Speed <= 0 {
		return fmt.Errorf("speed %g must be above 0", c.Speed)
	}
	switch c.Mode {
	case RealClock:
	case SimulatedClock:
		if c.Span <= 0 && c.Speed != 1 {
			return fmt.Errorf("a simulated clock at speed %g needs a duration, so that it can end at the present", c.Speed)
		}
	default:
		return fmt.Errorf("clock %q is not %q or %q", c.Mode, RealClock, SimulatedClock)
	}
	return nil
}

// Due is the real time at which scenario time t happens.
func (c Clock) Due(t time.Duration) time.Time {
	return c.Origin.Add(time.Duration(float64(t) / c.Speed))
}

// RealSpan is how long the scenario takes in real time.
func (c Clock) RealSpan() time.Duration { return time.Duration(float64(c.Span) / c.Speed) }

// Stamp is the measurement timestamp of scenario time t, to the
// microsecond. It is never later than Due(t), so a reading published on
// time is never in vward's future.
func (c Clock) Stamp(t time.Duration) time.Time {
	var ts time.Time
	switch c.Mode {
	case SimulatedClock:
		// Simulated time ends at the real end of the run: Origin + Span/Speed.
		ts = c.Origin.Add(c.RealSpan() - c.Span + t)
	default:
		ts = c.Due(t)
	}
	return ts.UTC().Truncate(time.Microsecond)
}

// ScenarioTimeOfStamp inverts Stamp: the scenario time a measurement
// timestamp belongs to.
func (c Clock) ScenarioTimeOfStamp(ts time.Time) time.Duration {
	if c.Mode == SimulatedClock {
		return ts.Sub(c.Origin.Add(c.RealSpan() - c.Span))
	}
	return c.ScenarioTime(ts)
}

// ScenarioTime is the scenario time at real time rt.
func (c Clock) ScenarioTime(rt time.Time) time.Duration {
	return time.Duration(float64(rt.Sub(c.Origin)) * c.Speed)
}
