package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vward/vward"
)

// SenML (RFC 8428) JSON is the second format vward accepts, on
// vward/v1/devices/{id}/senml. A pack is resolved as RFC 8428 §4.6 says
// (base name, time, unit and value apply to their record and every later
// one) and then mapped onto the same readings as device protocol v1; see
// docs/device-protocol.md for the mapping a device maker reads.

// senmlRecord is one SenML record as it arrives. Pointers tell an absent
// field from a zero one, which SenML's base-field rules depend on.
type senmlRecord struct {
	BaseName    *string  `json:"bn"`
	BaseTime    *float64 `json:"bt"`
	BaseUnit    *string  `json:"bu"`
	BaseValue   *float64 `json:"bv"`
	BaseSum     *float64 `json:"bs"`
	BaseVersion *int64   `json:"bver"`
	Name        string   `json:"n"`
	Unit        string   `json:"u"`
	Value       *float64 `json:"v"`
	StringValue *string  `json:"vs"`
	BoolValue   *bool    `json:"vb"`
	DataValue   *string  `json:"vd"`
	Sum         *float64 `json:"s"`
	Time        *float64 `json:"t"`
}

// SenML names that are not reading kinds.
const (
	senmlMsgID   = "msg_id"
	senmlBattery = "battery"
)

// senmlVersion is the SenML version vward reads (RFC 8428's, the default).
const senmlVersion = 10

// senmlRelative is RFC 8428's threshold: a resolved time below 2**28
// seconds is relative to "now", which vward refuses (see resolveTime).
const senmlRelative = 1 << 28

// senmlUnits are the SenML units accepted for each numeric kind, first the
// one RFC 8428's registry recommends. Values are never converted: a device
// sends the unit of device protocol v1, as it would there.
var senmlUnits = map[vward.ReadingKind][]string{
	vward.RespiratoryRate: {"1/min", "/min"},
	vward.SpO2:            {"%"},
	vward.SystolicBP:      {"mmHg"},
	vward.DiastolicBP:     {"mmHg"},
	vward.HeartRate:       {"beat/min", "1/min", "/min"},
	vward.Temperature:     {"Cel"},
	vward.Weight:          {"kg"},
	vward.BloodGlucose:    {"mmol/L"},
	vward.PeakFlow:        {"L/min"},
}

// SenMLUnits returns the units accepted for kind in a SenML record, none
// for the boolean, ACVPU and fall kinds, nor for the pain score, a number
// with no unit.
func SenMLUnits(kind vward.ReadingKind) []string { return senmlUnits[kind] }

