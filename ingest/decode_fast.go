package ingest

import (
	"strconv"

	"github.com/vward/vward"
)

// parseFast decodes the common shape of a device protocol v1 message into w
// without encoding/json's reflection: an object with exactly the known
// keys (msg_id, ts, readings, battery; each reading type, value and ts),
// strings without escapes, and values that already pass checkEnvelope. It
// reports false for anything else — an unknown or differently cased key,
// an escape, null, a duplicate key, trailing data, a value checkEnvelope
// would refuse — and Decode then takes the general path, which decides and
// words every rejection. So the fast path never accepts what the general
// path would refuse, and never words an error.
//
// Values are left raw (aliases of payload, not retained past Decode), as
// json.RawMessage would hold them.
//
// The readings are appended to room and returned, not put in w: w's
// strings reach the heap, and the compiler would send room, which Decode
// keeps on its stack, with them.
func parseFast(payload []byte, w *wireMessage, room []wireReading, lim Limits) ([]wireReading, bool) {
	p := fastParser{b: payload}
	if !p.consume('{') {
		return nil, false
	}
	readings := room[:0]
	var seen [4]bool
	for first := true; ; first = false {
		p.ws()
		if p.peek() == '}' && first {
			p.i++
			break
		}
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return nil, false
		}
		p.ws()
		switch string(key) {
		case "msg_id":
			if seen[0] {
				return nil, false
			}
			seen[0] = true
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			w.MsgID = string(s)
		case "ts":
			if seen[1] {
				return nil, false
			}
			seen[1] = true
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			w.TS = string(s)
		case "readings":
			if seen[2] {
				return nil, false
			}
			if readings, ok = p.readings(readings, lim); !ok {
				return nil, false
			}
			seen[2] = true
		case "battery":
			if seen[3] {
				return nil, false
			}
			seen[3] = true
			num, ok := p.number()
			if !ok {
				return nil, false
			}
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil || v < 0 || v > 1 {
				return nil, false
			}
			w.Battery = &v
		default:
			return nil, false
		}
		p.ws()
		if p.consume(',') {
			continue
		}
		if !p.consume('}') {
			return nil, false
		}
		break
	}
	p.ws()
	if p.i != len(p.b) {
		return nil, false
	}
	// The envelope's rules (checkEnvelope; battery is checked above):
	// anything they refuse goes to the general path for its wording.
	if !seen[0] || !seen[1] || !seen[2] || !validMsgID(w.MsgID) || w.TS == "" || len(readings) == 0 {
		return nil, false
	}
	return readings, true
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *fastParser) consume(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters.
func (p *fastParser) str() ([]byte, bool) {
	p.ws()
	if p.peek() != '"' {
		return nil, false
	}
	p.i++
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// number reads a JSON number literal, checking its grammar.
func (p *fastParser) number() ([]byte, bool) {
	p.ws()
	start := p.i
	b := p.b
	if p.i < len(b) && b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(b) && b[p.i] == '0':
		p.i++
	case p.i < len(b) && b[p.i] >= '1' && b[p.i] <= '9':
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	default:
		return nil, false
	}
	if p.i < len(b) && b[p.i] == '.' {
		p.i++
		if p.i >= len(b) || b[p.i] < '0' || b[p.i] > '9' {
			return nil, false
		}
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		p.i++
		if p.i < len(b) && (b[p.i] == '+' || b[p.i] == '-') {
			p.i++
		}
		if p.i >= len(b) || b[p.i] < '0' || b[p.i] > '9' {
			return nil, false
		}
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
		}
	}
	return b[start:p.i], true
}

// value reads a reading's value: a number, true, false, or a string
// without escapes, returned raw (a string with its quotes).
func (p *fastParser) value() ([]byte, bool) {
	p.ws()
	start := p.i
	switch c := p.peek(); {
	case c == '"':
		if _, ok := p.str(); !ok {
			return nil, false
		}
		return p.b[start:p.i], true
	case c == 't':
		if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "true" {
			p.i += 4
			return p.b[start:p.i], true
		}
		return nil, false
	case c == 'f':
		if len(p.b)-p.i >= 5 && string(p.b[p.i:p.i+5]) == "false" {
			p.i += 5
			return p.b[start:p.i], true
		}
		return nil, false
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, false
}

// readings appends the readings array's entries to rs.
func (p *fastParser) readings(rs []wireReading, lim Limits) ([]wireReading, bool) {
	if !p.consume('[') {
		return nil, false
	}
	p.ws()
	if p.peek() == ']' {
		p.i++
		return rs, true
	}
	for {
		if len(rs) >= lim.MaxReadings || !p.consume('{') {
			return nil, false
		}
		var r wireReading
		var seen [3]bool
		p.ws()
		if p.peek() == '}' {
			p.i++
		} else {
			for {
				key, ok := p.str()
				if !ok || !p.consume(':') {
					return nil, false
				}
				switch string(key) {
				case "type":
					s, ok := p.str()
					if seen[0] || !ok {
						return nil, false
					}
					seen[0] = true
					r.Type = internKind(s)
				case "value":
					v, ok := p.value()
					if seen[1] || !ok {
						return nil, false
					}
					seen[1] = true
					r.Value = v
				case "ts":
					s, ok := p.str()
					if seen[2] || !ok {
						return nil, false
					}
					seen[2] = true
					r.TS = string(s)
				default:
					return nil, false
				}
				if p.consume(',') {
					continue
				}
				if !p.consume('}') {
					return nil, false
				}
				break
			}
		}
		rs = append(rs, r)
		if p.consume(',') {
			continue
		}
		return rs, p.consume(']')
	}
}

// internKind returns the known kind's constant for s, so that decoding a
// reading type allocates nothing.
func internKind(s []byte) string {
	for _, k := range vward.ReadingKinds {
		if string(k) == string(s) {
			return string(k)
		}
	}
	return string(s)
}

// fastNumber parses a raw JSON number as encoding/json would into a
// float64; false means "let json.Unmarshal decide" (not a number literal,
// or out of range).
func fastNumber(raw []byte) (float64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		return 0, false
	}
	p := fastParser{b: raw}
	if n, ok := p.number(); !ok || len(n) != len(raw) {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, false
	}
	return v, true
}
