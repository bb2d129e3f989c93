package simulator

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vward/vward"
)

// Identity is how a device signs in to the broker.
type Identity struct {
	Device vward.DeviceID
	// Username defaults to the device id, as device protocol v1 requires.
	Username string
	// Password is the device's secret; empty for a broker that allows
	// anonymous devices.
	Password string
}

// FleetConfig tunes a fleet's connections and pace.
type FleetConfig struct {
	BrokerURL string
	// TLS, for a TLS BrokerURL (mqtts://, ssl://, tls://), is the CAs to
	// trust and the client certificate every device presents; nil trusts
	// the system's roots and presents none. Its ServerName defaults to the
	// URL's host; nothing older than TLS 1.2 is spoken.
	TLS *tls.Config
	// KeepAlive is the MQTT keepalive (default 60s); idle devices ping at
	// half of it.
	KeepAlive time.Duration
	// Ramp spreads the initial connections evenly over this long.
	Ramp time.Duration
	// Dialing caps connection attempts in progress at once (default 100),
	// so that a fleet does not overflow the broker's listen backlog.
	Dialing int
	// ConnectTimeout is how long Connect waits, after the ramp, for every
	// device to be connected (default 30s).
	ConnectTimeout time.Duration
	// Rate caps publishes per real second across the fleet; 0 is no cap.
	Rate float64
	// Workers generate and write messages (default 2 × GOMAXPROCS).
	Workers int
	Log     *slog.Logger
}

// FleetStats counts what a fleet did. Connected, InFlight and Offline are
// gauges; the rest only grow.
type FleetStats struct {
	Devices   atomic.Int64
	Connected atomic.Int64
	// Published counts messages handed to their connection (sent at once
	// when connected, else on connect); Acked those the broker PUBACKed.
	Published, Acked, InFlight atomic.Int64
	// Resent counts messages written again (DUP) after a reconnect.
	Resent atomic.Int64
	// Backfilled, Duplicates and Malformed count published messages of
	// those classes.
	Backfilled, Duplicates, Malformed atomic.Int64
	// Offline counts devices the scenario has taken offline.
	Offline atomic.Int64
	// Refused counts CONNACK refusals; ConnectFailures other failed
	// attempts; Lost unplanned disconnections; WriteErrors failed writes.
	Refused, ConnectFailures, Lost, WriteErrors atomic.Int64
	// LagNanos is how late the latest step was taken, versus its due time.
	LagNanos atomic.Int64
}

// Errors sums every kind of error.
func (s *FleetStats) Errors() int64 {
	return s.Refused.Load() + s.ConnectFailures.Load() + s.Lost.Load() + s.WriteErrors.Load()
}

// Fleet is a set of device connections to one broker, and the scheduler
// that plays their steps in real time.
type Fleet struct {
	cfg       FleetConfig
	broker    broker
	keepAlive time.Duration
	log       *slog.Logger
	conns     []*conn
	byID      map[vward.DeviceID]*conn
	dialSlots chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	clock     atomic.Pointer[Clock]

	Stats FleetStats
}

// NewFleet prepares a connection per identity; nothing is dialled yet.
func NewFleet(cfg FleetConfig, ids []Identity) (*Fleet, error) {
	b, err := parseBroker(cfg.BrokerURL)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		if b.tls == nil {
			return nil, fmt.Errorf("broker url %q is not TLS, but TLS settings were given: use mqtts://", cfg.BrokerURL)
		}
		t := cfg.TLS.Clone()
		t.ServerName = cmp.Or(t.ServerName, b.tls.ServerName)
		t.MinVersion = max(t.MinVersion, b.tls.MinVersion)
		b.tls = t
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 60 * time.Second
	}
	if cfg.Dialing <= 0 {
		cfg.Dialing = 100
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = max(2, 2*runtime.GOMAXPROCS(0))
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	f := &Fleet{
		cfg: cfg, broker: b, keepAlive: cfg.KeepAlive, log: cfg.Log.With("component", "simulator"),
		byID: make(map[vward.DeviceID]*conn, len(ids)), dialSlots: make(chan struct{}, cfg.Dialing), done: make(chan struct{}),
	}
	for _, id := range ids {
		if f.byID[id.Device] != nil {
			return nil, fmt.Errorf("device %s appears twice in the fleet", id.Device)
		}
		c := newConn(f, id)
		f.conns = append(f.conns, c)
		f.byID[id.Device] = c
	}
	f.Stats.Devices.Store(int64(len(ids)))
	f.wg.Add(1)
	go f.keepAlives()
	return f, nil
}

// Clock returns the clock of the run in progress, if any.
func (f *Fleet) Clock() (Clock, bool) {
	c := f.clock.Load()
	if c == nil {
		return Clock{}, false
	}
	return *c, true
}

// keepAlives pings idle connections so that the broker keeps them.
func (f *Fleet) keepAlives() {
	defer f.wg.Done()
	t := time.NewTicker(f.keepAlive / 4)
	defer t.Stop()
	for {
		select {
		case <-f.done:
			return
		case <-t.C:
			for _, c := range f.conns {
				c.ping(f.keepAlive / 2)
			}
		}
	}
}

