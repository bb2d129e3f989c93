package bench

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/simulator"
)

// kinds are the readings a bench message carries, the first n of them.
var kinds = []vward.ReadingKind{
	vward.HeartRate, vward.SpO2, vward.RespiratoryRate, vward.Temperature,
	vward.SystolicBP, vward.SupplementalOxygen, vward.Consciousness,
}

// device is one numbered bench device and the patient wearing it.
type device struct {
	id      vward.DeviceID
	patient vward.PatientID
	secret  string
}

// stream is one device's messages: every `every` from offset until end,
// stamped with the real time each is due, msg_ids numbered from 1. A stream
// is driven by the simulator's Fleet, which calls Next after it has written
// the previous step.
type stream struct {
	dev      device
	clock    simulator.Clock
	offset   time.Duration
	every    time.Duration
	end      time.Duration
	readings int

	seq       int64        // messages handed out
	lastStamp atomic.Int64 // unix nanos of the latest message written, 0 before
	pending   int64        // stamp of the message handed out and not yet confirmed written
	published atomic.Int64 // messages written (Next called again after them, or finished)
	probes    *storeSampler
}

func (s *stream) Next() (simulator.Step, bool) {
	// The fleet calls Next once it has taken the previous step.
	if s.seq > 0 {
		s.published.Store(s.seq)
		s.lastStamp.Store(s.pending)
	}
	at := s.offset + time.Duration(s.seq)*s.every
	if at >= s.end {
		return simulator.Step{}, false
	}
	s.seq++
	ts := s.clock.Stamp(at)
	s.pending = ts.UnixNano()
	if s.probes != nil {
		s.probes.offer(s.dev.id, ts)
	}
	msgID := msgID(s.dev.id, s.seq)
	return simulator.Step{
		At: at, Op: simulator.Publish, Device: s.dev.id, Patient: s.dev.patient, MsgID: msgID,
		Payload: payload(msgID, ts, s.readings, s.seq),
	}, true
}

// due is when message seq (from 1) of the stream is due, its readings'
// measurement time.
func (s *stream) due(seq int64) time.Time {
	return s.clock.Stamp(s.offset + time.Duration(seq-1)*s.every)
}

// msgID is fmt.Sprintf("%s-%07d", dev, seq), byte for byte, without fmt:
// it is called for every message the bench publishes, on the machine it
// measures.
func msgID(dev vward.DeviceID, seq int64) string {
	var num [20]byte
	digits := strconv.AppendInt(num[:0], seq, 10)
	var b strings.Builder
	b.Grow(len(dev) + 1 + max(len(digits), 7))
	b.WriteString(string(dev))
	b.WriteByte('-')
	// %07d pads to a width of 7, the sign included, with zeros after the
	// sign.
	pad := 7 - len(digits)
	if digits[0] == '-' {
		b.WriteByte('-')
		digits = digits[1:]
	}
	for range pad {
		b.WriteByte('0')
	}
	b.Write(digits)
	return b.String()
}

// payload is a device protocol v1 message with n readings of a stable,
// slowly varying patient (NEWS2 low): the bench measures the pipeline, not
// the physiology. The values but the temperature are whole numbers and are
// written as integers: the same text as strconv.AppendFloat(v, 'f', -1, 64),
// at a fraction of its cost (TestPayloadUnchanged holds the two together).
func payload(msgID string, ts time.Time, n int, seq int64) []byte {
	b := make([]byte, 0, 96+48*n)
	b = append(b, `{"msg_id":"`...)
	b = append(b, msgID...)
	b = append(b, `","ts":"`...)
	b = ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","readings":[`...)
	wobble := seq % 5
	for i := 0; i < n; i++ {
		k := kinds[i%len(kinds)]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"`...)
		b = append(b, k...)
		b = append(b, `","value":`...)
		switch k {
		case vward.HeartRate:
			b = strconv.AppendInt(b, 70+wobble, 10)
		case vward.SpO2:
			b = strconv.AppendInt(b, 96+seq%3, 10)
		case vward.RespiratoryRate:
			b = strconv.AppendInt(b, 14+seq%4, 10)
		case vward.Temperature:
			b = strconv.AppendFloat(b, 36.6+float64(wobble)/10, 'f', 1, 64)
		case vward.SystolicBP:
			b = strconv.AppendInt(b, 120+wobble, 10)
		case vward.SupplementalOxygen:
			b = append(b, "false"...)
		case vward.Consciousness:
			b = append(b, `"A"`...)
		}
		b = append(b, '}')
	}
	b = append(b, `],"battery":0.9}`...)
	return b
}
