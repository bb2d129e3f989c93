// Package journal keeps readings on vward's local disk between ingest and
// the history, so that an InfluxDB outage never stops scoring and alerts.
// The pipeline writes each batch to the journal, which returns once the
// batch is fsync'd, and only then acknowledges the messages to the broker;
// the journal forwards its entries to InfluxDB at InfluxDB's pace, in
// order, with retries, and forgets an entry only once InfluxDB has
// confirmed it. After a crash or restart, what InfluxDB had not confirmed
// is forwarded again; a reading written twice overwrites itself.
//
// The engine is an embedded NATS JetStream file store: one stream,
// fsync'd on every write, bounded in bytes. When it is full the journal
// refuses writes (ErrFull) and the pipeline falls back to holding the
// broker's acknowledgements until there is room (docs/design/journal.md).
package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vward/vward"
	"github.com/vward/vward/history"
)

// DefaultMaxBytes bounds the journal when Config.MaxBytes is 0: 2 GiB,
// about 20 minutes of a node taking 12,700 messages a second (140 bytes a
// message of four readings).
const DefaultMaxBytes = 2 << 30

// MinMaxBytes is the smallest bound the journal takes: room for a few
// batches, each written in entries of at most an eighth of the bound.
const MinMaxBytes = 64 << 10

// stream and subject of the journal in its embedded server.
const (
	streamName = "readings"
	subject    = "vward.readings"
)

// ErrFull is why the journal refuses a write: it holds MaxBytes already.
var ErrFull = errors.New("journal full")

// Config says where the journal lives and how much it may hold.
type Config struct {
	Dir      string
	MaxBytes int64 // DefaultMaxBytes when 0
	// ForwardReadings caps readings per write to the history: large
	// writes drain a backlog fast.
	ForwardReadings int
	// RetryMin and RetryMax bound the backoff between failed forwards.
	RetryMin, RetryMax time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.ForwardReadings <= 0 {
		c.ForwardReadings = 50000
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	return c
}

// Journal is a history.Store in front of another: writes go to the
// journal, queries to the history behind it. Build it with Open, run its
// forwarder with Run, and Close it after Run returns.
type Journal struct {
	cfg     Config
	next    history.Store
	metrics *Metrics
	log     *slog.Logger

	srv    *server.Server
	conn   *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream

	// maxEntry bounds one entry's bytes: an eighth of the journal, and
	// within the engine's largest message.
	maxEntry int
	handoff  handoff       // what was just written, for the forwarder
	first    uint64        // the first sequence not yet forwarded, at Open
	last     atomic.Uint64 // the highest sequence written
	appended chan struct{} // wakes the forwarder

	messages   atomic.Int64 // device messages not yet forwarded
	bytes      atomic.Int64 // their entries' bytes
	oldest     atomic.Int64 // unix nanos of the oldest entry not forwarded; 0 when none
	full       atomic.Bool
	forwardErr atomic.Pointer[string]

	// recovered is each patient's newest reading of each kind in what
	// Open found not yet forwarded, for the first Latest (the board's
	// restore): InfluxDB does not have them yet.
	recoveredMu sync.Mutex
	recovered   []vward.Reading
}

// Open starts the journal's engine in dir, creating it if need be, and
// reads what it holds that the history has not confirmed.
func Open(ctx context.Context, cfg Config, next history.Store, metrics *Metrics, log *slog.Logger) (*Journal, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, vward.Errorf(vward.ErrInvalid, "journal: no directory given")
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	j := &Journal{cfg: cfg, next: next, metrics: metrics, log: log.With("component", "journal"), appended: make(chan struct{}, 1)}
	srv, err := server.NewServer(&server.Options{
		ServerName: "vward-journal",
		DontListen: true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   cfg.Dir,
		// Room for the stream's own bound and the engine's bookkeeping.
		JetStreamMaxStore:  cfg.MaxBytes + cfg.MaxBytes/8 + 64<<20,
		JetStreamMaxMemory: 64 << 20,
		SyncAlways:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("journal in %s: %w", cfg.Dir, err)
	}
	srv.SetLoggerV2(engineLog{j.log}, false, false, false)
	srv.Start()
	j.srv = srv
	fail := func(err error) (*Journal, error) {
		j.Close()
		return nil, err
	}
	if !srv.ReadyForConnections(30 * time.Second) {
		return fail(fmt.Errorf("journal in %s: the engine did not start within 30s", cfg.Dir))
	}
	if j.conn, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("vward"), nats.MaxReconnects(-1)); err != nil {
		return fail(fmt.Errorf("journal: connect to the engine: %w", err))
	}
	j.maxEntry = int(min(cfg.MaxBytes/8, j.conn.MaxPayload()/2))
	if j.js, err = jetstream.New(j.conn); err != nil {
		return fail(fmt.Errorf("journal: %w", err))
	}
	j.stream, err = j.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName,
		Subjects:    []string{subject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgSize:  -1,
		Replicas:    1,
		AllowDirect: true,
	})
	if err != nil {
		return fail(fmt.Errorf("journal in %s: open its stream: %w", cfg.Dir, err))
	}
	if err := j.recover(ctx); err != nil {
		return fail(err)
	}
	j.metrics.MaxBytes.Set(float64(cfg.MaxBytes))
	return j, nil
}

