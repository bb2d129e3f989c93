package simulator_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/simulator"
)

// A scenario with every device kind and every fault, for the properties
// that must hold whatever a scenario does.
const everything = `{
  "name": "everything", "seed": 42, "duration": "12h", "speed": 720, "starts_at": "20:00",
  "patients": [
    {"id": "p-sepsis", "trajectories": [{"kind": "sepsis", "onset": "2h", "span": "6h"}],
     "events": [{"kind": "fall", "at": "1h"}],
     "devices": [
       {"kind": "hub", "every": "1h", "jitter": "10m", "faults": {"duplicate_rate": 0.3, "out_of_order_rate": 0.3, "malformed_rate": 0.3, "offline": [{"at": "3h", "for": "2h"}]}},
       {"kind": "wearable", "every": "1m", "faults": {"offline_per_day": 6, "buffer": 20, "clock_skew": "30s"}}
     ]},
    {"id": "p-copd", "profile": "copd", "spo2_scale": 2, "trajectories": [{"kind": "copd_exacerbation", "onset": "4h", "span": "4h"}],
     "devices": [{"kind": "oximeter", "times": ["08:00", "14:00", "20:00", "22:00"], "jitter": "15m"}, {"kind": "gateway", "every": "10m", "batch": "1h"}]},
    {"id": "p-af", "profile": "frail", "trajectories": [{"kind": "af", "bursts_per_day": 12}], "events": [{"kind": "confusion", "at": "5h", "for": "1h"}],
     "devices": [{"kind": "bp_cuff", "every": "3h"}, {"kind": "thermometer", "every": "4h", "faults": {"battery": {"start": 0.2, "drain_per_hour": 0.1, "dies": true}}}]},
    {"id": "p-hypo", "trajectories": [{"kind": "hypotension", "onset": "1h", "span": "3h"}, {"kind": "recovery", "onset": "6h", "span": "4h"}],
     "devices": [{"kind": "hub", "every": "30m", "faults": {"malformed_rate": 1}}, {"kind": "scale", "faults": {"malformed_rate": 0.5}}]}
  ],
  "outages": [{"at": "9h", "for": "30m", "patients": ["p-c*"]}],
  "expect": [{"patient": "p-sepsis", "risk": "high", "after": "2h"}]
}`

