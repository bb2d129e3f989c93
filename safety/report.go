package safety

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// Outcome is what a build's test run says of one test.
type Outcome string

// Outcomes of a test; NotRun when the results do not name it.
const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped"
	NotRun  Outcome = "not run"
)

// Results are the outcomes of a `go test -json` run, by "dir:TestName"
// (and "dir:TestName/subtest").
type Results map[string]Outcome

// ReadResults reads the output of `go test -json` for module's packages.
// Lines that are not JSON (a build's own output) are skipped.
func ReadResults(r io.Reader, module string) (Results, error) {
	out := Results{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var ev struct{ Action, Package, Test string }
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("test results line %d: %w", n, err)
		}
		if ev.Test == "" {
			continue
		}
		dir, ok := strings.CutPrefix(ev.Package, module)
		if !ok {
			continue
		}
		dir = strings.TrimPrefix(dir, "/")
		if dir == "" {
			dir = "."
		}
		key := dir + ":" + ev.Test
		switch ev.Action {
		case "pass":
			out[key] = Passed
		case "fail":
			out[key] = Failed
		case "skip":
			out[key] = Skipped
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read test results: %w", err)
	}
	return out, nil
}

// Evidence is the outcome that stands for a control: its test's, or for a
// scenario its replay's under ScenarioHarness. Design, documentation and
// configuration controls have none ("").
func (r Results) Evidence(c Control) Outcome {
	var key string
	switch c.Kind {
	case Test:
		key = c.Test
	case Scenario:
		key = ScenarioHarness + "/" + strings.TrimSuffix(filepath.Base(c.Scenario), ".json")
	default:
		return ""
	}
	if o, ok := r[key]; ok {
		return o
	}
	return NotRun
}

// Build says which vward the report is of.
type Build struct {
	Version, Revision string
	At                time.Time
	// Results names where the test results came from; empty when none
	// were given.
	Results string
}

// Render writes the clinical safety case report of l, with the evidence
// of res (nil: none given), as Markdown.
func Render(w io.Writer, l *Log, b Build, res Results) error {
	p := &printer{w: w}
	p.f("# %s\n\n", orDefault(l.Title, "Clinical safety case report"))
	p.f("| | |\n|---|---|\n")
	p.f("| product | vward %s |\n", b.Version)
	p.f("| commit | %s |\n", orDefault(b.Revision, "unknown"))
	p.f("| hazard log | docs/safety/hazards.yaml, version %s |\n", orDefault(l.Version, "unversioned"))
	p.f("| generated | %s |\n", b.At.UTC().Format(time.RFC3339))
	p.f("| test evidence | %s |\n\n", orDefault(b.Results, "none given: every test and scenario control reads \"not run\""))
	if l.Scope != "" {
		p.f("%s\n\n", strings.TrimSpace(l.Scope))
	}

	counts := map[Outcome]int{}
	for _, c := range l.Controls {
		if o := res.Evidence(c); o != "" {
			counts[o]++
		}
	}
	p.f("## Summary\n\n")
	p.f("- %d hazards, %d controls.\n", len(l.Hazards), len(l.Controls))
	p.f("- Test and scenario evidence: %d passed, %d failed, %d skipped, %d not run.\n",
		counts[Passed], counts[Failed], counts[Skipped], counts[NotRun])
	var open []string
	for _, h := range l.Hazards {
		if h.Residual.Rating() >= 4 {
			open = append(open, h.ID)
		}
	}
	switch {
	case counts[Failed] > 0:
		p.f("- **Evidence failed for this build: it must not be released until the failing controls pass.**\n")
	case counts[Skipped]+counts[NotRun] > 0:
		p.f("- Some evidence is missing for this build: read each \"not run\" or \"skipped\" control below before release.\n")
	default:
		p.f("- Every test and scenario control passed in this build.\n")
	}
	if len(open) > 0 {
		p.f("- Residual risk high or very high (unacceptable): %s.\n", strings.Join(open, ", "))
	} else {
		p.f("- No residual risk is rated high or very high.\n")
	}
	p.f("\n| hazard | title | initial | residual | evidence |\n|---|---|---|---|---|\n")
	for _, h := range l.Hazards {
		p.f("| [%s](#%s) | %s | %d %s | %d %s | %s |\n", h.ID, Anchor(h.ID+" "+h.Title), h.Title,
			h.Initial.Rating(), RiskWords[h.Initial.Rating()], h.Residual.Rating(), RiskWords[h.Residual.Rating()], hazardEvidence(l, h, res))
	}

	p.f("\n## Risk matrix\n\nClinical risk rating by likelihood and severity (DCB0129 and DCB0160).\n\n")
	p.f("| likelihood \\ severity | %s |\n|---|%s\n", strings.Join(Severity, " | "), strings.Repeat("---|", len(Severity)))
	for li := len(Likelihood) - 1; li >= 0; li-- {
		cells := make([]string, len(Severity))
		for si := range Severity {
			cells[si] = fmt.Sprint(riskMatrix[li][si])
		}
		p.f("| %s | %s |\n", Likelihood[li], strings.Join(cells, " | "))
	}
	p.f("\n1 very low and 2 low: acceptable. 3 medium: acceptable only where further reduction is impracticable. 4 high and 5 very high: unacceptable.\n")

	p.f("\n## Hazards\n")
	for _, h := range l.Hazards {
		p.f("\n### %s %s\n\n", h.ID, h.Title)
		p.f("**Cause.** %s\n\n**Effect on the patient.** %s\n\n", oneLine(h.Cause), oneLine(h.Effect))
		p.f("**Initial risk:** %s.\n\n", h.Initial)
		p.f("| control | kind | what it does | evidence |\n|---|---|---|---|\n")
		for _, id := range h.Controls {
			c, _ := l.Control(id)
			p.f("| %s | %s | %s | %s |\n", c.ID, c.Kind, cell(controlText(c)), evidenceWord(res.Evidence(c)))
		}
		p.f("\n**Residual risk:** %s.\n", h.Residual)
		if len(h.Covers) > 0 {
			p.f("\nCovers: %s.\n", strings.Join(h.Covers, ", "))
		}
	}
	return p.err
}

func hazardEvidence(l *Log, h Hazard, res Results) string {
	counts := map[Outcome]int{}
	for _, id := range h.Controls {
		c, _ := l.Control(id)
		if o := res.Evidence(c); o != "" {
			counts[o]++
		}
	}
	var parts []string
	for _, o := range []Outcome{Passed, Failed, Skipped, NotRun} {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
		}
	}
	if len(parts) == 0 {
		return "no tests"
	}
	return strings.Join(parts, ", ")
}

func controlText(c Control) string {
	t := oneLine(c.Text)
	switch c.Kind {
	case Test:
		return t + " (`" + c.Test + "`)"
	case Scenario:
		return t + " (`" + c.Scenario + "`)"
	case Documentation:
		return t + " (" + c.Doc + ")"
	}
	return t
}

func evidenceWord(o Outcome) string {
	switch o {
	case Passed:
		return "passed"
	case Failed:
		return "**FAILED**"
	case "":
		return "–"
	}
	return string(o)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
func cell(s string) string    { return strings.ReplaceAll(s, "|", `\|`) }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, a ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, a...)
	}
}