// recover counts what the journal holds and keeps its newest readings for
// the board's restore.
func (j *Journal) recover(ctx context.Context) error {
	info, err := j.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("journal in %s: read its state: %w", j.cfg.Dir, err)
	}
	st := info.State
	j.first = st.FirstSeq
	j.last.Store(st.LastSeq)
	if st.Msgs == 0 {
		j.first = st.LastSeq + 1
		j.updateGauges()
		return nil
	}
	began := time.Now()
	newest := map[latestKey]vward.Reading{}
	var rs []vward.Reading
	for seq := st.FirstSeq; seq <= st.LastSeq; seq++ {
		m, err := j.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("journal in %s: read entry %d: %w", j.cfg.Dir, seq, err)
		}
		if j.oldest.Load() == 0 {
			j.oldest.Store(m.Time.UnixNano())
		}
		// Its bytes count even if it is unreadable: Run drops it with the rest.
		j.bytes.Add(int64(len(m.Data)))
		var n int
		if rs, n, err = decodeEntry(rs[:0], m.Data); err != nil {
			j.log.Error("journal entry unreadable; it cannot be forwarded", "seq", seq, "err", err)
			continue
		}
		j.messages.Add(int64(n))
		for _, r := range rs {
			k := latestKey{r.Patient, r.Device, r.Kind}
			if old, ok := newest[k]; !ok || r.At.After(old.At) {
				newest[k] = r
			}
		}
	}
	for _, r := range newest {
		j.recovered = append(j.recovered, r)
	}
	j.updateGauges()
	j.log.Warn("journal holds readings the history has not confirmed; forwarding them",
		"messages", j.messages.Load(), "bytes", j.bytes.Load(), "oldest", time.Unix(0, j.oldest.Load()).UTC(), "took", time.Since(began).Round(time.Millisecond))
	return nil
}

type latestKey struct {
	patient vward.PatientID
	device  vward.DeviceID
	kind    vward.ReadingKind
}

var entryBuffers = sync.Pool{New: func() any { return new([]byte) }}

// WriteReadings implements history.Store: it returns once rs is fsync'd in
// the journal, or ErrFull (wrapped) when the journal has no room.
func (j *Journal) WriteReadings(ctx context.Context, rs []vward.Reading) error {
	if len(rs) == 0 {
		return nil
	}
	buf := entryBuffers.Get().(*[]byte)
	defer entryBuffers.Put(buf)
	data, messages := appendEntry((*buf)[:0], rs)
	*buf = data
	if len(data) > j.maxEntry && len(rs) > 1 {
		// An entry larger than the journal could hold would be
		// refused for ever.
		return j.writeParts(ctx, j.split(nil, rs, buf))
	}
	return j.append(ctx, data, rs, messages)
}

// writeParts writes a batch in parts, in order. The batch is refused
// whole (ErrFull) only while none of it is written; after its first part,
// each waits for the forwarder to make room, so that a retry does not
// write the first parts again and crowd out the rest.
func (j *Journal) writeParts(ctx context.Context, parts [][]vward.Reading) error {
	buf := entryBuffers.Get().(*[]byte)
	defer entryBuffers.Put(buf)
	written, total := 0, 0
	for _, part := range parts {
		total += len(part)
	}
	for i, part := range parts {
		data, messages := appendEntry((*buf)[:0], part)
		*buf = data
		for wait := j.cfg.RetryMin; ; wait = min(2*wait, j.cfg.RetryMax) {
			err := j.append(ctx, data, part, messages)
			if err == nil {
				break
			}
			// What is written is forwarded again after a retry of the
			// whole batch, and overwrites its own points.
			if i == 0 || !errors.Is(err, ErrFull) {
				return err
			}
			if !sleep(ctx, wait) {
				return fmt.Errorf("journal: %d readings of a batch written, %d waiting for room: %w", written, total-written, ctx.Err())
			}
		}
		written += len(part)
	}
	return nil
}

