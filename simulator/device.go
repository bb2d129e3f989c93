package simulator

import (
	"container/heap"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/vward/vward"
)

// DeviceKind is what a device is, which sets what it measures, how often
// and how it publishes unless the scenario says otherwise.
type DeviceKind string

// Device kinds.
const (
	// Hub is a home hub or tablet app: a full set of observations at spot
	// checks (the patient or a carer answers the oxygen and ACVPU
	// questions), every 4 hours by default.
	Hub DeviceKind = "hub"
	// Oximeter is a fingertip pulse oximeter used at spot checks.
	Oximeter DeviceKind = "oximeter"
	// BPCuff is a blood pressure cuff used at spot checks.
	BPCuff DeviceKind = "bp_cuff"
	// Thermometer is a connected thermometer used at spot checks.
	Thermometer DeviceKind = "thermometer"
	// Wearable is a continuous wearable (patch or wristband): pulse,
	// saturation and breathing rate every minute by default, up to 1 Hz.
	Wearable DeviceKind = "wearable"
	// Gateway is a phone or hub in front of other devices: it samples
	// every Every and publishes what it collected every Batch, each reading
	// with its own ts.
	Gateway DeviceKind = "gateway"
	// Scale is bathroom scales that send the weight, once a morning at
	// 07:30 by default: heart failure's daily weighing.
	Scale DeviceKind = "scale"
)

// DeviceKinds lists every kind, for validation and docs.
var DeviceKinds = []DeviceKind{Hub, Oximeter, BPCuff, Thermometer, Wearable, Gateway, Scale}

// Measurable are the reading kinds the simulator's physiology has a value
// for; a device may measure only these.
var Measurable = append(slices.Clone(fullSet), vward.Weight)

var fullSet = []vward.ReadingKind{
	vward.RespiratoryRate, vward.SpO2, vward.SupplementalOxygen, vward.SystolicBP,
	vward.DiastolicBP, vward.HeartRate, vward.Consciousness, vward.Temperature,
}

type kindDefaults struct {
	measures []vward.ReadingKind
	every    time.Duration
	times    []ClockTime // spot checks at times of day, in place of every
	batch    time.Duration
	drain    float64 // battery per simulated hour
	noise    noise
}

var kindTable = map[DeviceKind]kindDefaults{
	Hub:         {measures: fullSet, every: 4 * time.Hour, drain: 0.002, noise: defaultNoise},
	Oximeter:    {measures: []vward.ReadingKind{vward.SpO2, vward.HeartRate}, every: 4 * time.Hour, drain: 0.001, noise: defaultNoise},
	BPCuff:      {measures: []vward.ReadingKind{vward.SystolicBP, vward.DiastolicBP, vward.HeartRate}, every: 8 * time.Hour, drain: 0.001, noise: defaultNoise},
	Thermometer: {measures: []vward.ReadingKind{vward.Temperature}, every: 8 * time.Hour, drain: 0.001, noise: defaultNoise},
	Wearable: {measures: []vward.ReadingKind{vward.HeartRate, vward.SpO2, vward.RespiratoryRate}, every: time.Minute, drain: 0.02,
		noise: noise{rr: 1.5, spo2: 1, hr: 2.5}},
	Gateway: {measures: fullSet, every: 15 * time.Minute, batch: time.Hour, drain: 0, noise: defaultNoise},
	// Weighed once a day, after voiding and before breakfast, as heart
	// failure self-care advice says; AA batteries last months.
	Scale: {measures: []vward.ReadingKind{vward.Weight}, times: []ClockTime{ClockTime(7*time.Hour + 30*time.Minute)}, drain: 0.0002, noise: defaultNoise},
}

// Schedule says when a device measures, in scenario time.
type Schedule struct {
	// Every is the interval between measurements.
	Every Duration `json:"every,omitempty"`
	// Times are spot checks at these times of the patient's day, e.g.
	// ["08:00","14:00","20:00"]; they replace Every.
	Times []ClockTime `json:"times,omitempty"`
	// Phase is when the first Every-measurement falls; unset, it is drawn
	// at random within the first interval so a fleet does not publish in
	// lockstep.
	Phase *Duration `json:"phase,omitempty"`
	// Jitter delays each measurement by up to this much, at random.
	Jitter Duration `json:"jitter,omitempty"`
	// Batch is how often a gateway publishes what it sampled.
	Batch Duration `json:"batch,omitempty"`
}

