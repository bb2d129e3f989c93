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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/semaphore"

	"github.com/vward/vward"
)

// Store keeps readings durably; WriteReadings returns nil only when they
// are. It must not keep rs after it returns: the pipeline reuses it.
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
// concurrent use. The pipeline does not pass on a message it saw recently
// (same device, msg_id and payload), but a redelivery older than its window
// or after a restart may still arrive more than once.
type Observer interface {
	Observe(rs []vward.Reading)
}

// DeviceObserver, when the Observer also implements it, hears of devices
// as well as readings: ObserveDevice once per accepted message (the device
// was heard from; battery 0–1, nil when the message had none) and
// DeviceStatus for each status message (online false: the device said, or
// its will said, it went offline; at: the status's ts, else when it was
// received, or zero for a retained one without a ts, whose time is
// unknown). alerting.Monitor implements it for the battery_low and
// device_offline alerts.
type DeviceObserver interface {
	ObserveDevice(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, battery *float64, at time.Time)
	DeviceStatus(device vward.DeviceID, patient vward.PatientID, ward vward.WardID, online bool, at time.Time)
}

// QuestionnaireObserver, when the Observer also implements it, receives
// each answered questionnaire as soon as it is decoded and attributed, as
// readings are (alerting.Monitor raises the concern alert from it); a
// recent duplicate is not passed on.
type QuestionnaireObserver interface {
	ObserveQuestionnaire(q vward.Answered)
}

// Answers keeps answered questionnaires durably (package
// questionnaires); Keep returns nil only when they are.
type Answers interface {
	Keep(ctx context.Context, qs []vward.Answered) error
}

// DeadLetters keeps refused messages for inspection.
type DeadLetters interface {
	Keep(ctx context.Context, rs []Rejection) error
}

// Rejection is a refused message, or the refused part of a message.
type Rejection struct {
	ID       int64
	Device   vward.DeviceID
	Topic    string
	MsgID    string
	Code     string
	Reason   string
	Payload  []byte // as kept: at most MaxKeptPayload bytes of what was sent
	Received time.Time
	// Size and SHA256 are of the whole payload as sent, when kept
	// (DeadLetterStore.List).
	Size   int
	SHA256 string
}

// rejectionJSON is how operators read a rejection (REST, vward devices
// rejected --json): the payload as text when it is text, so that a bad
// message reads as the device sent it.
type rejectionJSON struct {
	ID            int64          `json:"id,omitempty"`
	Device        vward.DeviceID `json:"device"`
	Topic         string         `json:"topic"`
	MsgID         string         `json:"msg_id,omitempty"`
	Code          string         `json:"code"`
	Reason        string         `json:"reason"`
	Payload       *string        `json:"payload,omitempty"`
	PayloadBase64 []byte         `json:"payload_base64,omitempty"`
	// PayloadBytes is the size of the payload as sent; when it is more
	// than the payload shown, only its first bytes were kept.
	PayloadBytes     int       `json:"payload_bytes"`
	PayloadTruncated bool      `json:"payload_truncated,omitempty"`
	PayloadSHA256    string    `json:"payload_sha256,omitempty"`
	Received         time.Time `json:"received_at"`
}

// MarshalJSON renders the payload as a string when it is valid UTF-8 and as
// payload_base64 otherwise.
func (r Rejection) MarshalJSON() ([]byte, error) {
	size := max(r.Size, len(r.Payload))
	j := rejectionJSON{ID: r.ID, Device: r.Device, Topic: r.Topic, MsgID: r.MsgID, Code: r.Code, Reason: r.Reason, Received: r.Received,
		PayloadBytes: size, PayloadTruncated: size > len(r.Payload), PayloadSHA256: r.SHA256}
	if utf8.Valid(r.Payload) {
		s := string(r.Payload)
		j.Payload = &s
	} else {
		j.PayloadBase64 = r.Payload
	}
	return json.Marshal(j)
}