// split cuts rs into parts whose entries are at most maxEntry bytes,
// at message boundaries where it can; buf is scratch.
func (j *Journal) split(parts [][]vward.Reading, rs []vward.Reading, buf *[]byte) [][]vward.Reading {
	data, _ := appendEntry((*buf)[:0], rs)
	*buf = data
	if len(data) <= j.maxEntry || len(rs) == 1 {
		return append(parts, rs)
	}
	half := splitAt(rs)
	return j.split(j.split(parts, rs[:half], buf), rs[half:], buf)
}

// splitAt is where to cut rs in two: the message boundary nearest below
// its middle, or above it, or the middle itself when rs is one message.
func splitAt(rs []vward.Reading) int {
	half := len(rs) / 2
	for i := half; i > 0; i-- {
		if !samePoint(rs[i-1], rs[i]) {
			return i
		}
	}
	for i := half + 1; i < len(rs); i++ {
		if !samePoint(rs[i-1], rs[i]) {
			return i
		}
	}
	return half
}

// append writes one entry, data, of rs (messages device messages), and
// waits for its fsync.
func (j *Journal) append(ctx context.Context, data []byte, rs []vward.Reading, messages int) error {
	readings := len(rs)
	began := time.Now()
	ack, err := j.js.Publish(ctx, subject, data)
	if err != nil {
		if isFull(err) {
			if !j.full.Swap(true) {
				j.log.Error("journal full: holding the broker's acknowledgements until the history catches up; new readings wait at the broker and alerting can stall",
					"max_bytes", j.cfg.MaxBytes, "messages", j.messages.Load())
			}
			j.metrics.Full.Set(1)
			j.metrics.Refused.Inc()
			return fmt.Errorf("%w (%d bytes, --journal-max-bytes): %d readings wait at the broker until the history catches up", ErrFull, j.cfg.MaxBytes, readings)
		}
		return fmt.Errorf("append %d readings to the journal: %w", readings, err)
	}
	j.metrics.AppendDuration.Observe(time.Since(began).Seconds())
	// Handed over before the forwarder can see the sequence (j.last).
	j.handoff.put(ack.Sequence, handed{readings: rs, messages: messages, bytes: len(data), at: began})
	if j.full.Swap(false) {
		j.log.Info("journal has room again; acknowledging on receipt")
		j.metrics.Full.Set(0)
	}
	for {
		last := j.last.Load()
		if ack.Sequence <= last || j.last.CompareAndSwap(last, ack.Sequence) {
			break
		}
	}
	j.messages.Add(int64(messages))
	j.bytes.Add(int64(len(data)))
	j.oldest.CompareAndSwap(0, began.UnixNano())
	j.metrics.Appended.Add(float64(messages))
	j.updateGauges()
	select {
	case j.appended <- struct{}{}:
	default:
	}
	return nil
}

// handoff keeps copies of the readings of entries just written, by
// sequence, so that the forwarder need not read back and decode what it
// was handed a moment before: reading an entry back from the engine cost
// as much CPU as writing it. It is bounded; beyond the bound (a long
// outage) the forwarder reads from the engine.
type handoff struct {
	mu       sync.Mutex
	entries  map[uint64]handed
	readings int
}

// handed is one entry's readings, as written.
type handed struct {
	readings        []vward.Reading
	messages, bytes int
	at              time.Time // when it was written
}

// maxHandoffReadings bounds the handoff: about 30 MB of readings, some
// seconds at full rate.
const maxHandoffReadings = 1 << 18

// put keeps a copy of h's readings (the caller reuses its slice), if
// there is room.
func (h *handoff) put(seq uint64, e handed) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.readings+len(e.readings) > maxHandoffReadings {
		return
	}
	if h.entries == nil {
		h.entries = map[uint64]handed{}
	}
	e.readings = slices.Clone(e.readings)
	h.entries[seq] = e
	h.readings += len(e.readings)
}

// take removes and returns the entry of seq, if it is held.
func (h *handoff) take(seq uint64) (handed, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.entries[seq]
	if ok {
		delete(h.entries, seq)
		h.readings -= len(e.readings)
	}
	return e, ok
}

// dropBelow forgets entries the forwarder has passed: one written while
// the forwarder read it from the engine.
func (h *handoff) dropBelow(seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s, e := range h.entries {
		if s < seq {
			delete(h.entries, s)
			h.readings -= len(e.readings)
		}
	}
}

// isFull says whether the engine refused a write for want of room.
func isFull(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && api.Description == server.ErrMaxBytes.Error()
}

