package simulator

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// Progress shows a fleet's progress: one refreshing line on a terminal,
// plain lines (every 5 s by default) otherwise, so that logs and CI output
// stay readable.
type Progress struct {
	W     io.Writer
	Fleet *Fleet
	// TTY forces the refreshing line; by default it is used when W is a
	// terminal.
	TTY *bool
	// Every is how often a plain line is written (default 5s); a terminal
	// line refreshes every second.
	Every time.Duration
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Run writes progress until ctx ends, then a final line.
func (p *Progress) Run(ctx context.Context) {
	tty := IsTerminal(p.W)
	if p.TTY != nil {
		tty = *p.TTY
	}
	every := p.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	if tty {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	last, lastAt := p.Fleet.Stats.Published.Load(), time.Now()
	line := func(final bool) {
		now := time.Now()
		pub := p.Fleet.Stats.Published.Load()
		rate := float64(pub-last) / now.Sub(lastAt).Seconds()
		last, lastAt = pub, now
		s := p.Fleet.Line(rate)
		switch {
		case tty && final:
			fmt.Fprintf(p.W, "\r\033[K%s\n", s)
		case tty:
			fmt.Fprintf(p.W, "\r\033[K%s", s)
		default:
			fmt.Fprintln(p.W, s)
		}
	}
	for {
		select {
		case <-ctx.Done():
			line(true)
			return
		case <-t.C:
			line(false)
		}
	}
}

// Line summarises the fleet in one line, with the given publish rate.
func (f *Fleet) Line(rate float64) string {
	s := &f.Stats
	sim := "connecting"
	if c, ok := f.Clock(); ok {
		at := min(max(0, c.ScenarioTime(time.Now())), c.Span)
		if c.Span > 0 {
			sim = fmt.Sprintf("sim %s/%s", fmtDur(at), fmtDur(c.Span))
		} else {
			sim = "sim " + fmtDur(max(0, c.ScenarioTime(time.Now())))
		}
	}
	out := fmt.Sprintf("%s | connected %s/%s | published %s (%s/s) | acked %s | in flight %s",
		sim, group(s.Connected.Load()), group(s.Devices.Load()), group(s.Published.Load()), group(int64(rate+0.5)),
		group(s.Acked.Load()), group(s.InFlight.Load()))
	if n := s.Offline.Load(); n > 0 {
		out += fmt.Sprintf(" | offline %s", group(n))
	}
	if b, d, m := s.Backfilled.Load(), s.Duplicates.Load(), s.Malformed.Load(); b+d+m > 0 {
		out += fmt.Sprintf(" | backfill %s dup %s bad %s", group(b), group(d), group(m))
	}
	out += fmt.Sprintf(" | errors %s", group(s.Errors()))
	if r := s.Refused.Load(); r > 0 {
		out += fmt.Sprintf(" (refused %s)", group(r))
	}
	if lag := time.Duration(s.LagNanos.Load()); lag > time.Second {
		out += fmt.Sprintf(" | behind %s", lag.Round(100*time.Millisecond))
	}
	return out
}

// group writes 1234567 as 1,234,567.
func group(n int64) string {
	if n < 0 {
		return "-" + group(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
