package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vward/vward"
)

// Limits bound what a device message may be. The zero value is not useful;
// start from DefaultLimits.
type Limits struct {
	MaxPayload  int           // bytes; larger messages are rejected unread
	MaxReadings int           // readings in one message
	ClockSkew   time.Duration // how far in the future a measurement time may be
	MaxAge      time.Duration // how old a measurement may be (devices backfill after an outage)
}

// DefaultLimits suit home devices: a gateway that was offline for a week may
// backfill everything it buffered, and a device clock may run a little fast.
func DefaultLimits() Limits {
	return Limits{
		MaxPayload:  64 << 10,
		MaxReadings: 500,
		ClockSkew:   2 * time.Minute,
		MaxAge:      7 * 24 * time.Hour,
	}
}

// Message is a decoded device protocol v1 message. Readings holds the valid
// readings (not yet attributed to a patient); Problems says which readings
// were refused and why. A message with problems but some valid readings is
// still stored — a malformed temperature must not lose a valid SpO2 — and is
// also kept as a rejection so the device maker can see what went wrong.
type Message struct {
	Device   vward.DeviceID
	MsgID    string
	At       time.Time
	Battery  *float64
	Readings []vward.Reading
	Problems []ReadingProblem
}

// ReadingProblem names one refused reading by its index in the message.
type ReadingProblem struct {
	Index  int
	Kind   string
	Reason string
}

func (p ReadingProblem) String() string {
	if p.Kind == "" {
		return fmt.Sprintf("readings[%d]: %s", p.Index, p.Reason)
	}
	return fmt.Sprintf("readings[%d] (%s): %s", p.Index, p.Kind, p.Reason)
}

// RejectError says why a whole message was refused, or, for a message whose
// every reading was refused, lists them. Code is a short stable word for
// metrics and operators; Detail is for people.
type RejectError struct {
	Code   string
	Detail string
}

func (e *RejectError) Error() string { return e.Code + ": " + e.Detail }

// Rejection codes. They label metrics, so there are few and they are stable.
const (
	RejectTooLarge   = "too_large"
	RejectEncoding   = "bad_encoding"
	RejectJSON       = "bad_json"
	RejectEnvelope   = "bad_envelope"
	RejectTime       = "bad_time"
	RejectReadings   = "bad_readings"
	RejectDevice     = "unknown_device"
	RejectUnassigned = "unassigned_device"
)

func reject(code, format string, args ...any) *RejectError {
	return &RejectError{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// wireMessage is device protocol v1 as it arrives. Unknown top-level fields
// are ignored so that a later minor version can add some without breaking
// devices in the field; unknown reading types are refused, since a reading
// vward cannot interpret must not pass silently. checkEnvelope says what
// its fields must hold.
type wireMessage struct {
	MsgID    string        `json:"msg_id"`
	TS       string        `json:"ts"`
	Readings []wireReading `json:"readings"`
	Battery  *float64      `json:"battery"`
}

type wireReading struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
	TS    string          `json:"ts"`
}

// Decode parses and validates one device protocol v1 payload from device,
// received at now. It returns a *RejectError when the message as a whole is
// refused, including when none of its readings is valid.
func Decode(device vward.DeviceID, payload []byte, now time.Time, lim Limits) (Message, error) {
	if len(payload) > lim.MaxPayload {
		return Message{}, reject(RejectTooLarge, "payload is %d bytes; the limit is %d", len(payload), lim.MaxPayload)
	}
	if !utf8.Valid(payload) {
		return Message{}, reject(RejectEncoding, "payload is not valid UTF-8")
	}
	// The fast path decodes a message's readings into room, on Decode's
	// stack: a message nearly always has a few, and this is once per
	// message.
	var room [8]wireReading
	var w wireMessage
	readings, ok := parseFast(payload, &w, room[:0], lim)
	if !ok {
		var err error
		if w, err = decodeGeneral(payload, lim); err != nil {
			return Message{}, err
		}
		readings = w.Readings
	}
	at, err := checkTime(w.TS, now, lim)
	if err != nil {
		return Message{}, reject(RejectTime, "ts: %v", err)
	}
	m := Message{Device: device, MsgID: w.MsgID, At: at, Battery: w.Battery}
	m.Readings = make([]vward.Reading, 0, len(readings))
	for i, wr := range readings {
		r, err := decodeReading(wr, at, now, lim)
		if err != nil {
			m.Problems = append(m.Problems, ReadingProblem{Index: i, Kind: wr.Type, Reason: err.Error()})
			continue
		}
		r.Device, r.MsgID = device, w.MsgID
		m.Readings = append(m.Readings, r)
	}
	if len(m.Readings) == 0 {
		return m, reject(RejectReadings, "no valid reading: %s", ProblemsText(m.Problems))
	}
	return m, nil
}

// decodeGeneral is the general path: anything unusual, and every wording of
// a refused envelope.
func decodeGeneral(payload []byte, lim Limits) (wireMessage, error) {
	var w wireMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&w); err != nil {
		return w, reject(RejectJSON, "%s", describeJSONError(err))
	}
	if dec.More() {
		return w, reject(RejectJSON, "unexpected data after the JSON object")
	}
	if path, ok := duplicateKey(payload); ok {
		// encoding/json would keep the last silently: which was meant?
		return w, reject(RejectJSON, "key %s appears more than once", path)
	}
	if len(w.Readings) > lim.MaxReadings {
		return w, reject(RejectEnvelope, "readings has %d entries; the limit is %d", len(w.Readings), lim.MaxReadings)
	}
	if err := checkEnvelope(&w); err != nil {
		return w, reject(RejectEnvelope, "%v", err)
	}
	return w, nil
}

