package simulator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/simulator"
)

// eventPlan is a frail patient with a hub and a pendant that detects
// falls, who falls at 2h and whose carer answers a questionnaire at 3h,
// while the hub is offline from 2h30m to 3h30m.
func eventPlan(t *testing.T) *simulator.Plan {
	t.Helper()
	return mustPlan(t, `{"name": "events", "seed": 7, "duration": "6h", "speed": 3600,
	  "patients": [{"id": "p1", "profile": "frail",
	    "events": [{"kind": "fall", "at": "2h"},
	      {"kind": "questionnaire", "at": "3h", "answers": {"carer_worried": true, "not_eating_drinking": false, "pain_severity": 8}}],
	    "devices": [{"kind": "hub", "every": "4h", "faults": {"offline": [{"at": "2h30m", "for": "1h"}]}},
	      {"id": "p1-pendant", "kind": "wearable", "measures": ["fall_event"], "every": "1h"}]}]}`)
}

// A fall is a fall_event reading from the device that detects it, and a
// questionnaire is a soft_signs message on the hub's questionnaire topic,
// sent when the hub reconnects if it was offline; both are what vward
// accepts, and a fall detector measures nothing else.
func TestEventsAreSentAsMessages(t *testing.T) {
	plan := eventPlan(t)
	clock := plan.Scenario.NewClock(origin, 0)
	var falls, questionnaires int
	for _, st := range published(plan, clock) {
		switch {
		case st.Device == "p1-pendant":
			falls++
			msg, err := ingest.Decode(st.Device, st.Payload, clock.Due(st.At), ingest.DefaultLimits())
			if err != nil {
				t.Fatalf("the pendant's message is refused: %v: %s", err, st.Payload)
			}
			if st.At != 2*time.Hour || len(msg.Readings) != 1 || msg.Readings[0].Kind != vward.FallEvent || msg.Readings[0].Value != 1 ||
				len(st.Readings) != 1 || !st.Readings[0].At.Equal(msg.Readings[0].At) {
				t.Fatalf("the pendant sent %+v at %s (readings %+v)", msg.Readings, st.At, st.Readings)
			}
		case st.Topic != "":
			questionnaires++
			if st.Topic != vward.QuestionnaireTopic(st.Device) || st.Device != "p1-hub" {
				t.Fatalf("questionnaire from %s on %s", st.Device, st.Topic)
			}
			if st.At != 3*time.Hour+30*time.Minute || st.Class&simulator.Backfill == 0 || len(st.Readings) != 0 {
				t.Errorf("questionnaire sent at %s (class %b), want at 3h30m when the hub reconnects", st.At, st.Class)
			}
			m, err := ingest.DecodeQuestionnaire(st.Device, st.Payload, clock.Due(st.At), ingest.DefaultLimits())
			if err != nil || len(m.Problems) != 0 {
				t.Fatalf("the questionnaire is refused: %v %v: %s", err, m.Problems, st.Payload)
			}
			if !strings.Contains(string(st.Payload), `"answered_by":"carer"`) || !m.Answered.At.Equal(clock.Stamp(3*time.Hour)) {
				t.Errorf("questionnaire %s answered at %v, want by the carer at 3h", st.Payload, m.Answered.At)
			}
		}
	}
	if falls != 1 || questionnaires != 1 {
		t.Fatalf("%d fall readings and %d questionnaires, want one of each", falls, questionnaires)
	}
}

// A questionnaire that vward would refuse, or that no hub can send, is
// refused when the scenario is read, and so are a questionnaire's fields
// on another event.
func TestEventRefusals(t *testing.T) {
	for _, c := range []struct{ name, events, devices, want string }{
		{"no hub", `[{"kind": "questionnaire", "at": "1h", "answers": {"carer_worried": true}}]`, `[{"kind": "oximeter"}]`, "no hub"},
		{"not a hub", `[{"kind": "questionnaire", "at": "1h", "device": "p1-oximeter", "answers": {"carer_worried": true}}]`, `[{"kind": "hub"}, {"kind": "oximeter"}]`, "not one of the patient's hubs"},
		{"unknown question", `[{"kind": "questionnaire", "at": "1h", "answers": {"carer_worry": true}}]`, `[{"kind": "hub"}]`, "carer_worry"},
		{"out of the scale", `[{"kind": "questionnaire", "at": "1h", "answers": {"pain_severity": 11}}]`, `[{"kind": "hub"}]`, "pain_severity"},
		{"no answers", `[{"kind": "questionnaire", "at": "1h"}]`, `[{"kind": "hub"}]`, "no answers"},
		{"answers on a fall", `[{"kind": "fall", "at": "1h", "answers": {"carer_worried": true}}]`, `[{"kind": "hub"}]`, "are a questionnaire's"},
		{"unknown event", `[{"kind": "stroke", "at": "1h"}]`, `[{"kind": "hub"}]`, `"stroke" is not one of`},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc, err := simulator.Parse([]byte(`{"name": "bad", "seed": 1, "duration": "2h", "speed": 3600,
				"patients": [{"id": "p1", "events": ` + c.events + `, "devices": ` + c.devices + `}]}`))
			if err == nil {
				_, err = sc.Plan()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}
