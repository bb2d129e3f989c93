// Package ingest takes device messages from the broker to durable storage.
// A message is decoded, validated and attributed to its patient as it
// arrives, handed to alerting at once (scoring never waits for storage), and
// acknowledged to the broker only after its readings — or, for a refused
// message, its dead letter — are durably stored. Until then the broker keeps
// it, so a crash or an InfluxDB outage loses nothing: the unacknowledged is
// redelivered.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

// Store keeps readings durably; WriteReadings returns nil only when they are.
type Store interface {
	WriteReadings(ctx context.Context, rs []vward.Reading) error
}

// Registry attributes a device's reading to the patient it was bound to at
// the measurement time.
type Registry interface {
	PatientAt(device vward.DeviceID, at time.Time) (vward.PatientID, vward.WardID, error)
}

// Observer receives valid readings as soon as they are decoded. It is called
// from the broker's delivery goroutines, so it must be quick and safe for
// concurrent use; a redelivered reading may arrive more than once.
type Observer interface {
	Observe(rs []vward.Reading)
}

// DeadLetters keeps refused messages for inspection.
type DeadLetters interface {
	Keep(ctx context.Context, rs []Rejection) error
}

// RejectionNotifier tells a device why its message was refused. Delivery of
// the notice is best effort; the dead letter is the record.
type RejectionNotifier interface {
	NotifyRejected(r Rejection)
}

// Rejection is a refused message, or the refused part of a message.
type Rejection struct {
	ID       int64          `json:"id,omitempty"`
	Device   vward.DeviceID `json:"device"`
	Topic    string         `json:"topic"`
	MsgID    string         `json:"msg_id,omitempty"`
	Code     string         `json:"code"`
	Reason   string         `json:"reason"`
	Payload  []byte         `json:"payload"`
	Received time.Time      `json:"received_at"`
}

// Delivery is one message from the broker. Ack tells the broker it may
// forget the message; it is called once, only after the message is stored.
type Delivery struct {
	Topic   string
	Payload []byte
	Ack     func()
}

// Config tunes the pipeline. Zero fields take the defaults.
type Config struct {
	Limits Limits
	// BatchSize caps readings per InfluxDB write.
	BatchSize int
	// BatchWait is how long a partial batch waits for more: it bounds the
	// publish-to-acknowledge latency, not what the board sees.
	BatchWait time.Duration
	// MaxInFlight caps messages received but not yet acknowledged. When it
	// is reached, delivery blocks and the broker holds the rest.
	MaxInFlight int
	// RetryMin and RetryMax bound the backoff between failed writes.
	RetryMin, RetryMax time.Duration
	// FlushTimeout bounds the final write at shutdown; what it cannot
	// store stays unacknowledged and is redelivered after a restart.
	FlushTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Limits == (Limits{}) {
		c.Limits = DefaultLimits()
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 5000
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 20 * time.Millisecond
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 20000
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 100 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Second
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = 10 * time.Second
	}
	return c
}

// Stats counts what the pipeline did, for /metrics and tests.
type Stats struct {
	Received, Stored, Rejected, Acked, WriteFailures atomic.Int64
	InFlight                                         atomic.Int64
}

// pending is a message decoded and waiting for storage.
type pending struct {
	readings  []vward.Reading
	rejection *Rejection
	ack       func()
}

// Pipeline is the ingest pipeline. Build it with NewPipeline, start Run, and
// feed it with Submit (the MQTT source does).
type Pipeline struct {
	cfg      Config
	store    Store
	registry Registry
	observer Observer
	dead     DeadLetters
	notifier RejectionNotifier
	log      *slog.Logger
	now      func() time.Time

	in      chan pending
	closing chan struct{}
	closeMu sync.Once
	drained chan struct{}
	storeOK atomic.Bool

	Stats Stats
}