// Delivery is one message from the broker. Ack tells the broker it may
// forget the message; it is called once, only after the message is stored.
type Delivery struct {
	Topic   string
	Payload []byte
	Ack     func()
	// Redelivered is the broker's DUP flag: it sent this message before.
	Redelivered bool
	// Retained is the broker's RETAIN flag on delivery: a stored message
	// replayed because vward (re)subscribed, not one published just now.
	Retained bool
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
	// MaxInFlightBytes caps the payload bytes of those messages, so that
	// large messages cannot multiply MaxInFlight into gigabytes. It is
	// raised to at least one maximum-size payload.
	MaxInFlightBytes int64
	// DedupWindow is how many recent messages (device and msg_id) are
	// remembered to keep redeliveries away from alerting; 0 means the larger
	// of 65536 and twice MaxInFlight.
	DedupWindow int
	// RetryMin and RetryMax bound the backoff between failed writes.
	RetryMin, RetryMax time.Duration
	// FlushTimeout bounds the final write at shutdown; what it cannot
	// store stays unacknowledged and is redelivered after a restart.
	FlushTimeout time.Duration
	// Writers is how many batches may be written at once (default 2).
	// One blocking write at a time caps ingest at one batch per write's
	// round trip; with two, the next batch is written while InfluxDB
	// answers the last. Acknowledgements stay in arrival order whatever
	// order the writes finish in.
	Writers int
}

// perMessageOverhead is what a message in flight costs beyond its payload
// (decoded readings, bookkeeping), counted against MaxInFlightBytes.
const perMessageOverhead = 512

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
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = 64 << 20
	}
	c.MaxInFlightBytes = max(c.MaxInFlightBytes, int64(c.Limits.MaxPayload)+perMessageOverhead)
	if c.DedupWindow <= 0 {
		c.DedupWindow = max(65536, 2*c.MaxInFlight)
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
	if c.Writers <= 0 {
		c.Writers = 2
	}
	return c
}

// pending is a message decoded and waiting for storage.
type pending struct {
	readings  []vward.Reading
	battery   *float64
	status    *statusUpdate
	answered  *vward.Answered
	rejection *Rejection
	ack       func()
	weight    int64 // against MaxInFlightBytes
	stored    bool  // written already (held back only to keep acks in order)
}

// statusUpdate is a device's status, attributed to its current patient.
type statusUpdate struct {
	device  vward.DeviceID
	patient vward.PatientID
	ward    vward.WardID
	DeviceStatus
}

// Pipeline is the ingest pipeline. Build it with NewPipeline, start Run, and
// feed it with Submit (the MQTT source does).
type Pipeline struct {
	cfg      Config
	store    Store
	registry Registry
	observer Observer
	devices  DeviceObserver        // the observer, if it hears of devices too
	asked    QuestionnaireObserver // the observer, if it hears of questionnaires too
	dead     DeadLetters
	answers  Answers
	notices  chan<- Rejection
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time

	// slots holds one token per message in flight, bytes their weight:
	// Submit takes both before it decodes, commit gives them back after
	// the acknowledgement. Together they bound what the pipeline holds.
	slots  chan struct{}
	bytes  *semaphore.Weighted
	recent *recentMessages

	in            chan pending
	closing       chan struct{}
	closingCtx    context.Context
	cancelClosing context.CancelFunc
	closeMu       sync.Once
	drained       chan struct{}
	storeOK       atomic.Bool
	lastStoreErr  atomic.Pointer[string]
	inFlightBytes atomic.Int64
}