// Spell is a window of scenario time.
type Spell struct {
	At  Duration `json:"at"`
	For Duration `json:"for"`
}

// Battery drains in simulated time and is reported in each message.
type Battery struct {
	Start        float64 `json:"start"`
	DrainPerHour float64 `json:"drain_per_hour"`
	// Dies makes the device fall silent for good at 0.
	Dies bool `json:"dies,omitempty"`
}

// Faults are how a device misbehaves. Rates are probabilities per message.
type Faults struct {
	// Offline spells: the device loses its connection (it is closed
	// abruptly, as a dropped line would), keeps measuring into a buffer,
	// and backfills everything buffered the moment it is back.
	Offline []Spell `json:"offline,omitempty"`
	// OfflinePerDay adds random offline spells at this mean rate, each
	// lasting OfflineMean on average (default 30m).
	OfflinePerDay float64  `json:"offline_per_day,omitempty"`
	OfflineMean   Duration `json:"offline_mean,omitempty"`
	// Buffer is how many messages the device holds while offline (default
	// 10000); beyond it the oldest are lost, as on a real device.
	Buffer int `json:"buffer,omitempty"`
	// DuplicateRate resends a message (same msg_id, same bytes) shortly
	// after, as a device does when it missed the PUBACK.
	DuplicateRate float64 `json:"duplicate_rate,omitempty"`
	// OutOfOrderRate holds a message back until after the next one.
	OutOfOrderRate float64 `json:"out_of_order_rate,omitempty"`
	// MalformedRate garbles a message: truncated JSON, a missing msg_id,
	// an unreadable ts, a value of the wrong type, an unknown reading
	// type, or an impossible value (vward refuses all or part of it).
	MalformedRate float64 `json:"malformed_rate,omitempty"`
	// ClockSkew is added to every timestamp the device writes. vward
	// refuses readings more than 2 minutes in the future.
	ClockSkew Duration `json:"clock_skew,omitempty"`
	// Battery overrides the kind's default drain, starting from a random
	// level between 0.6 and 1.
	Battery *Battery `json:"battery,omitempty"`
}

// DeviceSpec is a device in a scenario.
type DeviceSpec struct {
	ID   vward.DeviceID `json:"id,omitempty"`
	Kind DeviceKind     `json:"kind"`
	// Measures overrides the kind's reading kinds.
	Measures []vward.ReadingKind `json:"measures,omitempty"`
	Schedule
	Faults Faults `json:"faults,omitzero"`
}

// withDefaults fills what the kind implies.
func (d DeviceSpec) withDefaults() DeviceSpec {
	k := kindTable[d.Kind]
	if len(d.Measures) == 0 {
		d.Measures = k.measures
	}
	if d.Every <= 0 && len(d.Times) == 0 {
		d.Every = Duration(k.every)
		if len(k.times) > 0 {
			d.Every, d.Times = 0, slices.Clone(k.times)
		}
	}
	if d.Kind == Gateway && d.Batch <= 0 {
		d.Batch = Duration(k.batch)
	}
	if d.Faults.Buffer <= 0 {
		d.Faults.Buffer = 10000
	}
	if d.Faults.OfflineMean <= 0 {
		d.Faults.OfflineMean = Duration(30 * time.Minute)
	}
	return d
}

// Op is what a step does.
type Op uint8

// Steps a device takes.
const (
	// Publish sends Payload to the device's readings topic.
	Publish Op = iota
	// GoOffline drops the device's connection.
	GoOffline
	// GoOnline reconnects it.
	GoOnline
)

// Class marks what kind of message a published step is, for counting.
type Class uint8

// Classes; a step may have several.
const (
	Backfill   Class = 1 << iota // measured while offline, sent on reconnect
	Duplicate                    // a resend of an earlier msg_id
	OutOfOrder                   // held back until after the next message
	Malformed                    // garbled on purpose
	Skewed                       // stamped by a clock that is off
)