// NewPipeline wires a pipeline. observer and notifier may be nil.
func NewPipeline(cfg Config, store Store, reg Registry, observer Observer, dead DeadLetters, notifier RejectionNotifier, log *slog.Logger) *Pipeline {
	cfg = cfg.withDefaults()
	p := &Pipeline{
		cfg: cfg, store: store, registry: reg, observer: observer, dead: dead, notifier: notifier,
		log:     log.With("component", "ingest"),
		now:     time.Now,
		in:      make(chan pending, cfg.MaxInFlight),
		closing: make(chan struct{}),
		drained: make(chan struct{}),
	}
	p.storeOK.Store(true)
	return p
}

// SetNotifier sets who tells devices of rejections; the MQTT source is built
// after the pipeline, so it plugs itself in here before Run.
func (p *Pipeline) SetNotifier(n RejectionNotifier) { p.notifier = n }

// StoreHealthy reports whether the last write to the store succeeded.
func (p *Pipeline) StoreHealthy() bool { return p.storeOK.Load() }

// Drained is closed when Run has returned and nothing more will be acknowledged.
func (p *Pipeline) Drained() <-chan struct{} { return p.drained }

// ErrClosed is returned by Submit once the pipeline is shutting down; the
// message stays unacknowledged and the broker redelivers it later.
var ErrClosed = errors.New("ingest pipeline is shutting down")