// forgetEvery is how often forwarded entries are dropped from the
// engine: each drop rewrites part of a block, and dropping after every
// forward cost more CPU than the forward. What a crash leaves forwarded but
// not yet dropped is forwarded again, and overwrites itself.
const forgetEvery = time.Second

// Run forwards the journal to the history until ctx ends: in order, in
// writes of up to ForwardReadings readings, each retried until the
// history confirms it; only then are its entries forgotten.
func (j *Journal) Run(ctx context.Context) error {
	next := j.first
	var readings []vward.Reading
	tick := time.NewTicker(forgetEvery)
	defer tick.Stop()
	forgotten := next - 1 // entries up to here are dropped
	lastForget := time.Now()
	forgetDue := func() bool {
		return next-1 > forgotten && (j.full.Load() || time.Since(lastForget) >= forgetEvery)
	}
	defer func() {
		// What was forwarded need not be forwarded again after a restart.
		if next-1 > forgotten {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = j.forget(ctx, next-1)
		}
	}()
	for {
		if forgetDue() {
			if err := j.forget(ctx, next-1); err != nil {
				return nil
			}
			forgotten, lastForget = next-1, time.Now()
		}
		if next > j.last.Load() {
			j.oldest.Store(0)
			j.updateGauges()
			select {
			case <-ctx.Done():
				return nil
			case <-j.appended:
			case <-tick.C:
			}
			continue
		}
		readings = readings[:0]
		end, messages, bytes := next-1, 0, 0
		for seq := next; seq <= j.last.Load() && len(readings) < j.cfg.ForwardReadings; seq++ {
			if h, ok := j.handoff.take(seq); ok {
				if seq == next {
					j.oldest.Store(h.at.UnixNano())
				}
				readings = append(readings, h.readings...)
				end, messages, bytes = seq, messages+h.messages, bytes+h.bytes
				continue
			}
			m, err := j.stream.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				end = seq
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				j.log.Warn("journal: read entry failed; retrying", "seq", seq, "err", err)
				break
			}
			if seq == next {
				j.oldest.Store(m.Time.UnixNano())
			}
			var n int
			before := len(readings)
			if readings, n, err = decodeEntry(readings, m.Data); err != nil {
				readings = readings[:before]
				j.metrics.Unreadable.Inc()
				j.log.Error("journal entry unreadable; it cannot be forwarded", "seq", seq, "err", err)
			}
			end, messages, bytes = seq, messages+n, bytes+len(m.Data)
		}
		if end < next {
			if !sleep(ctx, j.cfg.RetryMin) {
				return nil
			}
			continue
		}
		j.updateGauges()
		if err := j.forward(ctx, readings); err != nil {
			return nil // only cancellation stops a forward
		}
		next = end + 1
		j.handoff.dropBelow(next)
		j.messages.Add(-int64(messages))
		j.bytes.Add(-int64(bytes))
		j.metrics.Forwarded.Add(float64(messages))
		j.updateGauges()
	}
}

// forward writes readings to the history, retrying with backoff until it
// confirms them or ctx ends.
func (j *Journal) forward(ctx context.Context, readings []vward.Reading) error {
	if len(readings) == 0 {
		return nil
	}
	wait := j.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := j.next.WriteReadings(ctx, readings)
		if err == nil {
			j.metrics.ForwardDuration.Observe(time.Since(began).Seconds())
			if j.forwardErr.Swap(nil) != nil {
				j.log.Info("history writes recovered; forwarding the journal", "attempts", attempt, "messages_waiting", j.messages.Load())
			}
			j.metrics.HistoryUp.Set(1)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := err.Error()
		if j.forwardErr.Swap(&msg) == nil || attempt%20 == 0 {
			j.log.Warn("history write failed; the journal keeps the readings and alerts stay live", "attempt", attempt, "retry_in", wait, "messages_waiting", j.messages.Load(), "err", err)
		}
		j.metrics.HistoryUp.Set(0)
		j.metrics.ForwardFailures.Inc()
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(wait*2, j.cfg.RetryMax)
	}
}

