// Package safety reads vward's clinical hazard log (docs/safety/hazards.yaml),
// checks that every control it names exists in the tree, and renders the
// log with a build's test results as a clinical safety case report.
package safety

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Severity is DCB0129's consequence scale, least first.
var Severity = []string{"minor", "significant", "considerable", "major", "catastrophic"}

// Likelihood is DCB0129's likelihood scale, least first.
var Likelihood = []string{"very low", "low", "medium", "high", "very high"}

// riskMatrix is the clinical risk rating (1–5) of DCB0129 and DCB0160's
// implementation guidance, by likelihood (rows, least first) and
// severity (columns, least first).
var riskMatrix = [5][5]int{
	{1, 1, 2, 2, 3}, // very low
	{1, 2, 2, 3, 4}, // low
	{2, 2, 3, 3, 4}, // medium
	{2, 3, 3, 4, 5}, // high
	{3, 4, 4, 5, 5}, // very high
}

// RiskWords names the ratings 1–5 with what each means for acceptance.
var RiskWords = [6]string{"", "very low", "low", "medium", "high", "very high"}

// Risk is one assessment of a hazard: how bad its harm and how likely.
type Risk struct {
	Severity   string `yaml:"severity"`
	Likelihood string `yaml:"likelihood"`
}

// Rating is the risk's clinical risk rating, 1 (very low) to 5 (very high).
func (r Risk) Rating() int {
	s, l := slices.Index(Severity, r.Severity), slices.Index(Likelihood, r.Likelihood)
	if s < 0 || l < 0 {
		return 0
	}
	return riskMatrix[l][s]
}

func (r Risk) String() string {
	return fmt.Sprintf("%d (%s): %s, likelihood %s", r.Rating(), RiskWords[r.Rating()], r.Severity, r.Likelihood)
}

// Hazard is one entry of the log.
type Hazard struct {
	ID       string   `yaml:"id"`
	Title    string   `yaml:"title"`
	Cause    string   `yaml:"cause"`
	Effect   string   `yaml:"effect"`
	Initial  Risk     `yaml:"initial"`
	Controls []string `yaml:"controls"`
	Residual Risk     `yaml:"residual"`
	// Covers names the alerting conditions, policy settings and faults
	// whose failure this hazard is: "condition:news2", "policy:AckTimeout".
	Covers []string `yaml:"covers"`
}

// Control kinds.
const (
	Design        = "design"
	Test          = "test"
	Scenario      = "scenario"
	Documentation = "documentation"
	Configuration = "configuration"
)

// Control is one measure that lowers the risk of one or more hazards.
type Control struct {
	ID   string `yaml:"id"`
	Kind string `yaml:"kind"`
	Text string `yaml:"text"`
	// Test is a Go test of the module, as "dir:TestName" (dir relative to
	// the module root, "." for the root package): kind test.
	Test string `yaml:"test"`
	// Scenario is a shipped scenario file, replayed with its expectations
	// by internal/node's TestScenarioFiles: kind scenario.
	Scenario string `yaml:"scenario"`
	// Doc is a page of docs/, optionally with a heading's anchor:
	// kind documentation.
	Doc string `yaml:"doc"`
}

// Log is the hazard log.
type Log struct {
	Title    string    `yaml:"title"`
	Version  string    `yaml:"version"`
	Scope    string    `yaml:"scope"`
	Hazards  []Hazard  `yaml:"hazards"`
	Controls []Control `yaml:"controls"`
}

// Control returns the control with id, if there is one.
func (l *Log) Control(id string) (Control, bool) {
	i := slices.IndexFunc(l.Controls, func(c Control) bool { return c.ID == id })
	if i < 0 {
		return Control{}, false
	}
	return l.Controls[i], true
}

// Load reads and checks a hazard log file.
func Load(path string) (*Log, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the hazard log: %w", err)
	}
	l, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// Parse reads a hazard log and checks that it is whole: every field known,
// ids unique, every hazard controlled, every control answering a hazard,
// and each control carrying what its kind needs. It does not look at the
// tree; Trace does.
func Parse(b []byte) (*Log, error) {
	var l Log
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&l); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if err := l.check(); err != nil {
		return nil, err
	}
	return &l, nil
}