func mustPlan(t *testing.T, src string) *simulator.Plan {
	t.Helper()
	sc, err := simulator.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := sc.Plan()
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

var origin = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// published is every message the plan's devices publish on clock, device
// by device, each device's in the order it sends them.
func published(plan *simulator.Plan, clock simulator.Clock) []simulator.Step {
	var out []simulator.Step
	for _, s := range plan.Streams(clock) {
		for {
			st, ok := s.Next()
			if !ok {
				break
			}
			if st.Op == simulator.Publish {
				out = append(out, st)
			}
		}
	}
	return out
}

// trace is everything a device did, in order, as bytes.
func trace(st simulator.Step) string {
	return fmt.Sprintf("%d %d %s %s\n", st.At, st.Op, st.Topic, st.Payload)
}

// The same seed gives the same messages, byte for byte, however the
// generation of different devices is interleaved across goroutines; another
// seed gives other messages.
func TestSameSeedSameBytes(t *testing.T) {
	gen := func(seed uint64, parallel bool) map[vward.DeviceID]string {
		plan := mustPlan(t, strings.Replace(everything, `"seed": 42`, fmt.Sprintf(`"seed": %d`, seed), 1))
		streams := plan.Streams(plan.Scenario.NewClock(origin, 0))
		out := make(map[vward.DeviceID]string)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, s := range streams {
			run := func() {
				var b strings.Builder
				for {
					st, ok := s.Next()
					if !ok {
						break
					}
					b.WriteString(trace(st))
					if parallel && rand.IntN(8) == 0 {
						time.Sleep(time.Microsecond) // shuffle the interleaving
					}
				}
				mu.Lock()
				out[plan.Devices()[i].ID] = b.String()
				mu.Unlock()
			}
			if parallel {
				wg.Add(1)
				go func() { defer wg.Done(); run() }()
			} else {
				run()
			}
		}
		wg.Wait()
		return out
	}
	a, b := gen(42, false), gen(42, true)
	if len(a) != 8 {
		t.Fatalf("got %d device streams, want 8", len(a))
	}
	for d, s := range a {
		if s != b[d] {
			t.Errorf("device %s: the second generation differs from the first", d)
		}
		if n := strings.Count(s, "\n"); n < 1 {
			t.Errorf("device %s took only %d steps", d, n)
		}
	}
	c := gen(43, true)
	same := 0
	for d := range a {
		if a[d] == c[d] {
			same++
		}
	}
	if same == len(a) {
		t.Error("seed 43 generated exactly what seed 42 did")
	}
}

// Every message a well-behaved device publishes is accepted by vward's own
// decoder at the moment it is due, with exactly the readings the
// simulator's dry run counts; a garbled one is refused in whole or in the
// part the dry run expects.
func TestMessagesDecodeAsVwardDecodes(t *testing.T) {
	for _, mode := range []simulator.ClockMode{simulator.RealClock, simulator.SimulatedClock} {
		plan := mustPlan(t, everything)
		plan.Scenario.Clock = mode
		clock := plan.Scenario.NewClock(origin, 0)
		checked := 0
		for _, s := range plan.Streams(clock) {
			for {
				st, ok := s.Next()
				if !ok {
					break
				}
				if st.Op != simulator.Publish || st.Class&simulator.Duplicate != 0 {
					continue
				}
				checked++
				msg, err := ingest.Decode(st.Device, st.Payload, clock.Due(st.At), ingest.DefaultLimits())
				var rej *ingest.RejectError
				if err != nil && !errors.As(err, &rej) {
					t.Fatalf("%s: %v", st.MsgID, err)
				}
				if st.Class&simulator.Malformed == 0 && (err != nil || len(msg.Problems) > 0) {
					t.Fatalf("%s (%s clock): clean message refused: %v %v\n%s", st.MsgID, mode, err, msg.Problems, st.Payload)
				}
				var got []string
				if err == nil {
					for _, r := range msg.Readings {
						got = append(got, fmt.Sprintf("%s=%g@%s", r.Kind, r.Value, r.At.Format(time.RFC3339Nano)))
					}
				}
				var want []string
				for _, r := range st.Readings {
					want = append(want, fmt.Sprintf("%s=%g@%s", r.Kind, r.Value, r.At.Format(time.RFC3339Nano)))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%s: vward accepts %v, the simulator expects %v\n%s", st.MsgID, got, want, st.Payload)
				}
			}
		}
		if checked < 500 {
			t.Errorf("%s clock: only %d messages checked", mode, checked)
		}
	}
}

// Measurement timestamps are never later than the real time the
// measurement is due (vward refuses the future), and a simulated clock
// ends at the present.
func TestClockNeverStampsTheFuture(t *testing.T) {
	for _, c := range []simulator.Clock{
		{Mode: simulator.RealClock, Speed: 720, Origin: origin, Span: 24 * time.Hour},
		{Mode: simulator.SimulatedClock, Speed: 720, Origin: origin, Span: 24 * time.Hour},
		{Mode: simulator.SimulatedClock, Speed: 1, Origin: origin, Span: time.Hour},
	} {
		for t0 := time.Duration(0); t0 <= c.Span; t0 += 7 * time.Minute {
			if c.Stamp(t0).After(c.Due(t0)) {
				t.Fatalf("%s at %g×: stamp %v of %v is after its due time %v", c.Mode, c.Speed, c.Stamp(t0), t0, c.Due(t0))
			}
			if got := c.ScenarioTimeOfStamp(c.Stamp(t0)); (got - t0).Abs() > time.Duration(c.Speed)*time.Microsecond {
				t.Fatalf("%s: ScenarioTimeOfStamp(Stamp(%v)) = %v", c.Mode, t0, got)
			}
		}
		if c.Mode == simulator.SimulatedClock {
			end := c.Origin.Add(c.RealSpan())
			if !c.Stamp(c.Span).Equal(end) || !c.Stamp(0).Equal(end.Add(-c.Span)) {
				t.Errorf("simulated clock spans %v–%v, want %v–%v", c.Stamp(0), c.Stamp(c.Span), end.Add(-c.Span), end)
			}
		}
	}
}

// Physiology: sepsis raises breathing, pulse and temperature and lowers
// blood pressure and saturation, ending in new confusion; the noise-free
// trajectory climbs through the NEWS2 bands; a stable patient's state
// stays low all day.
func TestPhysiology(t *testing.T) {
	plan := mustPlan(t, everything)
	p, _ := plan.Patient("p-sepsis")
	before, after := p.Model.Truth(2*time.Hour), p.Model.Truth(8*time.Hour)
	if !(after.RespiratoryRate > before.RespiratoryRate+10 && after.HeartRate > before.HeartRate+30 &&
		after.Temperature > before.Temperature+1.5 && after.SystolicBP < before.SystolicBP-30 && after.SpO2 < before.SpO2-4) {
		t.Errorf("sepsis from %+v to %+v", before, after)
	}
	if after.Consciousness != vward.Confused {
		t.Errorf("consciousness at full sepsis = %v, want C", after.Consciousness)
	}
	bands := simulator.Bands(plan, time.Minute)["p-sepsis"]
	if !(bands[news2.Medium] > 2*time.Hour && bands[news2.High] > bands[news2.Medium] && bands[news2.High] < 8*time.Hour) {
		t.Errorf("sepsis bands = %v", bands)
	}

	stable := mustPlan(t, `{"name":"s","seed":9,"duration":"24h","cohorts":[{"count":200,"prefix":"s","patient":{"profile":"frail","devices":[{"kind":"hub"}]}}]}`)
	for id, b := range simulator.Bands(stable, 10*time.Minute) {
		if len(b) > 0 {
			t.Errorf("stable patient %s reaches %v", id, b)
		}
	}
	// Circadian: a patient is cooler at 04:00 than at 17:00.
	q := stable.Patients[0].Model
	night, day := q.Truth(20*time.Hour), q.Truth(9*time.Hour) // 08:00 + t
	if night.Temperature >= day.Temperature {
		t.Errorf("temperature at 04:00 %.2f is not below 17:00 %.2f", night.Temperature, day.Temperature)
	}
}

// Devices behave as real ones do: an offline spell disconnects, buffers and
// backfills at reconnection with the original timestamps; duplicates repeat
// a msg_id byte for byte; out-of-order messages arrive after their
// successor; a full buffer loses the oldest; a flat battery silences.
func TestDeviceFaults(t *testing.T) {
	plan := mustPlan(t, everything)
	clock := plan.Scenario.NewClock(origin, 0)
	streams := plan.Streams(clock)
	devices := plan.Devices()
	for i, s := range streams {
		d := devices[i]
		var steps []simulator.Step
		for {
			st, ok := s.Next()
			if !ok {
				break
			}
			steps = append(steps, st)
		}
		for j := 1; j < len(steps); j++ {
			if steps[j].At < steps[j-1].At {
				t.Fatalf("%s: step %d at %v comes before step %d at %v", d.ID, j, steps[j].At, j-1, steps[j-1].At)
			}
		}
		byID := map[string][]byte{}
		offline := false
		var wentOffline, backfilled, dups, late int
		for _, st := range steps {
			switch st.Op {
			case simulator.GoOffline:
				offline, wentOffline = true, wentOffline+1
			case simulator.GoOnline:
				offline = false
			case simulator.Publish:
				if offline {
					t.Fatalf("%s publishes %s while offline", d.ID, st.MsgID)
				}
				if st.Class&simulator.Backfill != 0 {
					backfilled++
					if st.Class&(simulator.Malformed|simulator.Skewed) == 0 && clock.ScenarioTimeOfStamp(stampOf(t, st.Payload)) >= st.At {
						t.Errorf("%s: backfilled %s is stamped after it was sent", d.ID, st.MsgID)
					}
				}
				if st.Class&simulator.Duplicate != 0 {
					dups++
					if prev, ok := byID[st.MsgID]; !ok || !bytes.Equal(prev, st.Payload) {
						t.Errorf("%s: duplicate %s does not repeat an earlier message byte for byte", d.ID, st.MsgID)
					}
				}
				if st.Class&simulator.OutOfOrder != 0 {
					late++
				}
				byID[st.MsgID] = st.Payload
			}
		}
		switch d.ID {
		case "p-sepsis-hub":
			if wentOffline != 1 || backfilled < 1 || dups < 1 || late < 1 {
				t.Errorf("hub: offline %d, backfilled %d, duplicates %d, out of order %d; want each ≥ 1", wentOffline, backfilled, dups, late)
			}
		case "p-sepsis-wearable":
			if wentOffline < 1 || s.Stats.Dropped < 1 {
				t.Errorf("wearable: %d offline spells, %d lost to its 20-message buffer; want both ≥ 1", wentOffline, s.Stats.Dropped)
			}
		case "p-copd-gateway":
			if wentOffline != 1 {
				t.Errorf("gateway: %d offline spells, want the outage", wentOffline)
			}
		case "p-af-thermometer":
			if !s.Stats.Died {
				t.Error("the thermometer's battery never ran flat")
			}
		}
	}
}

func stampOf(t *testing.T, payload []byte) time.Time {
	var p struct {
		TS time.Time `json:"ts"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatalf("%s: %v", payload, err)
	}
	return p.TS
}

// Every shipped scenario is valid and meets its own expectations in a dry
// run (a perfect vward with no latency): a scenario edit that breaks its
// windows fails here, before any service runs.
func TestScenarioFilesDryRun(t *testing.T) {
	files, _ := filepath.Glob("scenarios/*.json")
	if len(files) < 5 {
		t.Fatalf("found %d scenario files, want at least 5", len(files))
	}
	for _, f := range files {
		sc, err := simulator.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		plan, _ := sc.Plan()
		obs, stats := simulator.DryRun(plan, sc.NewClock(origin, 0))
		rep := simulator.EvaluateDryRun(plan, obs)
		var b strings.Builder
		_, _ = rep.WriteTo(&b)
		if !rep.Passed() {
			t.Errorf("%s fails its own expectations in a dry run:\n%s", f, b.String())
		}
		if stats.Messages == 0 {
			t.Errorf("%s publishes nothing", f)
		}
	}
}

// The COPD scenario checks the patient's prescribed Scale 2: scored on
// Scale 1, both patients' usual 90% on oxygen would be unexpected alerts.
func TestScenarioCOPDNeedsScale2(t *testing.T) {
	sc, err := simulator.Load("scenarios/copd-scale2.json")
	if err != nil {
		t.Fatal(err)
	}
	for i := range sc.Patients {
		sc.Patients[i].SpO2Scale = 1
	}
	plan, err := sc.Plan()
	if err != nil {
		t.Fatal(err)
	}
	obs, _ := simulator.DryRun(plan, sc.NewClock(origin, 0))
	rep := simulator.EvaluateDryRun(plan, obs)
	if rep.Passed() {
		t.Fatal("the COPD scenario passes on Scale 1; it would not notice a lost prescription")
	}
	var unexpected []vward.PatientID
	for _, u := range rep.Unexpected {
		unexpected = append(unexpected, u.Patient)
	}
	if !slices.Contains(unexpected, "copd-02") {
		t.Errorf("on Scale 1 the stable COPD patient is not unexpected: %v", unexpected)
	}
}

// Expectations: met, missing, late, early, and an unexpected band, each
// with a readable line.
func TestEvaluate(t *testing.T) {
	plan := mustPlan(t, `{"name":"e","seed":1,"duration":"10h",
	  "patients":[{"id":"a","devices":[{"kind":"hub"}]},{"id":"b","devices":[{"kind":"hub"}]},{"id":"c","devices":[{"kind":"hub"}]}],
	  "expect":[
	    {"patient":"a","risk":"medium","after":"1h","before":"3h"},
	    {"patient":"a","risk":"high","after":"2h","before":"4h"},
	    {"patient":"b","risk":"low-medium","after":"5h","before":"6h"},
	    {"patient":"c","risk":"medium","after":"1h","before":"2h"},
	    {"patient":"c","risk":"high","after":"0s","source":"alert","condition":"news2"}],
	  "allow":[{"patient":"b","risk":"medium"}]}`)
	h := time.Hour
	obs := []simulator.Observation{
		{Source: simulator.FromNEWS2, Patient: "a", Risk: news2.Medium, Score: 5, At: 2 * h},
		{Source: simulator.FromNEWS2, Patient: "a", Risk: news2.High, Score: 7, At: 5 * h},
		{Source: simulator.FromNEWS2, Patient: "b", Risk: news2.Medium, Score: 6, At: 4 * h},
		{Source: simulator.FromNEWS2, Patient: "c", Risk: news2.LowMedium, Score: 3, At: h},
		{Source: simulator.FromNEWS2, Patient: "c", Risk: news2.High, Score: 9, At: 9 * h},
		{Source: simulator.FromAlert, Patient: "c", Risk: news2.High, Condition: "news2", At: 9 * h},
		{Source: simulator.FromNEWS2, Patient: "stranger", Risk: news2.High, At: h},
	}
	rep := simulator.Evaluate(plan, obs)
	var got []string
	for _, r := range rep.Results {
		got = append(got, fmt.Sprintf("%s %s %s", r.Patient, r.Risk, r.Status))
	}
	for _, r := range rep.Unexpected {
		got = append(got, fmt.Sprintf("%s %s %s", r.Patient, r.Risk, r.Status))
	}
	want := []string{"a medium OK", "a high LATE", "b low-medium EARLY", "c medium LATE", "c high OK"}
	if !slices.Equal(got, want) {
		t.Errorf("results = %q, want %q", got, want)
	}
	// c's high is allowed by its alert expectation; b's medium by the
	// allowance. Take the allowance away and b is unexpected.
	plan.Scenario.Allow = nil
	rep = simulator.Evaluate(plan, obs)
	if len(rep.Unexpected) != 1 || rep.Unexpected[0].Patient != "b" {
		t.Errorf("unexpected = %+v, want b's medium", rep.Unexpected)
	}
	var b strings.Builder
	_, _ = rep.WriteTo(&b)
	for _, line := range []string{
		`scenario "e": FAIL`,
		"LATE        a reached high at 5h00m (expected 2h00m–4h00m): NEWS2 7 high, partial",
		"EARLY       b reached low-medium at 4h00m (expected 5h00m–6h00m)",
		"UNEXPECTED  b reached medium at 4h00m, which no expectation or allowance covers",
	} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("report lacks %q:\n%s", line, b.String())
		}
	}
	missing := simulator.Evaluate(plan, nil)
	b.Reset()
	_, _ = missing.WriteTo(&b)
	if !strings.Contains(b.String(), "MISSING     a never reached medium (expected 1h00m–3h00m); the board showed no score for the patient") {
		t.Errorf("missing report:\n%s", b.String())
	}
}

// Scenario files are checked strictly: a typo is an error, not a silently
// missing fault.
func TestScenarioValidation(t *testing.T) {
	for name, src := range map[string]string{
		"unknown field":  `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p","devices":[{"kind":"hub","faults":{"duplicates":0.1}}]}]}`,
		"bad kind":       `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p","devices":[{"kind":"toaster"}]}]}`,
		"bad trajectory": `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p","trajectories":[{"kind":"flu"}],"devices":[{"kind":"hub"}]}]}`,
		"bad risk":       `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p","devices":[{"kind":"hub"}]}],"expect":[{"patient":"p","risk":"amber","after":"0s"}]}`,
		"no patient":     `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p","devices":[{"kind":"hub"}]}],"expect":[{"patient":"q","risk":"high","after":"0s"}]}`,
		"empty window":   `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p","devices":[{"kind":"hub"}]}],"expect":[{"patient":"p","risk":"high","after":"2h","before":"1h"}]}`,
		"bad id":         `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p/1","devices":[{"kind":"hub"}]}]}`,
		"too fast":       `{"name":"x","seed":1,"duration":"1h","patients":[{"id":"p","devices":[{"kind":"wearable","every":"100ms"}]}]}`,
		"bad duration":   `{"name":"x","seed":1,"duration":"1 day","patients":[{"id":"p","devices":[{"kind":"hub"}]}]}`,
		"bad clock":      `{"name":"x","seed":1,"duration":"1h","clock":"lunar","patients":[{"id":"p","devices":[{"kind":"hub"}]}]}`,
	} {
		if _, err := simulator.Parse([]byte(src)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
