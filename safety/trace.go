package safety

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/vward/vward/alerting"
)

// FaultTestFiles are the files of internal/node whose tests inject the
// faults of DESIGN.md (broker restart, InfluxDB down, vward killed): each
// of their tests must be a control of some hazard.
var FaultTestFiles = []string{
	"internal/node/faults_test.go",
	"internal/node/journal_test.go",
	"internal/node/restart_test.go",
}

// ScenarioHarness is the test that replays every shipped scenario with
// its expectations, one subtest per file.
const ScenarioHarness = "internal/node:TestScenarioFiles"

// Required is what the log must cover in this build: every alerting
// condition ("condition:news2") and every setting of alerting.Policy
// ("policy:AckTimeout"), the conditions, timers and defaults of
// docs/alerts.md.
func Required() []string {
	var out []string
	for _, c := range alerting.Conditions {
		out = append(out, "condition:"+string(c))
	}
	for f := range reflect.TypeFor[alerting.Policy]().Fields() {
		out = append(out, "policy:"+f.Name)
	}
	return out
}

// Trace checks the log against the tree at root: each named test exists,
// each scenario file exists and is replayed by ScenarioHarness, each page
// and heading named exists, each fault test is a control, and the hazards
// cover exactly the required conditions and settings.
func Trace(l *Log, root string, required []string) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	tests := testIndex{root: root, funcs: map[string]map[string]bool{}}
	named := map[string]bool{}
	for _, c := range l.Controls {
		switch c.Kind {
		case Test:
			dir, name, _ := strings.Cut(c.Test, ":")
			top, _, _ := strings.Cut(name, "/")
			if err := tests.has(dir, top); err != nil {
				bad("control %s: %w", c.ID, err)
			}
			named[dir+":"+top] = true
		case Scenario:
			if _, err := os.Stat(filepath.Join(root, c.Scenario)); err != nil {
				bad("control %s: scenario %s: %w", c.ID, c.Scenario, err)
			}
			dir, name, _ := strings.Cut(ScenarioHarness, ":")
			if err := tests.has(dir, name); err != nil {
				bad("control %s: the scenarios' harness: %w", c.ID, err)
			}
		case Documentation:
			if err := docExists(root, c.Doc); err != nil {
				bad("control %s: %w", c.ID, err)
			}
		}
	}
	for _, file := range FaultTestFiles {
		names, err := testFuncs(filepath.Join(root, file))
		if err != nil {
			bad("fault tests: %w", err)
			continue
		}
		for _, n := range names {
			if ref := filepath.Dir(file) + ":" + n; !named[ref] {
				bad("fault test %s is no hazard's control: add it to the hazard it tests", ref)
			}
		}
	}
	covered := map[string]bool{}
	for _, h := range l.Hazards {
		for _, c := range h.Covers {
			if !slices.Contains(required, c) {
				bad("hazard %s covers %q, which is not a condition or policy setting of this build", h.ID, c)
			}
			covered[c] = true
		}
	}
	for _, r := range required {
		if !covered[r] {
			bad("no hazard covers %s: say which hazard its failure is", r)
		}
	}
	return errors.Join(errs...)
}

// testIndex finds the test functions of the module's packages.
type testIndex struct {
	root  string
	funcs map[string]map[string]bool // dir → test names
}

func (t testIndex) has(dir, name string) error {
	fs, ok := t.funcs[dir]
	if !ok {
		files, err := filepath.Glob(filepath.Join(t.root, dir, "*_test.go"))
		if err != nil || len(files) == 0 {
			return fmt.Errorf("test %s:%s: no test files in %s", dir, name, dir)
		}
		fs = map[string]bool{}
		for _, f := range files {
			names, err := testFuncs(f)
			if err != nil {
				return err
			}
			for _, n := range names {
				fs[n] = true
			}
		}
		t.funcs[dir] = fs
	}
	if !fs[name] {
		return fmt.Errorf("test %s:%s does not exist", dir, name)
	}
	return nil
}

// testFuncs lists a test file's top-level Test functions.
func testFuncs(path string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("read tests: %w", err)
	}
	var out []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "Test") && fn.Name.Name != "TestMain" {
			out = append(out, fn.Name.Name)
		}
	}
	return out, nil
}

var heading = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)

// docExists checks a page and, after "#", one of its headings' anchors as
// GitHub makes them.
func docExists(root, ref string) error {
	page, anchor, _ := strings.Cut(ref, "#")
	b, err := os.ReadFile(filepath.Join(root, page))
	if err != nil {
		return fmt.Errorf("page %s: %w", page, err)
	}
	if anchor == "" {
		return nil
	}
	for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
		if Anchor(m[1]) == anchor {
			return nil
		}
	}
	return fmt.Errorf("page %s has no heading with anchor #%s", page, anchor)
}

// Anchor is the anchor GitHub gives a Markdown heading: lower case,
// punctuation dropped, spaces as hyphens.
func Anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 && !strings.ContainsRune("₂—–’“”…·", r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