var (
	hazardID  = regexp.MustCompile(`^HAZ-[0-9]{3}$`)
	controlID = regexp.MustCompile(`^C-[A-Z0-9]+(-[A-Z0-9]+)*$`)
	testRef   = regexp.MustCompile(`^[a-z0-9_./-]+:Test[A-Za-z0-9_]*(/[^\s]+)?$`)
)

func (l *Log) check() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(l.Hazards) == 0 {
		bad("no hazards")
	}
	controls := map[string]bool{}
	for i, c := range l.Controls {
		where := fmt.Sprintf("controls[%d] %s", i, c.ID)
		switch {
		case !controlID.MatchString(c.ID):
			bad("%s: id %q: want C-WORDS in capitals, e.g. C-ACK-AFTER-STORE", where, c.ID)
		case controls[c.ID]:
			bad("%s: id used twice", where)
		}
		controls[c.ID] = true
		if strings.TrimSpace(c.Text) == "" {
			bad("%s: no text: say what the control does", where)
		}
		switch c.Kind {
		case Design, Configuration:
		case Test:
			if !testRef.MatchString(c.Test) {
				bad("%s: test %q: want dir:TestName, e.g. alerting:TestAlertHysteresis", where, c.Test)
			}
		case Scenario:
			if !strings.HasPrefix(c.Scenario, "simulator/scenarios/") || !strings.HasSuffix(c.Scenario, ".json") {
				bad("%s: scenario %q: want a file simulator/scenarios/NAME.json", where, c.Scenario)
			}
		case Documentation:
			if !strings.HasPrefix(c.Doc, "docs/") {
				bad("%s: doc %q: want a page under docs/", where, c.Doc)
			}
		default:
			bad("%s: kind %q: want design, test, scenario, documentation or configuration", where, c.Kind)
		}
		for _, ref := range []struct{ kind, value string }{{Test, c.Test}, {Scenario, c.Scenario}, {Documentation, c.Doc}} {
			if ref.value != "" && ref.kind != c.Kind {
				bad("%s: a %s control names a %s (%q)", where, c.Kind, ref.kind, ref.value)
			}
		}
	}
	hazards := map[string]bool{}
	answered := map[string]bool{}
	for i, h := range l.Hazards {
		where := fmt.Sprintf("hazards[%d] %s", i, h.ID)
		switch {
		case !hazardID.MatchString(h.ID):
			bad("%s: id %q: want HAZ-NNN", where, h.ID)
		case hazards[h.ID]:
			bad("%s: id used twice", where)
		}
		hazards[h.ID] = true
		for _, f := range []struct{ name, value string }{{"title", h.Title}, {"cause", h.Cause}, {"effect", h.Effect}} {
			if strings.TrimSpace(f.value) == "" {
				bad("%s: no %s", where, f.name)
			}
		}
		for _, a := range []struct {
			name string
			r    Risk
		}{{"initial", h.Initial}, {"residual", h.Residual}} {
			name, r := a.name, a.r
			if !slices.Contains(Severity, r.Severity) {
				bad("%s: %s severity %q: want one of %s", where, name, r.Severity, strings.Join(Severity, ", "))
			}
			if !slices.Contains(Likelihood, r.Likelihood) {
				bad("%s: %s likelihood %q: want one of %s", where, name, r.Likelihood, strings.Join(Likelihood, ", "))
			}
		}
		if h.Residual.Rating() > h.Initial.Rating() {
			bad("%s: residual risk %d is above the initial %d", where, h.Residual.Rating(), h.Initial.Rating())
		}
		if len(h.Controls) == 0 {
			bad("%s: no controls", where)
		}
		for _, id := range h.Controls {
			if !controls[id] {
				bad("%s: control %s is not in controls", where, id)
			}
			answered[id] = true
		}
	}
	for _, c := range l.Controls {
		if c.ID != "" && !answered[c.ID] {
			bad("control %s answers no hazard", c.ID)
		}
	}
	return errors.Join(errs...)
}