// Submit decodes one delivery, hands its valid readings to the observer, and
// queues it for storage. It blocks while MaxInFlight messages await storage.
func (p *Pipeline) Submit(ctx context.Context, d Delivery) error {
	select {
	case <-p.closing:
		return ErrClosed
	default:
	}
	p.Stats.Received.Add(1)
	item := p.decode(d)
	if len(item.readings) > 0 && p.observer != nil {
		p.observer.Observe(item.readings)
	}
	select {
	case p.in <- item:
		p.Stats.InFlight.Add(1)
		return nil
	case <-p.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decode turns a delivery into readings to store and, if anything was
// refused, a rejection to keep.
func (p *Pipeline) decode(d Delivery) pending {
	now := p.now()
	item := pending{ack: d.Ack}
	device, err := ParseTopic(d.Topic)
	if err != nil {
		item.rejection = &Rejection{Device: device, Topic: d.Topic, Code: RejectTopic, Reason: err.Error(), Payload: d.Payload, Received: now}
		return item
	}
	msg, err := Decode(device, d.Payload, now, p.cfg.Limits)
	rej := func(code, reason string) *Rejection {
		return &Rejection{Device: device, Topic: d.Topic, MsgID: msg.MsgID, Code: code, Reason: reason, Payload: d.Payload, Received: now}
	}
	if err != nil {
		var re *RejectError
		if errors.As(err, &re) {
			item.rejection = rej(re.Code, re.Detail)
		} else {
			item.rejection = rej("invalid", err.Error())
		}
		return item
	}
	var unattributed []string
	kept := msg.Readings[:0]
	for _, r := range msg.Readings {
		patient, ward, err := p.registry.PatientAt(device, r.At)
		if err != nil {
			unattributed = append(unattributed, fmt.Sprintf("%s at %s", r.Kind, r.At.Format(time.RFC3339)))
			if errors.Is(err, devices.ErrNotFound) {
				item.rejection = rej(RejectDevice, fmt.Sprintf("device %s is not registered", device))
				return item
			}
			continue
		}
		r.Patient, r.Ward = patient, ward
		kept = append(kept, r)
	}
	item.readings = kept
	switch {
	case len(unattributed) > 0:
		reason := fmt.Sprintf("device %s was not bound to a patient when these were measured: %s", device, strings.Join(unattributed, ", "))
		if len(msg.Problems) > 0 {
			reason += "; " + ProblemsText(msg.Problems)
		}
		item.rejection = rej(RejectUnassigned, reason)
	case len(msg.Problems) > 0:
		item.rejection = rej(RejectReadings, ProblemsText(msg.Problems))
	}
	return item
}

// Run stores and acknowledges queued messages until ctx is cancelled, then
// flushes what is queued within FlushTimeout and returns.
func (p *Pipeline) Run(ctx context.Context) error {
	defer close(p.drained)
	batch := make([]pending, 0, 256)
	for {
		batch = batch[:0]
		select {
		case item := <-p.in:
			batch = append(batch, item)
		case <-ctx.Done():
			p.shutdown(nil)
			return nil
		}
		batch = p.fill(ctx, batch)
		if err := p.commit(ctx, batch); err != nil {
			// Only cancellation stops commit. Storing the batch again
			// is harmless: a rewritten reading overwrites its copy.
			p.shutdown(batch)
			return nil
		}
	}
}

// fill gathers more queued messages until the batch is full or BatchWait passes.
func (p *Pipeline) fill(ctx context.Context, batch []pending) []pending {
	readings := len(batch[0].readings)
	timer := time.NewTimer(p.cfg.BatchWait)
	defer timer.Stop()
	for readings < p.cfg.BatchSize && len(batch) < p.cfg.BatchSize {
		select {
		case item := <-p.in:
			batch = append(batch, item)
			readings += len(item.readings)
		case <-timer.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// shutdown stops intake and makes one bounded attempt to store what is held
// and queued; what it cannot store stays unacknowledged for redelivery.
func (p *Pipeline) shutdown(held []pending) {
	p.closeMu.Do(func() { close(p.closing) })
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.FlushTimeout)
	defer cancel()
	batch := append([]pending(nil), held...)
	for more := true; more; {
		select {
		case item := <-p.in:
			batch = append(batch, item)
		default:
			more = false
		}
	}
	if len(batch) == 0 {
		return
	}
	if err := p.commit(ctx, batch); err != nil {
		p.log.Warn("shutdown left messages unacknowledged; the broker will redeliver them", "messages", len(batch), "err", err)
		return
	}
	p.log.Info("flushed at shutdown", "messages", len(batch))
}

// commit stores a batch, retrying with backoff until it is stored or ctx
// ends, then acknowledges every message in it in arrival order.
func (p *Pipeline) commit(ctx context.Context, batch []pending) error {
	var readings []vward.Reading
	var rejections []Rejection
	for _, item := range batch {
		readings = append(readings, item.readings...)
		if item.rejection != nil {
			rejections = append(rejections, *item.rejection)
		}
	}
	if err := p.retry(ctx, "write readings", func(ctx context.Context) error {
		return p.store.WriteReadings(ctx, readings)
	}); err != nil {
		return err
	}
	p.Stats.Stored.Add(int64(len(readings)))
	if len(rejections) > 0 {
		if err := p.retry(ctx, "keep dead letters", func(ctx context.Context) error {
			return p.dead.Keep(ctx, rejections)
		}); err != nil {
			return err
		}
		p.Stats.Rejected.Add(int64(len(rejections)))
		for _, r := range rejections {
			p.log.Info("message rejected", "device", r.Device, "code", r.Code, "reason", r.Reason)
			if p.notifier != nil {
				p.notifier.NotifyRejected(r)
			}
		}
	}
	for _, item := range batch {
		if item.ack != nil {
			item.ack()
		}
	}
	p.Stats.Acked.Add(int64(len(batch)))
	p.Stats.InFlight.Add(-int64(len(batch)))
	return nil
}

func (p *Pipeline) retry(ctx context.Context, what string, f func(context.Context) error) error {
	wait := p.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil {
			if attempt > 1 {
				p.log.Info(what+" recovered", "attempts", attempt)
			}
			p.storeOK.Store(true)
			return nil
		}
		p.storeOK.Store(false)
		p.Stats.WriteFailures.Add(1)
		p.log.Warn(what+" failed; holding acknowledgements and retrying", "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		wait = min(wait*2, p.cfg.RetryMax)
	}
}