// DecodeSenML parses one SenML JSON pack from device, received at now, into
// the same Message as Decode. Its msg_id is the string value of a record
// named msg_id or, when there is none, derived from the payload's SHA-256,
// so that a redelivered pack keeps its id.
func DecodeSenML(device vward.DeviceID, payload []byte, now time.Time, lim Limits) (Message, error) {
	if len(payload) > lim.MaxPayload {
		return Message{}, reject(RejectTooLarge, "payload is %d bytes; the limit is %d", len(payload), lim.MaxPayload)
	}
	if !utf8.Valid(payload) {
		return Message{}, reject(RejectEncoding, "payload is not valid UTF-8")
	}
	var recs []senmlRecord
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&recs); err != nil {
		return Message{}, reject(RejectJSON, "%s", describeSenMLJSONError(err))
	}
	if dec.More() {
		return Message{}, reject(RejectJSON, "unexpected data after the SenML pack")
	}
	if path, ok := duplicateKey(payload); ok {
		return Message{}, reject(RejectJSON, "key %s appears more than once", path)
	}
	if len(recs) == 0 {
		return Message{}, reject(RejectEnvelope, "the SenML pack has no record")
	}
	if len(recs) > lim.MaxReadings {
		return Message{}, reject(RejectEnvelope, "the SenML pack has %d records; the limit is %d", len(recs), lim.MaxReadings)
	}
	// Fields whose name ends in "_" must be understood (RFC 8428 §4.4);
	// vward understands none. The quick test spares the second parse for
	// the usual pack.
	if bytes.Contains(payload, []byte(`_"`)) {
		if err := checkMustUnderstand(payload); err != nil {
			return Message{}, err
		}
	}

	m := Message{Device: device}
	var (
		baseName, baseUnit  string
		baseTime, baseValue float64
		allTime             = true // every problem is about time
	)
	problem := func(i int, kind, format string, args ...any) {
		m.Problems = append(m.Problems, ReadingProblem{Index: i, Kind: kind, Reason: fmt.Sprintf(format, args...)})
	}
	for i, r := range recs {
		if r.BaseVersion != nil && *r.BaseVersion > senmlVersion {
			return Message{}, reject(RejectEnvelope, "record %d: SenML version %d is newer than %d", i, *r.BaseVersion, senmlVersion)
		}
		if r.BaseName != nil {
			baseName = *r.BaseName
		}
		if r.BaseTime != nil {
			baseTime = *r.BaseTime
		}
		if r.BaseUnit != nil {
			baseUnit = *r.BaseUnit
		}
		if r.BaseValue != nil {
			baseValue = *r.BaseValue
		}
		name := baseName + r.Name
		if err := checkSenMLName(name); err != nil {
			problem(i, "", "%v", err)
			allTime = false
			continue
		}
		leaf := name[strings.LastIndexAny(name, ":/")+1:]
		switch leaf {
		case senmlMsgID:
			if m.MsgID != "" {
				return Message{}, reject(RejectEnvelope, "record %d: the pack has more than one msg_id record", i)
			}
			id, err := senmlMsgIDValue(r)
			if err != nil {
				return Message{}, reject(RejectEnvelope, "record %d: %v", i, err)
			}
			m.MsgID = id
			continue
		case senmlBattery:
			b, err := senmlBatteryValue(r, baseUnit, baseValue)
			if err != nil {
				problem(i, leaf, "%v", err)
				allTime = false
				continue
			}
			m.Battery = &b
			continue
		}
		kind := vward.ReadingKind(leaf)
		if !kind.Known() {
			problem(i, leaf, "unknown reading name %q", clipString(name))
			allTime = false
			continue
		}
		at, err := resolveTime(baseTime, r.Time, now, lim)
		if err != nil {
			problem(i, leaf, "%v", err)
			continue
		}
		v, err := senmlValue(kind, r, baseUnit, baseValue)
		if err != nil {
			problem(i, leaf, "%v", err)
			allTime = false
			continue
		}
		m.Readings = append(m.Readings, vward.Reading{Device: device, Kind: kind, Value: v, At: at})
	}
	if m.MsgID == "" {
		sum := sha256.Sum256(payload)
		m.MsgID = "senml-" + hex.EncodeToString(sum[:16])
	}
	for i := range m.Readings {
		m.Readings[i].MsgID = m.MsgID
	}
	if len(m.Readings) == 0 {
		if len(m.Problems) == 0 {
			return m, reject(RejectReadings, "the SenML pack has no reading")
		}
		code := RejectReadings
		if allTime {
			code = RejectTime
		}
		return m, reject(code, "no valid reading: %s", ProblemsText(m.Problems))
	}
	m.At = m.Readings[0].At
	return m, nil
}

// resolveTime turns base time plus record time (seconds since the Unix
// epoch) into an instant, to the microsecond so that a redelivered pack
// resolves to exactly the same time and overwrites its first copy.
//
// RFC 8428 reads a resolved time below 2**28 (including none at all) as
// relative to the receiver's now. vward refuses it: a redelivery, even a
// second later, would be stored as a second reading at another time.
func resolveTime(base float64, rec *float64, now time.Time, lim Limits) (time.Time, error) {
	secs := base
	if rec != nil {
		secs += *rec
	}
	if !(secs >= senmlRelative) {
		return time.Time{}, fmt.Errorf("time %g is relative to now or missing; send an absolute time (bt or t, seconds since 1970)", secs)
	}
	// Beyond any clock skew; clamped so the conversion cannot overflow.
	secs = min(secs, 1e11)
	whole := math.Floor(secs)
	micros := math.Round((secs - whole) * 1e6)
	t := time.Unix(int64(whole), int64(micros)*int64(time.Microsecond)).UTC()
	return checkInstant(t, "time "+t.Format(time.RFC3339Nano), now, lim)
}