// checkEnvelope refuses a message whose msg_id is missing or not 1–128
// printable ASCII characters, whose ts or readings are missing, or whose
// battery is outside 0–1, naming every such field. parseFast holds to the
// same rules without wording them.
func checkEnvelope(w *wireMessage) error {
	var parts []string
	switch {
	case w.MsgID == "":
		parts = append(parts, "msg_id is required")
	case utf8.RuneCountInString(w.MsgID) > maxMsgID:
		parts = append(parts, fmt.Sprintf("msg_id is longer than %d characters", maxMsgID))
	case !printableASCII(w.MsgID):
		parts = append(parts, "msg_id must be printable ASCII")
	}
	if w.TS == "" {
		parts = append(parts, "ts is required")
	}
	switch {
	case w.Readings == nil:
		parts = append(parts, "readings is required")
	case len(w.Readings) == 0:
		parts = append(parts, "readings must not be empty")
	}
	if b := w.Battery; b != nil && !(*b >= 0 && *b <= 1) {
		parts = append(parts, fmt.Sprintf("battery %v is outside 0–1", *b))
	}
	if len(parts) > 0 {
		return errors.New(strings.Join(parts, "; "))
	}
	return nil
}

// maxMsgID bounds a msg_id, the dedup key, in characters.
const maxMsgID = 128

// validMsgID reports whether id may be a msg_id: 1–128 printable ASCII
// characters.
func validMsgID(id string) bool {
	return id != "" && len(id) <= maxMsgID && printableASCII(id)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// duplicateKey finds a key that appears twice in one object of a JSON
// document that has decoded already, comparing as encoding/json matches
// keys to fields (without regard to case), and returns its path
// (readings[1].value). It scans the bytes without allocating, as it runs
// for every SenML pack; anything it does not expect ends the scan with
// no finding, never a panic.
func duplicateKey(b []byte) (string, bool) {
	type frame struct {
		obj   bool
		keys  int    // where this object's keys begin in keys
		index int    // an array's current element
		key   []byte // an object's current key
	}
	var keyBuf [32][]byte
	var frameBuf [8]frame
	keys, stack := keyBuf[:0], frameBuf[:0]
	i := 0
	ws := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	// str reads a string at b[i] and returns its contents, unescaped if
	// it has escapes (rare, so the allocation is).
	str := func() ([]byte, bool) {
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		start, escaped := i, false
		for i++; i < len(b) && b[i] != '"'; i++ {
			if b[i] == '\\' {
				escaped = true
				i++
			}
		}
		if i >= len(b) {
			return nil, false
		}
		i++
		if !escaped {
			return b[start+1 : i-1], true
		}
		var u string
		if json.Unmarshal(b[start:i], &u) != nil {
			return nil, false
		}
		return []byte(u), true
	}
	path := func() string {
		var sb strings.Builder
		for _, f := range stack {
			if f.obj {
				if sb.Len() > 0 {
					sb.WriteByte('.')
				}
				sb.Write(f.key)
			} else {
				fmt.Fprintf(&sb, "[%d]", f.index)
			}
		}
		return sb.String()
	}
	const (
		wantValue = iota
		wantKey
		afterValue
	)
	state := wantValue
	for {
		ws()
		switch state {
		case wantValue:
			if i >= len(b) {
				return "", false
			}
			switch b[i] {
			case '{', '[':
				stack = append(stack, frame{obj: b[i] == '{', keys: len(keys)})
				i++
				ws()
				switch {
				case i < len(b) && (b[i] == '}' || b[i] == ']'):
					state = afterValue // empty: closed below
				case stack[len(stack)-1].obj:
					state = wantKey
				}
				continue
			case '"':
				if _, ok := str(); !ok {
					return "", false
				}
			default:
				for i < len(b) && !strings.ContainsRune(",]} \t\n\r", rune(b[i])) {
					i++
				}
			}
			state = afterValue
		case wantKey:
			k, ok := str()
			if !ok {
				return "", false
			}
			f := &stack[len(stack)-1]
			f.key = k
			for _, seen := range keys[f.keys:] {
				if bytes.EqualFold(seen, k) {
					return path(), true
				}
			}
			keys = append(keys, k)
			ws()
			if i >= len(b) || b[i] != ':' {
				return "", false
			}
			i++
			state = wantValue
		case afterValue:
			if len(stack) == 0 || i >= len(b) {
				return "", false
			}
			f := &stack[len(stack)-1]
			switch b[i] {
			case ',':
				i++
				if f.obj {
					state = wantKey
				} else {
					f.index++
					state = wantValue
				}
			case '}', ']':
				i++
				keys = keys[:f.keys]
				stack = stack[:len(stack)-1]
			default:
				return "", false
			}
		}
	}
}

// ProblemsText joins reading problems for a rejection reason.
func ProblemsText(ps []ReadingProblem) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

func decodeReading(wr wireReading, msgAt, now time.Time, lim Limits) (vward.Reading, error) {
	kind := vward.ReadingKind(wr.Type)
	if wr.Type == "" {
		return vward.Reading{}, errors.New("type is missing")
	}
	if !kind.Known() {
		return vward.Reading{}, fmt.Errorf("unknown reading type %q", wr.Type)
	}
	if len(wr.Value) == 0 || string(wr.Value) == "null" {
		return vward.Reading{}, errors.New("value is missing")
	}
	at := msgAt
	if wr.TS != "" {
		t, err := checkTime(wr.TS, now, lim)
		if err != nil {
			return vward.Reading{}, fmt.Errorf("ts: %w", err)
		}
		at = t
	}
	v, err := decodeValue(kind, wr.Value)
	if err != nil {
		return vward.Reading{}, err
	}
	return vward.Reading{Kind: kind, Value: v, At: at}, nil
}

func decodeValue(kind vward.ReadingKind, raw json.RawMessage) (float64, error) {
	switch kind {
	case vward.SupplementalOxygen:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return 0, fmt.Errorf("value %s is not true or false", clip(raw))
		}
		if b {
			return 1, nil
		}
		return 0, nil
	case vward.FallEvent:
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return 0, fmt.Errorf("value %s is not true", clip(raw))
		}
		if !b {
			return 0, errors.New("value false: a fall_event reports a fall, so it is always true; send nothing when there was none")
		}
		return 1, nil
	case vward.Consciousness:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("value %s is not an ACVPU letter", clip(raw))
		}
		l, err := vward.ParseLevel(s)
		if err != nil {
			return 0, err
		}
		return float64(l), nil
	}
	// JSON has no NaN or Inf literal, so a float64 that decodes is finite;
	// the check stays for values a future format (SenML) might produce.
	if v, ok := fastNumber(raw); ok {
		return checkNumber(kind, v)
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("value %s is not a number", clip(raw))
	}
	return checkNumber(kind, v)
}

