package simulator

import (
	"container/heap"
	"context"
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

type devHeap []*playDev

func (h devHeap) Len() int { return len(h) }
func (h devHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].i < h[j].i
}
func (h devHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *devHeap) Push(x any)   { *h = append(*h, x.(*playDev)) }
func (h *devHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
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
			h = append(h, &playDev{c: c, s: ds.Steps, next: st, due: clock.Due(st.At), i: i})
		}
	}
	heap.Init(&h)
	// advance takes d's step and puts the device back in line for its next.
	advance := func(d *playDev) {
		f.take(d.c, d.next)
		st, ok := d.s.Next()
		mu.Lock()
		active--
		// Wake the scheduler only if this device is now first in line, or
		// all is done: a wake per step, and the timer Reset it led to,
		// were much of the fleet's CPU with thousands of devices.
		wakeUp := active == 0 && h.Len() == 0
		if ok {
			d.next, d.due = st, clock.Due(st.At)
			heap.Push(&h, d)
			wakeUp = h[0] == d
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
		if h.Len() == 0 {
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
		d := h[0]
		next := d.due
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
		for h.Len() > 0 && !h[0].due.After(lastWake) {
			batch = append(batch, heap.Pop(&h).(*playDev))
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