// Step is one thing a device does at scenario time At.
type Step struct {
	At      time.Duration
	Op      Op
	Device  vward.DeviceID
	Patient vward.PatientID
	MsgID   string
	// Topic is where Payload goes; empty means the device's readings topic.
	Topic   string
	Payload []byte
	Class   Class
	// Readings are what vward should accept from Payload, with their
	// measurement times: the raw material of a dry run. A wholly garbled
	// message has none.
	Readings []vward.Reading
}

// Steps yields a device's steps in the order it takes them.
type Steps interface {
	// Next returns the next step, or false when the device is done.
	Next() (Step, bool)
}

// StreamStats counts what a device stream did beyond publishing.
type StreamStats struct {
	Dropped  int // lost to a full offline buffer
	Stranded int // still buffered when the scenario ended offline
	Died     bool
}

// Stream generates one device's steps. Everything it produces is a pure
// function of its inputs: the rng is the device's own, and it never reads
// the wall clock.
type Stream struct {
	dev     DeviceSpec
	patient *Patient
	clock   Clock
	end     time.Duration
	rng     *rand.Rand
	noise   noise

	spells []*spell
	// schedule state
	base     time.Duration // the Every-grid point of the pending measurement
	next     time.Duration
	k        int
	day      int
	timeIdx  int
	lastTime time.Duration
	done     bool

	seq       int
	order     int
	pending   stepHeap
	batch     []sample
	lastBatch time.Duration
	battery   Battery

	Stats StreamStats
}

type spell struct {
	from, to time.Duration
	buf      []held
	flushed  bool
}

// held is a message kept in an offline buffer.
type held struct {
	step Step
	dup  bool
}

type sample struct {
	at       time.Duration
	readings []WireReading
	accepted []vward.Reading
}

// NewStream builds device d's stream for patient p. outages are spells the
// scenario imposes on this device (a broadband outage); end is the
// scenario's length; seed and the device id pick the device's rng.
func NewStream(d DeviceSpec, p *Patient, outages []Spell, clock Clock, end time.Duration, seed uint64) *Stream {
	d = d.withDefaults()
	s := &Stream{
		dev: d, patient: p, clock: clock, end: end,
		rng:   rand.New(rand.NewPCG(seed, hashString("device:"+string(d.ID)))),
		noise: kindTable[d.Kind].noise,
	}
	// Draw in a fixed order: battery, phase, random spells.
	if d.Faults.Battery != nil {
		s.battery = *d.Faults.Battery
	} else {
		s.battery = Battery{Start: 0.6 + 0.4*s.rng.Float64(), DrainPerHour: kindTable[d.Kind].drain}
	}
	phase := time.Duration(0)
	if d.Phase != nil {
		phase = d.Phase.D()
	} else if d.Every > 0 {
		phase = time.Duration(s.rng.Int64N(int64(d.Every)))
	}
	windows := slices.Clone(d.Faults.Offline)
	windows = append(windows, outages...)
	if rate := d.Faults.OfflinePerDay; rate > 0 {
		mean := float64(24*time.Hour) / rate
		for t := time.Duration(s.rng.ExpFloat64() * mean); t < end; {
			length := time.Duration(s.rng.ExpFloat64() * float64(d.Faults.OfflineMean))
			windows = append(windows, Spell{At: Duration(t), For: Duration(length)})
			t += length + time.Duration(s.rng.ExpFloat64()*mean)
		}
	}
	s.spells = mergeSpells(windows, end)
	for _, sp := range s.spells {
		s.push(Step{At: sp.from, Op: GoOffline, Device: d.ID, Patient: p.ID})
		if sp.to <= end {
			s.push(Step{At: sp.to, Op: GoOnline, Device: d.ID, Patient: p.ID})
		}
	}
	s.pushEvents()
	if len(d.Times) > 0 {
		slices.Sort(d.Times)
		s.dev.Times = d.Times
		s.next = -1
		s.advanceTimes()
	} else {
		s.base = phase
		s.jitter()
	}
	s.lastBatch = 0
	if s.next > end {
		s.done = true
	}
	return s
}