// Connect brings every device online, spread over the ramp, and waits until
// all are connected. Devices that cannot connect keep trying in the
// background; the error says which and why.
func (f *Fleet) Connect(ctx context.Context) error {
	start := time.Now()
	n := len(f.conns)
	for i, c := range f.conns {
		if f.cfg.Ramp > 0 {
			at := start.Add(time.Duration(int64(f.cfg.Ramp) * int64(i) / int64(n)))
			if d := time.Until(at); d > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		}
		c.online()
	}
	deadline := time.Now().Add(f.cfg.ConnectTimeout)
	for f.Stats.Connected.Load() < int64(n) {
		if time.Now().After(deadline) {
			return f.connectError()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func (f *Fleet) connectError() error {
	var refused, other []string
	for _, c := range f.conns {
		c.mu.Lock()
		up, ref := c.nc != nil, c.refusal
		c.mu.Unlock()
		switch {
		case up:
		case ref != nil:
			refused = append(refused, fmt.Sprintf("%s (%v)", c.device, ref))
		default:
			other = append(other, string(c.device))
		}
	}
	var parts []string
	if len(refused) > 0 {
		parts = append(parts, fmt.Sprintf("%d refused by the broker: %s", len(refused), firstFew(refused)))
	}
	if len(other) > 0 {
		parts = append(parts, fmt.Sprintf("%d could not connect within %s: %s", len(other), f.cfg.ConnectTimeout, firstFew(other)))
	}
	return fmt.Errorf("%d of %d devices are not connected: %s", len(refused)+len(other), len(f.conns), strings.Join(parts, "; "))
}

func firstFew(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], ", ") + fmt.Sprintf(", and %d more", len(s)-5)
	}
	return strings.Join(s, ", ")
}

// DeviceSteps pairs a device with its steps.
type DeviceSteps struct {
	Device vward.DeviceID
	Steps  Steps
}

type playDev struct {
	c    *conn
	s    Steps
	next Step
	due  time.Time
	i    int // insertion order, for ties
}

// inLine is a device's place in the scheduler's line: its due time and
// insertion order are copied next to the pointer, so that ordering the line
// reads only the heap's own array. With thousands of devices each *playDev
// a comparison touched was likely a cache miss, and comparing time.Times
// through container/heap's interface was 5% of the bench's CPU.
type inLine struct {
	at int64 // d.due as nanoseconds since the clock's origin
	i  int   // d.i
	d  *playDev
}

// before orders the line by due time, then insertion order.
func (a inLine) before(b inLine) bool {
	return a.at < b.at || a.at == b.at && a.i < b.i
}

// devHeap is a min-heap of devices in line, first due first: container/heap's
// algorithm, typed.
type devHeap []inLine

func (h devHeap) init() {
	for j := len(h)/2 - 1; j >= 0; j-- {
		h.down(j)
	}
}

func (h *devHeap) push(e inLine) {
	*h = append(*h, e)
	s := *h
	for j := len(s) - 1; j > 0; {
		p := (j - 1) / 2
		if !s[j].before(s[p]) {
			break
		}
		s[j], s[p] = s[p], s[j]
		j = p
	}
}

// pop removes and returns the first device in line.
func (h *devHeap) pop() *playDev {
	s := *h
	d := s[0].d
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	s.down(0)
	*h = s
	return d
}

func (h devHeap) down(j int) {
	for {
		c := 2*j + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && h[r].before(h[c]) {
			c = r
		}
		if !h[c].before(h[j]) {
			return
		}
		h[j], h[c] = h[c], h[j]
		j = c
	}
}