// senmlValue reads the value of a reading-kind record.
func senmlValue(kind vward.ReadingKind, r senmlRecord, baseUnit string, baseValue float64) (float64, error) {
	switch kind {
	case vward.SupplementalOxygen:
		if r.BoolValue == nil {
			return 0, fmt.Errorf("value must be a boolean (vb)")
		}
		if r.Unit != "" {
			return 0, fmt.Errorf("unit %q: %s takes no unit", clipString(r.Unit), kind)
		}
		if *r.BoolValue {
			return 1, nil
		}
		return 0, nil
	case vward.FallEvent:
		if r.BoolValue == nil {
			return 0, fmt.Errorf("value must be a boolean (vb): true, sent when a fall is detected")
		}
		if r.Unit != "" {
			return 0, fmt.Errorf("unit %q: %s takes no unit", clipString(r.Unit), kind)
		}
		if !*r.BoolValue {
			return 0, errors.New("value false: a fall_event reports a fall, so it is always true; send nothing when there was none")
		}
		return 1, nil
	case vward.Consciousness:
		if r.StringValue == nil {
			return 0, fmt.Errorf("value must be an ACVPU letter (vs)")
		}
		if r.Unit != "" {
			return 0, fmt.Errorf("unit %q: %s takes no unit", clipString(r.Unit), kind)
		}
		l, err := vward.ParseLevel(*r.StringValue)
		if err != nil {
			return 0, err
		}
		return float64(l), nil
	}
	if r.Value == nil {
		if r.StringValue != nil || r.BoolValue != nil || r.DataValue != nil || r.Sum != nil {
			return 0, fmt.Errorf("value must be a number (v)")
		}
		return 0, errors.New("value is missing")
	}
	unit := r.Unit
	if unit == "" {
		unit = baseUnit
	}
	if kind == vward.PainScore {
		// A score from 0 to 10 has no unit: a pack's base unit applies to
		// it as to any record, so a pack with one gives the others theirs.
		if unit != "" {
			return 0, fmt.Errorf("unit %q: %s is a 0–10 score and takes no unit", clipString(unit), kind)
		}
		return checkNumber(kind, *r.Value+baseValue)
	}
	if err := checkSenMLUnit(kind, unit); err != nil {
		return 0, err
	}
	return checkNumber(kind, *r.Value+baseValue)
}

func checkSenMLUnit(kind vward.ReadingKind, unit string) error {
	accepted := senmlUnits[kind]
	for _, u := range accepted {
		if unit == u {
			return nil
		}
	}
	if unit == "" {
		return fmt.Errorf("unit is missing; %s takes %s", kind, strings.Join(accepted, " or "))
	}
	return fmt.Errorf("unit %q is not accepted for %s; send %s", clipString(unit), kind, strings.Join(accepted, " or "))
}

// senmlBatteryValue reads a battery record: %EL (percent of charge left,
// SenML's registered unit) or a ratio "/", both stored as 0–1.
func senmlBatteryValue(r senmlRecord, baseUnit string, baseValue float64) (float64, error) {
	if r.Value == nil {
		return 0, errors.New("value must be a number (v)")
	}
	unit := r.Unit
	if unit == "" {
		unit = baseUnit
	}
	v := *r.Value + baseValue
	switch unit {
	case "%EL":
		v /= 100
	case "/":
	default:
		return 0, fmt.Errorf("unit %q is not accepted for battery; send %%EL (0–100) or / (0–1)", clipString(unit))
	}
	if !(v >= 0 && v <= 1) {
		return 0, fmt.Errorf("battery %g is outside 0–1", v)
	}
	return v, nil
}

func senmlMsgIDValue(r senmlRecord) (string, error) {
	if r.StringValue == nil {
		return "", errors.New("msg_id must be a string value (vs)")
	}
	id := *r.StringValue
	if !validMsgID(id) {
		return "", errors.New("msg_id must be 1–128 printable ASCII characters")
	}
	return id, nil
}

// checkSenMLName applies RFC 8428 §4.5.1 to a resolved name.
func checkSenMLName(name string) error {
	if name == "" {
		return errors.New("name is missing (n, or bn and n)")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("-:./_", rune(c))) {
			return fmt.Errorf("name %q is not a valid SenML name", clipString(name))
		}
	}
	return nil
}

// checkMustUnderstand refuses a pack with a field whose name ends in "_".
func checkMustUnderstand(payload []byte) error {
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal(payload, &recs); err != nil {
		return reject(RejectJSON, "%s", describeSenMLJSONError(err))
	}
	for i, r := range recs {
		for k := range r {
			if strings.HasSuffix(k, "_") {
				return reject(RejectEnvelope, "record %d: field %q must be understood, and vward does not know it", i, clipString(k))
			}
		}
	}
	return nil
}

func describeSenMLJSONError(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field == "" {
		return fmt.Sprintf("a SenML pack is a JSON array of record objects, got JSON %s", typ.Value)
	}
	return describeJSONError(err)
}