// NewPipeline wires a pipeline. notices, if not nil, is sent each
// rejection once its dead letter is stored, for the broker connection to
// tell the device (mqttsource); it is the send side of a channel the
// wiring makes, so that neither needs the other to be built. observer and
// notices may be nil; so may metrics, for tests that do not look at them.
// answers keeps questionnaires; with nil, the questionnaire topic is
// refused (bad_topic), since nothing could keep what it carries.
func NewPipeline(cfg Config, store Store, reg Registry, observer Observer, dead DeadLetters, answers Answers, notices chan<- Rejection, metrics *Metrics, log *slog.Logger) *Pipeline {
	cfg = cfg.withDefaults()
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	p := &Pipeline{
		cfg: cfg, store: store, registry: reg, observer: observer, dead: dead, answers: answers, notices: notices,
		metrics: metrics,
		log:     log.With("component", "ingest"),
		now:     time.Now,
		slots:   make(chan struct{}, cfg.MaxInFlight),
		bytes:   semaphore.NewWeighted(cfg.MaxInFlightBytes),
		recent:  newRecentMessages(cfg.DedupWindow),
		in:      make(chan pending, cfg.MaxInFlight),
		closing: make(chan struct{}),
		drained: make(chan struct{}),
	}
	p.devices, _ = observer.(DeviceObserver)
	p.asked, _ = observer.(QuestionnaireObserver)
	p.closingCtx, p.cancelClosing = context.WithCancel(context.Background())
	p.storeOK.Store(true)
	return p
}

// Metrics returns the pipeline's metrics.
func (p *Pipeline) Metrics() *Metrics { return p.metrics }

// StoreHealthy reports whether the last write to the store succeeded.
func (p *Pipeline) StoreHealthy() bool { return p.storeOK.Load() }

// StoreError returns the last write error while writes fail, else nil.
func (p *Pipeline) StoreError() error {
	if p.storeOK.Load() {
		return nil
	}
	if s := p.lastStoreErr.Load(); s != nil {
		return errors.New(*s)
	}
	return errors.New("writes are failing")
}

// InFlight returns how many messages are received and not yet acknowledged.
func (p *Pipeline) InFlight() int { return len(p.slots) }

// InFlightBytes returns what those messages weigh against MaxInFlightBytes.
func (p *Pipeline) InFlightBytes() int64 { return p.inFlightBytes.Load() }

// Config returns the configuration in effect, defaults applied.
func (p *Pipeline) Config() Config { return p.cfg }

// Drained is closed when Run has returned and nothing more will be acknowledged.
func (p *Pipeline) Drained() <-chan struct{} { return p.drained }

// ErrClosed is returned by Submit once the pipeline is shutting down; the
// message stays unacknowledged and the broker redelivers it later.
var ErrClosed = errors.New("ingest pipeline is shutting down")

// Submit decodes one delivery, hands its valid readings to the observer
// unless it is a recent duplicate, and queues it for storage. It blocks
// while MaxInFlight messages (or MaxInFlightBytes) await storage: that
// stalls the broker connection, and the broker holds the backlog.
func (p *Pipeline) Submit(ctx context.Context, d Delivery) error {
	weight := int64(len(d.Payload)) + perMessageOverhead
	if err := p.acquire(ctx, weight); err != nil {
		return err
	}
	item := p.decode(d)
	item.weight = weight
	if len(item.readings) > 0 && p.observer != nil {
		p.observeOnce(d, item)
	}
	if st := item.status; st != nil && p.devices != nil {
		p.devices.DeviceStatus(st.device, st.patient, st.ward, st.Online, st.At)
	}
	if q := item.answered; q != nil && p.asked != nil {
		p.observeQuestionnaireOnce(d, q)
	}
	// in has room for every slot, so this never blocks.
	p.in <- item
	return nil
}