// Device is the stream's device.
func (s *Stream) Device() vward.DeviceID { return s.dev.ID }

// mergeSpells sorts windows and joins overlapping ones, dropping what falls
// outside [0, end).
func mergeSpells(ws []Spell, end time.Duration) []*spell {
	slices.SortFunc(ws, func(a, b Spell) int { return int(a.At - b.At) })
	var out []*spell
	for _, w := range ws {
		from, to := max(0, w.At.D()), w.At.D()+w.For.D()
		if w.For <= 0 || from >= end || to <= from {
			continue
		}
		if n := len(out); n > 0 && from <= out[n-1].to {
			out[n-1].to = max(out[n-1].to, to)
			continue
		}
		out = append(out, &spell{from: from, to: to})
	}
	return out
}

// jitter places the pending Every-measurement up to Jitter after its grid
// point, so that a schedule wanders but does not drift.
func (s *Stream) jitter() {
	s.next = s.base
	if s.dev.Jitter > 0 {
		s.next += time.Duration(s.rng.Int64N(int64(s.dev.Jitter)))
	}
	if s.next <= s.lastTime && s.k > 0 {
		s.next = s.lastTime + time.Millisecond
	}
}

// advanceTimes moves to the next spot-check time of day.
func (s *Stream) advanceTimes() {
	for {
		if s.timeIdx >= len(s.dev.Times) {
			s.timeIdx = 0
			s.day++
		}
		c := time.Duration(s.dev.Times[s.timeIdx])
		s.timeIdx++
		t := time.Duration(s.day)*24*time.Hour + c - s.patient.DayStart
		if t < 0 {
			continue
		}
		if s.dev.Jitter > 0 {
			t += time.Duration(s.rng.Int64N(int64(s.dev.Jitter)))
		}
		if t <= s.lastTime && s.lastTime > 0 {
			t = s.lastTime + time.Second
		}
		s.next = t
		return
	}
}

func (s *Stream) advance() {
	s.lastTime = s.next
	if len(s.dev.Times) > 0 {
		s.advanceTimes()
	} else {
		s.k++
		s.base += s.dev.Every.D()
		s.jitter()
	}
	if s.next > s.end {
		s.done = true
	}
}

// Next implements Steps.
func (s *Stream) Next() (Step, bool) {
	for {
		if s.pending.Len() > 0 && (s.done || s.pending[0].At <= s.next) {
			return heap.Pop(&s.pending).(Step), true
		}
		if s.done {
			s.strand()
			return Step{}, false
		}
		s.measureAt(s.next)
		s.advance()
		limit := s.next
		if s.done {
			limit = s.end
		}
		s.flushSpells(limit)
	}
}

// strand counts what is still buffered when the scenario ends offline.
func (s *Stream) strand() {
	for _, sp := range s.spells {
		if !sp.flushed {
			s.Stats.Stranded += len(sp.buf)
			sp.buf, sp.flushed = nil, true
		}
	}
}

func (s *Stream) flushSpells(upTo time.Duration) {
	for _, sp := range s.spells {
		if sp.flushed || sp.to > upTo {
			continue
		}
		sp.flushed = true
		for _, h := range sp.buf {
			st := h.step
			st.At = sp.to
			st.Class |= Backfill
			s.push(st)
			if h.dup {
				d := st
				d.Class |= Duplicate
				d.Readings = nil
				s.push(d)
			}
		}
		sp.buf = nil
	}
}

func (s *Stream) spellAt(t time.Duration) *spell {
	for _, sp := range s.spells {
		if t >= sp.from && t < sp.to {
			return sp
		}
	}
	return nil
}

func (s *Stream) batteryAt(t time.Duration) float64 {
	return s.battery.Start - s.battery.DrainPerHour*t.Hours()
}