// checkNumber refuses what no patient or working sensor could report.
func checkNumber(kind vward.ReadingKind, v float64) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("value %v is not a finite number", v)
	}
	if r := kind.PossibleRange(); !r.Contains(v) {
		return 0, fmt.Errorf("value %g %s is outside the possible range %g–%g", v, kind.Unit(), r.Min, r.Max)
	}
	return v, nil
}

func checkTime(s string, now time.Time, lim Limits) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", clipString(s))
	}
	return checkInstant(t, s, now, lim)
}

// checkInstant applies the clock-skew and maximum-age limits; shown is how
// the time is named in the reason.
func checkInstant(t time.Time, shown string, now time.Time, lim Limits) (time.Time, error) {
	if t.After(now.Add(lim.ClockSkew)) {
		return time.Time{}, fmt.Errorf("%s is %s in the future (allowed skew %s)", shown, t.Sub(now).Round(time.Second), lim.ClockSkew)
	}
	if t.Before(now.Add(-lim.MaxAge)) {
		return time.Time{}, fmt.Errorf("%s is older than the %s limit", shown, lim.MaxAge)
	}
	return t.UTC(), nil
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %s: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)
	case errors.Is(err, io.EOF):
		return "payload is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "JSON is truncated"
	}
	return err.Error()
}

func clip(raw json.RawMessage) string { return clipString(string(raw)) }

func clipString(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ReadingValue decodes and checks one value of kind as device protocol v1
// carries it (a number, true/false for supplemental_oxygen, an ACVPU letter
// for consciousness), against the same kinds and ranges as a device
// message's readings: what a person enters is refused exactly where a
// device's reading would be.
func ReadingValue(kind string, raw json.RawMessage) (vward.ReadingKind, float64, error) {
	k := vward.ReadingKind(kind)
	if kind == "" {
		return k, 0, errors.New("type is missing")
	}
	if !k.Known() {
		return k, 0, fmt.Errorf("unknown reading type %q", kind)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return k, 0, errors.New("value is missing")
	}
	v, err := decodeValue(k, raw)
	return k, v, err
}

// CheckMeasuredAt applies a device message's clock-skew and maximum-age
// limits to a measurement time given otherwise (by a person), naming it
// as shown in the reason.
func CheckMeasuredAt(t time.Time, shown string, now time.Time, lim Limits) (time.Time, error) {
	return checkInstant(t, shown, now, lim)
}