// acquire takes a slot and weight bytes, or neither.
func (p *Pipeline) acquire(ctx context.Context, weight int64) error {
	select {
	case <-p.closing:
		return ErrClosed
	default:
	}
	select {
	case p.slots <- struct{}{}:
	case <-p.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	if !p.bytes.TryAcquire(weight) {
		actx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(p.closingCtx, cancel)
		err := p.bytes.Acquire(actx, weight)
		stop()
		cancel()
		if err != nil {
			<-p.slots
			if p.closingCtx.Err() != nil {
				return ErrClosed
			}
			return err
		}
	}
	p.inFlightBytes.Add(weight)
	p.metrics.InFlight.Set(float64(len(p.slots)))
	p.metrics.InFlightBytes.Set(float64(p.inFlightBytes.Load()))
	return nil
}

// release gives back what acquire took for items that are done with.
func (p *Pipeline) release(items []pending) {
	var w int64
	for _, it := range items {
		w += it.weight
		<-p.slots
	}
	p.bytes.Release(w)
	p.inFlightBytes.Add(-w)
	p.metrics.InFlight.Set(float64(len(p.slots)))
	p.metrics.InFlightBytes.Set(float64(p.inFlightBytes.Load()))
}

// observeOnce passes readings to the observer unless the same message was
// seen recently: a redelivery must not count twice in alerting.
func (p *Pipeline) observeOnce(d Delivery, item pending) {
	r0 := item.readings[0]
	switch p.recent.check(r0.Device, r0.MsgID, d.Payload) {
	case duplicate:
		p.metrics.Duplicates.Inc()
		return
	case reused:
		p.log.Warn("msg_id reused with a different payload; scoring it as a new message", "device", r0.Device, "msg_id", r0.MsgID)
	}
	p.observer.Observe(item.readings)
	if p.devices != nil {
		last := r0.At
		for _, r := range item.readings {
			last = latest(last, r.At)
		}
		p.devices.ObserveDevice(r0.Device, r0.Patient, r0.Ward, item.battery, last)
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// decode turns a delivery into readings to store and, if anything was
// refused, a rejection to keep.
func (p *Pipeline) decode(d Delivery) pending {
	now := p.now()
	item := pending{ack: d.Ack}
	if device, ok := StatusTopicDevice(d.Topic); ok {
		return p.decodeStatus(device, d, item, now)
	}
	if device, ok := QuestionnaireTopicDevice(d.Topic); ok && p.answers != nil {
		return p.decodeQuestionnaire(device, d, item, now)
	}
	device, format, err := ParseDeviceTopic(d.Topic)
	p.metrics.Received.WithLabelValues(string(formatLabel(format))).Inc()
	if d.Redelivered {
		p.metrics.Redelivered.Inc()
	}
	if err != nil {
		item.rejection = &Rejection{Device: device, Topic: d.Topic, Code: RejectTopic, Reason: err.Error(), Payload: d.Payload, Received: now}
		return item
	}
	var msg Message
	if format == FormatSenML {
		msg, err = DecodeSenML(device, d.Payload, now, p.cfg.Limits)
	} else {
		msg, err = Decode(device, d.Payload, now, p.cfg.Limits)
	}
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
	// A message's readings nearly always share one time, so the registry
	// is asked once per time, not once per reading.
	var (
		askedAt      time.Time
		asked        bool
		patient      vward.PatientID
		ward         vward.WardID
		attributeErr error
	)
	for _, r := range msg.Readings {
		if !asked || !r.At.Equal(askedAt) {
			patient, ward, attributeErr = p.registry.PatientAt(device, r.At)
			askedAt, asked = r.At, true
		}
		if err := attributeErr; err != nil {
			if errors.Is(err, vward.ErrNotFound) {
				item.rejection = rej(RejectDevice, fmt.Sprintf("device %s is not registered", device))
				return item
			}
			unattributed = append(unattributed, fmt.Sprintf("%s at %s", r.Kind, r.At.Format(time.RFC3339)))
			continue
		}
		r.Patient, r.Ward = patient, ward
		kept = append(kept, r)
	}
	item.readings = kept
	item.battery = msg.Battery
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

// decodeStatus reads a status message. A malformed one is dead-lettered
// like any refused message; one from a device that is not registered or
// not bound is acknowledged and dropped, since it is retained and would
// otherwise be filed again at every reconnect, and no patient needs it.
func (p *Pipeline) decodeStatus(device vward.DeviceID, d Delivery, item pending, now time.Time) pending {
	p.metrics.Received.WithLabelValues(statusLeaf).Inc()
	st, err := DecodeStatus(d.Payload, now, p.cfg.Limits)
	if err != nil {
		code, reason := RejectJSON, err.Error()
		var re *RejectError
		if errors.As(err, &re) {
			code, reason = re.Code, re.Detail
		}
		item.rejection = &Rejection{Device: device, Topic: d.Topic, Code: code, Reason: reason, Payload: d.Payload, Received: now}
		return item
	}
	patient, ward, err := p.registry.PatientAt(device, now)
	if err != nil {
		p.log.Debug("status of a device with no patient ignored", "device", device, "err", err)
		return item
	}
	if d.Retained && !st.Stamped {
		// Replayed when vward (re)subscribed, with no ts of its own: it is
		// the device's last word, said at some unknown time, not a sign of
		// life now. Alerting must not count it as the device heard from.
		st.At = time.Time{}
	}
	item.status = &statusUpdate{device: device, patient: patient, ward: ward, DeviceStatus: st}
	return item
}

// formatLabel keeps the format label's values to the known few.
func formatLabel(f Format) Format {
	if f == FormatSenML {
		return f
	}
	return FormatV1
}

// Run stores and acknowledges queued messages until ctx is cancelled, then
// flushes what is queued within FlushTimeout and returns. Up to
// Config.Writers batches are written at once; each is acknowledged only
// when it and every batch before it are stored, so PUBACKs go out in the
// order the PUBLISHes came.
func (p *Pipeline) Run(ctx context.Context) error {
	defer close(p.drained)
	var fifo []*batchWrite // written or being written, oldest first
	for {
		var head <-chan struct{}
		if len(fifo) > 0 {
			head = fifo[0].done
		}
		select {
		case <-head:
			if fifo[0].err != nil {
				// Only cancellation stops a write.
				p.stop(fifo)
				return nil
			}
			p.acknowledge(fifo[0].batch)
			fifo = fifo[1:]
			continue
		case item := <-p.in:
			batch := make([]pending, 1, 256)
			batch[0] = item
			batch = p.fill(ctx, batch)
			if len(fifo) == p.cfg.Writers {
				<-fifo[0].done
				if fifo[0].err != nil {
					p.stop(append(fifo, &batchWrite{batch: batch, done: closed, err: errNotWritten}))
					return nil
				}
				p.acknowledge(fifo[0].batch)
				fifo = fifo[1:]
			}
			w := &batchWrite{batch: batch, done: make(chan struct{})}
			fifo = append(fifo, w)
			go func() {
				w.err = p.write(ctx, w.batch)
				close(w.done)
			}()
		case <-ctx.Done():
			p.stop(fifo)
			return nil
		}
	}
}

// batchWrite is one batch on its way to the store.
type batchWrite struct {
	batch []pending
	done  chan struct{} // closed when the write has finished
	err   error         // read after done
}

var (
	closed        = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
	errNotWritten = errors.New("not written: the pipeline is stopping")
)

// stop waits for the writes in progress, acknowledges those stored in
// order up to the first that was not, and hands the rest to shutdown
// (which does not write again what was stored, only acknowledges it).
func (p *Pipeline) stop(fifo []*batchWrite) {
	var held []pending
	failed := false
	for _, w := range fifo {
		<-w.done
		if !failed && w.err == nil {
			p.acknowledge(w.batch)
			continue
		}
		failed = true
		if w.err == nil {
			for i := range w.batch {
				w.batch[i].stored = true
			}
		}
		held = append(held, w.batch...)
	}
	p.shutdown(held)
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
	p.closeMu.Do(func() {
		close(p.closing)
		p.cancelClosing()
	})
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
		p.release(batch)
		return
	}
	p.log.Info("flushed at shutdown", "messages", len(batch))
}

var readingBuffers = sync.Pool{New: func() any { return new([]vward.Reading) }}

// commit stores a batch, retrying with backoff until it is stored or ctx
// ends, then acknowledges every message in it in arrival order (MQTT wants
// PUBACKs in the order the PUBLISHes came).
func (p *Pipeline) commit(ctx context.Context, batch []pending) error {
	if err := p.write(ctx, batch); err != nil {
		return err
	}
	p.acknowledge(batch)
	return nil
}

// write stores a batch's readings and dead letters (those not written
// already), retrying with backoff until they are stored or ctx ends.
func (p *Pipeline) write(ctx context.Context, batch []pending) error {
	n := 0
	for _, item := range batch {
		if !item.stored {
			n += len(item.readings)
		}
	}
	// The batch's readings in one slice, from a pool: a batch is thousands
	// of readings, written several times a second, and the store does not
	// keep the slice.
	buf := readingBuffers.Get().(*[]vward.Reading)
	defer func() {
		clear(*buf) // drop the strings for the GC
		*buf = (*buf)[:0]
		readingBuffers.Put(buf)
	}()
	readings := slices.Grow((*buf)[:0], n)
	var rejections []Rejection
	var answered []vward.Answered
	for _, item := range batch {
		if item.stored {
			continue
		}
		readings = append(readings, item.readings...)
		if item.answered != nil {
			answered = append(answered, *item.answered)
		}
		if item.rejection != nil {
			rejections = append(rejections, *item.rejection)
		}
	}
	*buf = readings
	if len(readings) > 0 {
		if err := p.retry(ctx, "write readings", storeHistory, func(ctx context.Context) error {
			began := time.Now()
			err := p.store.WriteReadings(ctx, readings)
			if err == nil {
				p.metrics.WriteDuration.Observe(time.Since(began).Seconds())
			}
			return err
		}); err != nil {
			return err
		}
	}
	if len(answered) > 0 {
		if err := p.retry(ctx, "keep questionnaires", storeQuestionnaires, func(ctx context.Context) error {
			return p.answers.Keep(ctx, answered)
		}); err != nil {
			return err
		}
	}
	if len(rejections) > 0 {
		if err := p.retry(ctx, "keep dead letters", storeDeadLetters, func(ctx context.Context) error {
			return p.dead.Keep(ctx, rejections)
		}); err != nil {
			return err
		}
	}
	return nil
}

// notify queues r for its device to be told, unless the queue is full:
// telling the device is best effort (the dead letter is the record), and
// acknowledging must not wait on the broker.
func (p *Pipeline) notify(r Rejection) {
	if p.notices == nil {
		return
	}
	select {
	case p.notices <- r:
	default:
		p.log.Debug("rejection notice dropped: the queue to the broker is full", "device", r.Device, "msg_id", r.MsgID)
	}
}

// acknowledge counts a stored batch, tells devices of its rejections,
// acknowledges its messages in arrival order and frees their room.
func (p *Pipeline) acknowledge(batch []pending) {
	readings, stored := 0, 0
	for _, item := range batch {
		readings += len(item.readings)
		if len(item.readings) > 0 {
			stored++
		}
	}
	p.metrics.ReadingsStored.Add(float64(readings))
	p.metrics.MessagesStored.Add(float64(stored))
	for _, item := range batch {
		r := item.rejection
		if r == nil {
			continue
		}
		p.metrics.Rejected.WithLabelValues(r.Code).Inc()
		// The reason and payload stay in the dead-letter store:
		// a payload is untrusted text and has no place in logs.
		p.log.Info("message rejected", "device", r.Device, "msg_id", r.MsgID, "code", r.Code)
		p.notify(*r)
	}
	for _, item := range batch {
		if item.ack != nil {
			item.ack()
		}
	}
	p.metrics.Acked.Add(float64(len(batch)))
	p.release(batch)
}

func (p *Pipeline) retry(ctx context.Context, what, store string, f func(context.Context) error) error {
	wait := p.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil {
			if attempt > 1 {
				p.log.Info(what+" recovered", "attempts", attempt)
			}
			p.storeOK.Store(true)
			p.metrics.StoreUp.Set(1)
			return nil
		}
		msg := err.Error()
		p.lastStoreErr.Store(&msg)
		p.storeOK.Store(false)
		p.metrics.StoreUp.Set(0)
		p.metrics.WriteFailures.WithLabelValues(store).Inc()
		p.log.Warn(what+" failed; holding acknowledgements and retrying", "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
		wait = min(wait*2, p.cfg.RetryMax)
	}
}
