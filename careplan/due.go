package careplan

import (
	"fmt"
	"time"

	"github.com/vward/vward"
)

// Due is when an expected measurement falls due.
type Due struct {
	Kind vward.ReadingKind
	// Last is the latest measurement, zero when there is none.
	Last time.Time
	// At is when the next measurement is due; Overdue says the time asked
	// about is after it.
	At      time.Time
	Overdue bool
}

// Due appends to into when each expected measurement falls due and whether
// it is overdue at t. last holds each kind's latest measurement time (a
// kind not in it was never measured); start is when the plan started, and
// a plan gives a full interval from its start whatever came before. loc is
// the ward's time zone, for deadlines (nil is UTC).
//
// Without a deadline a measurement is due Every after the last one. With a
// deadline ("daily by 10:00") a measurement covers its local day, and the
// next is due by the deadline Every days later. Either way it is due no
// earlier than it would be had the plan started with no measurement: Every
// after start, or by the first deadline at or after start.
func (p *Plan) Due(t, start time.Time, last map[vward.ReadingKind]time.Time, loc *time.Location, into []Due) []Due {
	for _, e := range p.Expected {
		into = append(into, e.Due(t, start, last[e.Kind], loc))
	}
	return into
}

// Due is when the expected measurement falls due and whether it is
// overdue at t, as Plan.Due says, given when it began to be expected
// (start) and its latest measurement (last, zero when there is none).
func (e Expectation) Due(t, start, last time.Time, loc *time.Location) Due {
	if loc == nil {
		loc = time.UTC
	}
	d := Due{Kind: e.Kind, Last: last}
	measured := !last.IsZero()
	if e.By == 0 {
		d.At = start.Add(e.Every)
		if measured && last.Add(e.Every).After(d.At) {
			d.At = last.Add(e.Every)
		}
	} else {
		d.At = deadline(start, 0, e.By, loc)
		if d.At.Before(start) {
			d.At = deadline(start, 1, e.By, loc)
		}
		if measured {
			if next := deadline(last, int(e.Every/day), e.By, loc); next.After(d.At) {
				d.At = next
			}
		}
	}
	d.Overdue = t.After(d.At)
	return d
}

// String says how often the measurement is expected, as people read it:
// "every 4h", "every 1d by 10:00".
func (e Expectation) String() string {
	s := "every " + formatDuration(e.Every)
	if e.By != 0 {
		s += fmt.Sprintf(" by %02d:%02d", int(e.By.Hours()), int(e.By.Minutes())%60)
	}
	return s
}

// deadline is the time by on the local day days after t's.
func deadline(t time.Time, days int, by time.Duration, loc *time.Location) time.Time {
	y, m, dd := t.In(loc).Date()
	// time.Date, not midnight plus by: on a day the clocks change,
	// 10:00 is not ten hours after midnight.
	return time.Date(y, m, dd+days, int(by/time.Hour), int(by%time.Hour/time.Minute), 0, 0, loc)
}