// Play takes every device's steps at their due times on clock until all
// streams are done or ctx ends. Each device is with at most one worker at a
// time, so its steps run in order; what a step contains was fixed by its
// stream, whatever the scheduling.
func (f *Fleet) Play(ctx context.Context, clock Clock, streams []DeviceSteps) error {
	if err := clock.Check(); err != nil {
		return err
	}
	f.clock.Store(&clock)
	var (
		mu     sync.Mutex
		h      devHeap
		active int
		wake   = make(chan struct{}, 1)
	)
	// A due time's place in line. Every due time is clock.Origin plus a
	// Duration, which Sub gives back exactly (on the monotonic clock when
	// Origin has a reading, as Before compares): the keys order as the due
	// times do.
	key := func(due time.Time) int64 { return int64(due.Sub(clock.Origin)) }
	signal := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	for i, ds := range streams {
		c := f.byID[ds.Device]
		if c == nil {
			return fmt.Errorf("device %s has steps but no connection in the fleet", ds.Device)
		}
		if st, ok := ds.Steps.Next(); ok {
			d := &playDev{c: c, s: ds.Steps, next: st, due: clock.Due(st.At), i: i}
			h = append(h, inLine{at: key(d.due), i: i, d: d})
		}
	}
	h.init()
	// advance takes d's step and puts the device back in line for its next.
	advance := func(d *playDev) {
		f.take(d.c, d.next)
		st, ok := d.s.Next()
		mu.Lock()
		active--
		// Wake the scheduler only if this device is now first in line, or
		// all is done: a wake per step, and the timer Reset it led to,
		// were much of the fleet's CPU with thousands of devices.
		wakeUp := active == 0 && len(h) == 0
		if ok {
			d.next, d.due = st, clock.Due(st.At)
			h.push(inLine{at: key(d.due), i: d.i, d: d})
			wakeUp = h[0].d == d
		}
		mu.Unlock()
		if wakeUp {
			signal()
		}
	}
	// The scheduler hands workers batches: every step due when it wakes.
	work := make(chan []*playDev)
	var workers sync.WaitGroup
	for range f.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for batch := range work {
				for _, d := range batch {
					advance(d)
				}
			}
		}()
	}
	defer func() {
		close(work)
		workers.Wait()
	}()
	lim := limiter{rate: f.cfg.Rate}
	// The timer is re-armed only for an earlier due time than it holds:
	// resetting a pending timer earlier makes the runtime walk every timer
	// in the process (each connection's deadlines among them).
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	armed := time.Now().Add(time.Hour)
	// The scheduler wakes at most every minWake and takes every step due by
	// then: at thousands of steps a second a wake per step cost more than
	// the steps. A step may so be taken up to minWake late, never early, and
	// the lag is reported (Stats.LagNanos).
	const minWake = time.Millisecond
	var lastWake time.Time
	for {
		mu.Lock()
		if len(h) == 0 {
			idle := active == 0
			mu.Unlock()
			if idle {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
			}
			continue
		}
		next := h[0].d.due
		if gap := lastWake.Add(minWake); next.Before(gap) {
			next = gap
		}
		if wait := time.Until(next); wait > 0 {
			mu.Unlock()
			if next.Before(armed) {
				timer.Reset(wait)
				armed = next
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wake:
			case <-timer.C:
				armed = time.Now().Add(time.Hour)
			}
			continue
		}
		lastWake = time.Now()
		var batch []*playDev
		for len(h) > 0 && !h[0].d.due.After(lastWake) {
			batch = append(batch, h.pop())
		}
		active += len(batch)
		mu.Unlock()
		f.Stats.LagNanos.Store(int64(time.Since(batch[0].due)))
		for _, d := range batch {
			if d.next.Op == Publish {
				if err := lim.wait(ctx); err != nil {
					return err
				}
			}
		}
		// In parts, so that a crowd of steps due at once (a scenario's
		// start) is spread over the workers.
		for len(batch) > 0 {
			n := min(len(batch), maxBatch)
			select {
			case work <- batch[:n:n]:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = batch[n:]
		}
	}
}

// maxBatch bounds the steps one worker is handed at once.
const maxBatch = 64

// take performs one step on the device's connection.
func (f *Fleet) take(c *conn, st Step) {
	switch st.Op {
	case Publish:
		c.publish(st.Topic, st.Payload)
		f.Stats.Published.Add(1)
		if st.Class&Backfill != 0 {
			f.Stats.Backfilled.Add(1)
		}
		if st.Class&Duplicate != 0 {
			f.Stats.Duplicates.Add(1)
		}
		if st.Class&Malformed != 0 {
			f.Stats.Malformed.Add(1)
		}
	case GoOffline:
		c.offline()
		f.Stats.Offline.Add(1)
	case GoOnline:
		c.online()
		f.Stats.Offline.Add(-1)
	}
}

// Drain waits, up to timeout, until every message of a connected device is
// acknowledged. It returns how many are still unacknowledged on devices
// that should be online, and how many sit with devices left offline.
func (f *Fleet) Drain(ctx context.Context, timeout time.Duration) (unacked, offline int) {
	deadline := time.Now().Add(timeout)
	for {
		unacked, offline = 0, 0
		for _, c := range f.conns {
			n, off := c.pending()
			if off {
				offline += n
			} else {
				unacked += n
			}
		}
		if unacked == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return unacked, offline
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Refusals lists devices the broker refused, with the reason.
func (f *Fleet) Refusals() []string {
	var out []string
	for _, c := range f.conns {
		c.mu.Lock()
		if c.refusal != nil && c.nc == nil {
			out = append(out, fmt.Sprintf("%s: %v", c.device, c.refusal))
		}
		c.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

// Close disconnects every device cleanly and waits for their goroutines.
func (f *Fleet) Close() {
	f.closeOnce.Do(func() {
		close(f.done)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		for _, c := range f.conns {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				c.shutdown()
			}()
		}
		wg.Wait()
		f.wg.Wait()
	})
}

// limiter paces publishes to rate per second, allowing a burst of a
// hundredth of a second's worth so that timer granularity does not cut the
// rate.
type limiter struct {
	rate float64
	next time.Time
}

func (l *limiter) wait(ctx context.Context) error {
	if l.rate <= 0 {
		return nil
	}
	now := time.Now()
	burst := time.Duration(float64(time.Second) / 100)
	if l.next.Before(now.Add(-burst)) {
		l.next = now.Add(-burst)
	}
	l.next = l.next.Add(time.Duration(float64(time.Second) / l.rate))
	if d := l.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
