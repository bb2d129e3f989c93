package safety_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/safety"
)

const root = ".."

var logPath = filepath.Join(root, "docs", "safety", "hazards.yaml")

// TestHazardLogIsTraceable fails when the hazard log names a test,
// scenario or page that no longer exists, leaves a hazard without a
// control or a control without a hazard, leaves out a fault test, or
// leaves an alerting condition or policy setting uncovered.
func TestHazardLogIsTraceable(t *testing.T) {
	l, err := safety.Load(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := safety.Trace(l, root, safety.Required()); err != nil {
		t.Fatalf("the hazard log does not trace to this tree:\n%v", err)
	}
}

// A minimal whole log, for the refusals below to break one thing at a time.
const wholeLog = `
hazards:
  - id: HAZ-001
    title: A reading is lost
    cause: a crash
    effect: unseen deterioration
    initial: {severity: major, likelihood: medium}
    controls: [C-ONE, C-TWO]
    residual: {severity: major, likelihood: low}
    covers: [condition:news2]
controls:
  - {id: C-ONE, kind: design, text: acknowledge after storing}
  - {id: C-TWO, kind: test, text: checks it, test: "alerting:TestAlertHysteresis"}
`

func TestParseRefuses(t *testing.T) {
	if _, err := safety.Parse([]byte(wholeLog)); err != nil {
		t.Fatalf("the whole log is refused: %v", err)
	}
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown field", "cause: a crash", "cause: a crash\n    casue: typo", "field casue not found"},
		{"hazard id", "id: HAZ-001", "id: H1", `id "H1": want HAZ-NNN`},
		{"no controls", "controls: [C-ONE, C-TWO]", "controls: []", "HAZ-001: no controls"},
		{"unknown control", "[C-ONE, C-TWO]", "[C-ONE, C-TWO, C-THREE]", "control C-THREE is not in controls"},
		{"control answers nothing", "[C-ONE, C-TWO]", "[C-ONE]", "control C-TWO answers no hazard"},
		{"severity", "{severity: major, likelihood: medium}", "{severity: bad, likelihood: medium}", `initial severity "bad"`},
		{"likelihood", "{severity: major, likelihood: low}", "{severity: major, likelihood: rare}", `residual likelihood "rare"`},
		{"residual above initial", "{severity: major, likelihood: low}", "{severity: catastrophic, likelihood: very high}", "residual risk 5 is above the initial 3"},
		{"empty cause", "cause: a crash", `cause: ""`, "HAZ-001: no cause"},
		{"test reference", `"alerting:TestAlertHysteresis"`, `"TestAlertHysteresis"`, "want dir:TestName"},
		{"kind", "kind: design", "kind: hope", `kind "hope"`},
		{"reference of another kind", "kind: design, text: acknowledge after storing", "kind: design, text: x, doc: docs/alerts.md", "a design control names a documentation"},
		{"control text", "text: acknowledge after storing", `text: ""`, "C-ONE: no text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Replace(wholeLog, tc.from, tc.to, 1)
			if in == wholeLog {
				t.Fatalf("%q is not in the log", tc.from)
			}
			_, err := safety.Parse([]byte(in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestTraceFindsWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"missing test", "TestAlertHysteresis", "TestAlertThatIsNot", "test alerting:TestAlertThatIsNot does not exist"},
		{"missing package", `"alerting:`, `"nowhere:`, "no test files in nowhere"},
		{"missing page", "kind: design, text: acknowledge after storing", "kind: documentation, text: x, doc: docs/nothing.md", "page docs/nothing.md"},
		{"missing heading", "kind: design, text: acknowledge after storing", "kind: documentation, text: x, doc: docs/alerts.md#no-such-heading", "no heading with anchor #no-such-heading"},
		{"missing scenario", "kind: design, text: acknowledge after storing", "kind: scenario, text: x, scenario: simulator/scenarios/none.json", "scenario simulator/scenarios/none.json"},
		{"covers what is not", "covers: [condition:news2]", "covers: [condition:news2, policy:Nothing]", `covers "policy:Nothing"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := safety.Parse([]byte(strings.Replace(wholeLog, tc.from, tc.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			err = safety.Trace(l, root, []string{"condition:news2"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("uncovered", func(t *testing.T) {
		l, err := safety.Parse([]byte(wholeLog))
		if err != nil {
			t.Fatal(err)
		}
		err = safety.Trace(l, root, []string{"condition:news2", "policy:AckTimeout"})
		if err == nil || !strings.Contains(err.Error(), "no hazard covers policy:AckTimeout") {
			t.Fatalf("got %v, want policy:AckTimeout reported uncovered", err)
		}
		// The fault tests of internal/node are not in this small log.
		if !strings.Contains(err.Error(), "fault test internal/node:TestFaultVwardKilled is no hazard's control") {
			t.Fatalf("got %v, want the fault tests reported", err)
		}
	})
}

func TestRiskRating(t *testing.T) {
	for _, tc := range []struct {
		severity, likelihood string
		want                 int
	}{
		{"minor", "very low", 1},
		{"catastrophic", "very high", 5},
		{"catastrophic", "very low", 3},
		{"minor", "very high", 3},
		{"major", "medium", 3},
		{"major", "low", 3},
		{"major", "very low", 2},
		{"considerable", "high", 3},
		{"significant", "low", 2},
		{"no such", "low", 0},
	} {
		if got := (safety.Risk{Severity: tc.severity, Likelihood: tc.likelihood}).Rating(); got != tc.want {
			t.Errorf("%s, %s: rating %d, want %d", tc.severity, tc.likelihood, got, tc.want)
		}
	}
}

func TestAnchor(t *testing.T) {
	for in, want := range map[string]string{
		"Timers and defaults":                     "timers-and-defaults",
		"MQTT: devices and the broker":            "mqtt-devices-and-the-broker",
		"The embedded broker (`vward demo`)":      "the-embedded-broker-vward-demo",
		"1. Secrets":                              "1-secrets",
		"HAZ-005 The wrong SpO₂ scale is applied": "haz-005-the-wrong-spo-scale-is-applied",
	} {
		if got := safety.Anchor(in); got != want {
			t.Errorf("Anchor(%q) = %q, want %q", in, got, want)
		}
	}
}

const goTestJSON = `{"Action":"run","Package":"github.com/vward/vward/alerting","Test":"TestAlertHysteresis"}
{"Action":"pass","Package":"github.com/vward/vward/alerting","Test":"TestAlertHysteresis","Elapsed":0.1}
{"Action":"fail","Package":"github.com/vward/vward/internal/node","Test":"TestScenarioFiles/overnight-sepsis","Elapsed":9}
{"Action":"skip","Package":"github.com/vward/vward","Test":"TestReadingDisplay"}
{"Action":"pass","Package":"github.com/vward/vward/alerting","Elapsed":1}
# github.com/vward/vward/web [build output]
`

func TestReadResults(t *testing.T) {
	res, err := safety.ReadResults(strings.NewReader(goTestJSON), "github.com/vward/vward")
	if err != nil {
		t.Fatal(err)
	}
	want := safety.Results{
		"alerting:TestAlertHysteresis":                     safety.Passed,
		"internal/node:TestScenarioFiles/overnight-sepsis": safety.Failed,
		".:TestReadingDisplay":                             safety.Skipped,
	}
	if len(res) != len(want) {
		t.Fatalf("got %v, want %v", res, want)
	}
	for k, v := range want {
		if res[k] != v {
			t.Errorf("%s: %q, want %q", k, res[k], v)
		}
	}
	if o := res.Evidence(safety.Control{Kind: safety.Scenario, Scenario: "simulator/scenarios/overnight-sepsis.json"}); o != safety.Failed {
		t.Errorf("scenario evidence %q, want failed", o)
	}
	if o := res.Evidence(safety.Control{Kind: safety.Test, Test: "news2:TestRound"}); o != safety.NotRun {
		t.Errorf("evidence of a test not in the results %q, want not run", o)
	}
	if _, err := safety.ReadResults(strings.NewReader("{not json\n"), "github.com/vward/vward"); err == nil {
		t.Error("a broken JSON line was read without an error")
	}
}

func TestRenderSaysWhatFailed(t *testing.T) {
	l, err := safety.Load(logPath)
	if err != nil {
		t.Fatal(err)
	}
	res := safety.Results{"alerting:TestAlertHysteresis": safety.Failed, "news2:TestSubscoreBoundaries": safety.Passed}
	var out bytes.Buffer
	if err := safety.Render(&out, l, safety.Build{Version: "v9.9.9", Revision: "abc123", At: time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC), Results: "results.json"}, res); err != nil {
		t.Fatal(err)
	}
	report := out.String()
	for _, want := range []string{
		"vward v9.9.9", "abc123", "2026-12-04T05:00:00Z",
		"must not be released until the failing controls pass",
		"| C-T-HYSTERESIS | test | An alert clears only after", "**FAILED**",
		"| C-T-SUBSCORE-BOUNDARIES | test |", "passed",
		"### HAZ-009 An alert clears while the patient is still unwell",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, h := range l.Hazards {
		if !strings.Contains(report, "### "+h.ID+" ") {
			t.Errorf("report lacks hazard %s", h.ID)
		}
	}
}