// forget drops every entry up to and including seq, once forwarded.
func (j *Journal) forget(ctx context.Context, seq uint64) error {
	for {
		err := j.stream.Purge(ctx, jetstream.WithPurgeSequence(seq+1))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Not forgetting only means forwarding again after a restart.
		j.log.Warn("journal: drop forwarded entries failed; retrying", "through_seq", seq, "err", err)
		if !sleep(ctx, j.cfg.RetryMax) {
			return ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// State is what the journal holds and whether it keeps up.
type State struct {
	Messages int64 // device messages not yet forwarded to the history
	Bytes    int64 // their entries' bytes
	MaxBytes int64
	// Oldest is when the oldest of them was written; zero when none.
	Oldest time.Time
	// Full says the journal refused its last write for want of room.
	Full bool
	// HistoryErr is why the last forward failed, while forwards fail.
	HistoryErr error
}

// Behind is how long the oldest message not yet in the history has waited.
func (s State) Behind(now time.Time) time.Duration {
	if s.Oldest.IsZero() {
		return 0
	}
	return max(0, now.Sub(s.Oldest))
}

// State reports the journal's state now.
func (j *Journal) State() State {
	s := State{Messages: j.messages.Load(), Bytes: j.bytes.Load(), MaxBytes: j.cfg.MaxBytes, Full: j.full.Load()}
	if o := j.oldest.Load(); o != 0 {
		s.Oldest = time.Unix(0, o)
	}
	if e := j.forwardErr.Load(); e != nil {
		s.HistoryErr = errors.New(*e)
	}
	return s
}

func (j *Journal) updateGauges() {
	j.metrics.Messages.Set(float64(j.messages.Load()))
	j.metrics.Bytes.Set(float64(j.bytes.Load()))
	j.metrics.oldest.Store(j.oldest.Load())
}

// Readings implements history.Store from the history behind the journal.
func (j *Journal) Readings(ctx context.Context, p vward.PatientID, from, to time.Time) ([]vward.Reading, error) {
	return j.next.Readings(ctx, p, from, to)
}

// ReadingsOf implements history.Store from the history behind the journal.
func (j *Journal) ReadingsOf(ctx context.Context, p vward.PatientID, kinds []vward.ReadingKind, from, to time.Time, limit int) ([]vward.Reading, error) {
	return j.next.ReadingsOf(ctx, p, kinds, from, to, limit)
}

// Thinned implements history.Store from the history behind the journal.
func (j *Journal) Thinned(ctx context.Context, p vward.PatientID, from, to time.Time, every time.Duration) ([]vward.Reading, error) {
	return j.next.Thinned(ctx, p, from, to, every)
}

// Earliest implements history.Store from the history behind the journal.
func (j *Journal) Earliest(ctx context.Context, p vward.PatientID) (time.Time, bool, error) {
	return j.next.Earliest(ctx, p)
}

// Latest implements history.Store: the history's answer, with the first
// call adding the newest readings the journal held at Open and had not yet
// forwarded, so that a restart after an outage restores the board whole.
// While the history fails, it returns those readings with the error: the
// newest are better than an empty board.
func (j *Journal) Latest(ctx context.Context, from, to time.Time) ([]vward.Reading, error) {
	rs, err := j.next.Latest(ctx, from, to)
	j.recoveredMu.Lock()
	recovered := j.recovered
	j.recovered = nil
	j.recoveredMu.Unlock()
	for _, r := range recovered {
		if !r.At.Before(from) && r.At.Before(to) {
			rs = append(rs, r)
		}
	}
	return rs, err
}

// Ping implements history.Store: the journal takes writes unless it is full.
func (j *Journal) Ping(ctx context.Context) error {
	if j.full.Load() {
		return fmt.Errorf("%w (%d bytes)", ErrFull, j.cfg.MaxBytes)
	}
	return nil
}

// Describe implements history.Store.
func (j *Journal) Describe() string {
	return j.next.Describe() + " through the journal in " + j.cfg.Dir
}

// History is the store the journal forwards to.
func (j *Journal) History() history.Store { return j.next }

// Close stops the engine; what it holds stays on disk for the next Open.
func (j *Journal) Close() {
	if j.conn != nil {
		j.conn.Close()
	}
	if j.srv != nil {
		j.srv.Shutdown()
		j.srv.WaitForShutdown()
	}
}

// engineLog passes the engine's warnings and errors to vward's log, and
// its notices at debug level (what it restored from disk at start).
type engineLog struct{ log *slog.Logger }

func (l engineLog) Noticef(format string, v ...any) {
	l.log.Debug("journal engine: " + fmt.Sprintf(format, v...))
}
func (l engineLog) Debugf(string, ...any) {}
func (l engineLog) Tracef(string, ...any) {}
func (l engineLog) Warnf(format string, v ...any) {
	l.log.Warn("journal engine: " + fmt.Sprintf(format, v...))
}
func (l engineLog) Errorf(format string, v ...any) {
	l.log.Error("journal engine: " + fmt.Sprintf(format, v...))
}
func (l engineLog) Fatalf(format string, v ...any) {
	l.log.Error("journal engine (fatal): " + fmt.Sprintf(format, v...))
}