// measureAt takes the device's measurement at t and turns it into steps.
func (s *Stream) measureAt(t time.Duration) {
	level := s.batteryAt(t)
	if level <= 0 && s.battery.Dies {
		s.Stats.Died = true
		s.done = true
		return
	}
	v := s.patient.Truth(t)
	smp := sample{at: t}
	stamp := s.clock.Stamp(t).Add(s.dev.Faults.ClockSkew.D())
	for _, k := range s.dev.Measures {
		if k == vward.FallEvent {
			continue // sent at each fall, not measured (pushEvents)
		}
		val := measure(v, k, s.noise, s.rng)
		smp.readings = append(smp.readings, WireReading{Type: k, Value: val})
		smp.accepted = append(smp.accepted, vward.Reading{
			Device: s.dev.ID, Patient: s.patient.ID, Kind: k, Value: readingValue(val), At: stamp,
		})
	}
	if len(smp.readings) == 0 && s.dev.Kind != Gateway {
		return // a fall detector alone: nothing to measure
	}
	if s.dev.Kind == Gateway {
		smp.readings = slices.Clone(smp.readings)
		ts := stamp.Format(time.RFC3339Nano)
		for i := range smp.readings {
			smp.readings[i].TS = ts
		}
		s.batch = append(s.batch, smp)
		if t-s.lastBatch < s.dev.Batch.D() && t+s.dev.Every.D() <= s.end {
			return
		}
		s.lastBatch = t
		var all []WireReading
		var acc []vward.Reading
		for _, b := range s.batch {
			all = append(all, b.readings...)
			acc = append(acc, b.accepted...)
		}
		s.batch = nil
		if len(all) == 0 {
			return
		}
		smp = sample{at: t, readings: all, accepted: acc}
	}
	s.emit(t, stamp, smp, level)
}

// emit builds the message of a measurement (or a gateway's batch) and
// schedules its delivery. The fault draws are made for every message, in a
// fixed order, whatever the rates.
func (s *Stream) emit(t time.Duration, stamp time.Time, smp sample, level float64) {
	s.seq++
	msgID := fmt.Sprintf("%s-%06d", s.dev.ID, s.seq)
	battery := roundBattery(level)
	p := Payload{MsgID: msgID, TS: stamp.Format(time.RFC3339Nano), Readings: smp.readings, Battery: &battery}
	body, _ := json.Marshal(p) // plain types only: cannot fail
	st := Step{At: t, Op: Publish, Device: s.dev.ID, Patient: s.patient.ID, MsgID: msgID, Payload: body, Readings: smp.accepted}
	if s.dev.Faults.ClockSkew != 0 {
		st.Class |= Skewed
	}

	garble := s.rng.Float64() < s.dev.Faults.MalformedRate
	variant := s.rng.IntN(len(garblers))
	dup := s.rng.Float64() < s.dev.Faults.DuplicateRate
	late := s.rng.Float64() < s.dev.Faults.OutOfOrderRate
	if garble {
		st.Payload, st.Readings = garblers[variant](p, st.Readings)
		st.Class |= Malformed
	}

	if sp := s.spellAt(t); sp != nil {
		sp.buf = append(sp.buf, held{step: st, dup: dup})
		if len(sp.buf) > s.dev.Faults.Buffer {
			sp.buf = sp.buf[1:]
			s.Stats.Dropped++
		}
		return
	}
	gap := s.dev.Every.D()
	if gap <= 0 {
		gap = time.Hour
	}
	if late {
		st.At = t + gap + gap/2
		st.Class |= OutOfOrder
	}
	s.push(st)
	if dup {
		d := st
		d.At = st.At + min(gap/2, 30*time.Second)
		d.Class |= Duplicate
		d.Readings = nil // vward already has them
		s.push(d)
	}
}

// roundBattery is a battery level as a device reports it, 0–1 in
// hundredths.
func roundBattery(level float64) float64 { return math.Round(clamp(level, 0, 1)*100) / 100 }

func (s *Stream) push(st Step) {
	s.order++
	heap.Push(&s.pending, orderedStep{st, s.order})
}

// readingValue is a wire value as vward.Reading holds it.
func readingValue(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case bool:
		if x {
			return 1
		}
		return 0
	case string:
		l, _ := vward.ParseLevel(x)
		return float64(l)
	}
	return 0
}

