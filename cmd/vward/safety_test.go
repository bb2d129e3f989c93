package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The report renders from the tree as a clean clone has it, with the
// evidence of a go test -json run.
func TestSafetyReportFromTheTree(t *testing.T) {
	log := filepath.Join("..", "..", "docs", "safety", "hazards.yaml")
	out, err := runCLI(t, "safety", "check", "--log", log, "--root", filepath.Join("..", ".."))
	if err != nil || !strings.Contains(out, "all traced") {
		t.Fatalf("safety check: %v\n%s", err, out)
	}

	results := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(results, []byte(`{"Action":"pass","Package":"github.com/vward/vward/internal/node","Test":"TestFaultVwardKilled"}
{"Action":"fail","Package":"github.com/vward/vward/internal/node","Test":"TestScenarioFiles/copd-scale2"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "report.md")
	if out, err := runCLI(t, "safety", "report", "--log", log, "--results", results, "--out", report); err != nil {
		t.Fatalf("safety report: %v\n%s", err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# vward clinical safety case report",
		"| C-T-VWARD-KILLED | test | vward killed mid-stream loses nothing. (`internal/node:TestFaultVwardKilled`) | passed |",
		"| C-S-COPD-SCALE2 | scenario |", "**FAILED**",
		"test evidence | " + results,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the report lacks %q", want)
		}
	}

	if _, err := runCLI(t, "safety", "report", "--log", log, "--results", filepath.Join(t.TempDir(), "none.json")); err == nil ||
		!strings.Contains(err.Error(), "test results:") {
		t.Errorf("a missing results file: %v, want an error naming it", err)
	}
	if _, err := runCLI(t, "safety", "check", "--log", "nowhere.yaml"); err == nil || !strings.Contains(err.Error(), "read the hazard log") {
		t.Errorf("a missing log: %v, want an error saying so", err)
	}
}
