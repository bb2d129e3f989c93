package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vward/vward"
)

// An entry is one batch of readings as the pipeline wrote it: a version
// byte, the number of device messages and of readings, then each reading.
// A reading that shares its point (device, patient, ward, msg_id, time)
// with the one before it, as a message's readings nearly always do, is
// written as its kind and value alone.
const entryVersion = 1

// Flags of a reading in an entry.
const (
	flagNewPoint = 1 << iota // device, patient, ward, msg_id and time follow
)

// maxEntryReadings bounds what decodeEntry will allocate for a count read
// off the disk, whatever the count says.
const maxEntryReadings = 1 << 20

// appendEntry encodes rs onto b and returns it with the number of device
// messages (points) in rs.
func appendEntry(b []byte, rs []vward.Reading) ([]byte, int) {
	messages := 0
	for i := range rs {
		if i == 0 || !samePoint(rs[i-1], rs[i]) {
			messages++
		}
	}
	b = append(b, entryVersion)
	b = binary.AppendUvarint(b, uint64(messages))
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for i, r := range rs {
		if i > 0 && samePoint(rs[i-1], r) {
			b = append(b, 0)
		} else {
			b = append(b, flagNewPoint)
			b = appendString(b, string(r.Device))
			b = appendString(b, string(r.Patient))
			b = appendString(b, string(r.Ward))
			b = appendString(b, r.MsgID)
			b = binary.AppendVarint(b, r.At.UnixNano())
		}
		b = appendString(b, string(r.Kind))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Value))
	}
	return b, messages
}

func samePoint(a, b vward.Reading) bool {
	return a.Device == b.Device && a.Patient == b.Patient && a.Ward == b.Ward && a.MsgID == b.MsgID && a.At.Equal(b.At)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errCorrupt is what decodeEntry refuses an entry with; the journal's
// engine checksums its records, so it means a bug or a foreign file.
var errCorrupt = errors.New("corrupt journal entry")

// decodeEntry appends an entry's readings to rs and returns them with the
// entry's number of device messages.
func decodeEntry(rs []vward.Reading, b []byte) ([]vward.Reading, int, error) {
	// The readings' strings are cut from one copy of the entry: one
	// allocation an entry rather than five a message.
	d := decoder{b: b, text: string(b), size: len(b)}
	if v := d.byte(); v != entryVersion {
		if d.err != nil {
			return rs, 0, d.err
		}
		return rs, 0, fmt.Errorf("%w: version %d, want %d", errCorrupt, v, entryVersion)
	}
	messages := d.uvarint()
	n := d.uvarint()
	if d.err == nil && (n > maxEntryReadings || n > uint64(len(d.b))) {
		return rs, 0, fmt.Errorf("%w: %d readings in %d bytes", errCorrupt, n, len(b))
	}
	var point vward.Reading
	for i := uint64(0); i < n && d.err == nil; i++ {
		flags := d.byte()
		switch {
		case flags&flagNewPoint != 0:
			point = vward.Reading{
				Device:  vward.DeviceID(d.string()),
				Patient: vward.PatientID(d.string()),
				Ward:    vward.WardID(d.string()),
				MsgID:   d.string(),
				At:      time.Unix(0, d.varint()).UTC(),
			}
		case i == 0 && d.err == nil:
			return rs, 0, fmt.Errorf("%w: the first reading has no point", errCorrupt)
		}
		r := point
		r.Kind = vward.ReadingKind(d.string())
		r.Value = math.Float64frombits(d.uint64())
		rs = append(rs, r)
	}
	if d.err != nil {
		return rs, 0, d.err
	}
	if len(d.b) != 0 {
		return rs, 0, fmt.Errorf("%w: %d bytes after the last reading", errCorrupt, len(d.b))
	}
	return rs, int(messages), nil
}

// decoder reads an entry, remembering the first error.
type decoder struct {
	b    []byte // what is left to read
	text string // the whole entry, to cut strings from
	size int    // its length
	err  error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s cut short", errCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("flags")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("count")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("time")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.fail("value")
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string")
		return ""
	}
	off := d.size - len(d.b)
	s := d.text[off : off+int(n)]
	d.b = d.b[n:]
	return s
}