// garblers make a malformed payload from a good one, and say which
// readings vward would still accept.
var garblers = []func(Payload, []vward.Reading) ([]byte, []vward.Reading){
	// Truncated in transit: not JSON at all.
	func(p Payload, _ []vward.Reading) ([]byte, []vward.Reading) {
		b, _ := json.Marshal(p)
		return b[:len(b)/2], nil
	},
	// No msg_id.
	func(p Payload, _ []vward.Reading) ([]byte, []vward.Reading) {
		p.MsgID = ""
		b, _ := json.Marshal(p)
		return b, nil
	},
	// A local-format timestamp.
	func(p Payload, _ []vward.Reading) ([]byte, []vward.Reading) {
		if t, err := time.Parse(time.RFC3339Nano, p.TS); err == nil {
			p.TS = t.Format("02/01/2006 15:04")
		}
		p.Readings = slices.Clone(p.Readings)
		for i := range p.Readings {
			p.Readings[i].TS = ""
		}
		b, _ := json.Marshal(p)
		return b, nil
	},
	// The first reading's value as text: that reading is refused.
	func(p Payload, acc []vward.Reading) ([]byte, []vward.Reading) {
		p.Readings = slices.Clone(p.Readings)
		p.Readings[0].Value = fmt.Sprintf("%v units", p.Readings[0].Value)
		b, _ := json.Marshal(p)
		return b, acc[1:]
	},
	// A misspelt reading type added: it is refused, the rest stored.
	func(p Payload, acc []vward.Reading) ([]byte, []vward.Reading) {
		p.Readings = append(slices.Clone(p.Readings), WireReading{Type: "spo_2", Value: 97.0})
		b, _ := json.Marshal(p)
		return b, acc
	},
	// An impossible value (a unit mix-up): that reading is refused.
	func(p Payload, acc []vward.Reading) ([]byte, []vward.Reading) {
		p.Readings = append(slices.Clone(p.Readings), WireReading{Type: vward.Temperature, Value: 98.6})
		b, _ := json.Marshal(p)
		return b, acc
	},
}

// Payload is one device protocol v1 message.
type Payload struct {
	MsgID    string        `json:"msg_id"`
	TS       string        `json:"ts"`
	Readings []WireReading `json:"readings"`
	Battery  *float64      `json:"battery,omitempty"`
}

// WireReading is one reading in a Payload.
type WireReading struct {
	Type  vward.ReadingKind `json:"type"`
	Value any               `json:"value"`
	TS    string            `json:"ts,omitempty"`
}

type orderedStep struct {
	Step
	order int
}

// stepHeap orders steps by time; at the same time a reconnect comes before
// publishes (so a backfill goes out on the new connection) and a disconnect
// after them; ties keep the order they were made in.
type stepHeap []orderedStep

func (h stepHeap) Len() int { return len(h) }
func (h stepHeap) Less(i, j int) bool {
	if h[i].At != h[j].At {
		return h[i].At < h[j].At
	}
	if pi, pj := opRank(h[i].Op), opRank(h[j].Op); pi != pj {
		return pi < pj
	}
	return h[i].order < h[j].order
}
func (h stepHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *stepHeap) Push(x any)   { *h = append(*h, x.(orderedStep)) }
func (h *stepHeap) Pop() any {
	old := *h
	n := len(old)
	x := old[n-1]
	*h = old[:n-1]
	return x.Step
}

func opRank(o Op) int {
	switch o {
	case GoOnline:
		return 0
	case Publish:
		return 1
	}
	return 2
}

// hashString is FNV-1a: a stable, dependency-free way to give each device
// its own random stream from the fleet's seed.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// ValidID reports whether s may name a ward, patient or device in vward's
// registry (and so sit safely in an MQTT topic).
func ValidID(s string) error {
	ok := len(s) >= 1 && len(s) <= 64 && isAlnum(s[0])
	for i := 1; ok && i < len(s); i++ {
		ok = isAlnum(s[i]) || strings.IndexByte("._-", s[i]) >= 0
	}
	if !ok {
		return fmt.Errorf("id %q must be 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit", s)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
