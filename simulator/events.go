package simulator

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/ingest"
)

// A patient's events that devices send as messages of their own, beside
// the scheduled measurements: a fall, as a fall_event reading from each
// device that measures it, and a questionnaire, from the patient's hub on
// its questionnaire topic (docs/device-protocol.md#questionnaires).

// questionnaireWire is a questionnaire message as device protocol v1
// writes it.
type questionnaireWire struct {
	MsgID         string `json:"msg_id"`
	TS            string `json:"ts"`
	Questionnaire struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	} `json:"questionnaire"`
	AnsweredBy string       `json:"answered_by"`
	Answers    []answerWire `json:"answers"`
}

type answerWire struct {
	Question string `json:"question"`
	Value    any    `json:"value"`
}

// questionnairePayload is the message of a questionnaire event answered
// at stamp, its answers in question order.
func questionnairePayload(e Event, msgID string, stamp time.Time) []byte {
	w := questionnaireWire{MsgID: msgID, TS: stamp.Format(time.RFC3339Nano), AnsweredBy: e.AnsweredBy}
	w.Questionnaire.ID, w.Questionnaire.Version = "soft_signs", 1
	if w.AnsweredBy == "" {
		w.AnsweredBy = "carer"
	}
	for _, q := range slices.Sorted(maps.Keys(e.Answers)) {
		w.Answers = append(w.Answers, answerWire{Question: q, Value: e.Answers[q]})
	}
	b, _ := json.Marshal(w) // plain types only: cannot fail
	return b
}

// questionnaireDevices returns the patient's events with each
// questionnaire's device filled in (the first hub when it names none),
// refusing through bad one without a hub to send it or whose answers
// vward would refuse.
func questionnaireDevices(events []Event, devices []DeviceSpec, where string, bad func(string, ...any)) []Event {
	out := slices.Clone(events)
	for i := range out {
		e := &out[i]
		if e.Kind != Questionnaire {
			continue
		}
		what := fmt.Sprintf("%s: questionnaire at %s", where, e.At.D())
		if e.Device == "" {
			for _, d := range devices {
				if d.Kind == Hub {
					e.Device = d.ID
					break
				}
			}
			if e.Device == "" {
				bad("%s: the patient has no hub to answer it on; add one, or name the device", what)
				continue
			}
		} else if !slices.ContainsFunc(devices, func(d DeviceSpec) bool { return d.ID == e.Device && d.Kind == Hub }) {
			bad("%s: device %q is not one of the patient's hubs", what, e.Device)
			continue
		}
		if len(e.Answers) == 0 {
			bad("%s: no answers", what)
			continue
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		m, err := ingest.DecodeQuestionnaire(e.Device, questionnairePayload(*e, "check", now), now, ingest.DefaultLimits())
		switch {
		case err != nil:
			bad("%s: vward would refuse it: %v", what, err)
		case len(m.Problems) > 0:
			bad("%s: vward would refuse answers: %s", what, ingest.AnswerProblemsText(m.Problems))
		}
	}
	return out
}

// pushEvents schedules the stream's event messages: a fall_event reading
// at each fall if the device measures it, and each questionnaire the
// device answers. They keep their own message sequences, so the scheduled
// measurements' msg_ids are the same with or without them.
func (s *Stream) pushEvents() {
	falls := slices.Contains(s.dev.Measures, vward.FallEvent)
	nFall, nQ := 0, 0
	for _, e := range s.patient.Events {
		t := e.At.D()
		if t < 0 || t > s.end {
			continue
		}
		stamp := s.clock.Stamp(t).Add(s.dev.Faults.ClockSkew.D())
		battery := roundBattery(s.batteryAt(t))
		var st Step
		switch {
		case e.Kind == Fall && falls:
			nFall++
			msgID := fmt.Sprintf("%s-fall-%06d", s.dev.ID, nFall)
			p := Payload{MsgID: msgID, TS: stamp.Format(time.RFC3339Nano), Readings: []WireReading{{Type: vward.FallEvent, Value: true}}, Battery: &battery}
			body, _ := json.Marshal(p)
			st = Step{At: t, Op: Publish, Device: s.dev.ID, Patient: s.patient.ID, MsgID: msgID, Payload: body,
				Readings: []vward.Reading{{Device: s.dev.ID, Patient: s.patient.ID, Kind: vward.FallEvent, Value: 1, At: stamp}}}
		case e.Kind == Questionnaire && e.Device == s.dev.ID:
			nQ++
			msgID := fmt.Sprintf("%s-q-%06d", s.dev.ID, nQ)
			st = Step{At: t, Op: Publish, Device: s.dev.ID, Patient: s.patient.ID, MsgID: msgID,
				Topic: vward.QuestionnaireTopic(s.dev.ID), Payload: questionnairePayload(e, msgID, stamp)}
		default:
			continue
		}
		if s.dev.Faults.ClockSkew != 0 {
			st.Class |= Skewed
		}
		if sp := s.spellAt(t); sp != nil {
			sp.buf = append(sp.buf, held{step: st}) // sent when it reconnects
			continue
		}
		s.push(st)
	}
}
