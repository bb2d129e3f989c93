package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A doctor starts a patient's care plan from a template, adjusts it from a
// file, reads it in words, ends it, and lists the versions; bad input is
// refused naming what is wrong, and every change is in the audit.
func TestPatientsCarePlanCLI(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	mustCLI(t, "wards", "add", "hf", "--name", "Heart failure", dd)
	mustCLI(t, "patients", "admit", "p1", "--ward", "hf", "--nhs", "943 476 5919", "--name", "Ada Whitfield", dd)

	if list := mustCLI(t, "patients", "careplan", "templates"); !strings.Contains(list, "heart_failure") || !strings.Contains(list, "frailty") {
		t.Errorf("templates:\n%s", list)
	}
	out := mustCLI(t, "patients", "careplan", "set", "p1", "--template", "heart_failure", "--reason", "Admitted with heart failure", "--actor", "dr.patel", dd)
	if !strings.Contains(out, "care plan version 1 set for p1: Heart failure (by dr.patel)") {
		t.Errorf("set from a template printed:\n%s", out)
	}
	// A template printed, edited and put back from a file.
	tmpl := mustCLI(t, "patients", "careplan", "templates", "heart_failure")
	edited := strings.Replace(tmpl, `"rules": [`, `"escalation_plan": {"ceiling": "no_critical_care", "text": "For admission and NIV; not for intubation.",
		"decided_by": "dr.patel", "decided_at": "2026-11-20T15:30:00Z", "review_by": "2027-02-20T00:00:00Z"}, "rules": [`, 1)
	file := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version int    `json:"version"`
		Author  string `json:"author"`
		Reason  string `json:"reason"`
	}
	jsonInto(t, mustCLI(t, "patients", "careplan", "set", "p1", "--file", file, "--base", "1", "--reason", "ReSPECT conversation", "--actor", "dr.osei", "--json", dd), &v)
	if v.Version != 2 || v.Author != "dr.osei" || v.Reason != "ReSPECT conversation" {
		t.Errorf("set --file --json: %+v", v)
	}
	show := mustCLI(t, "patients", "careplan", "show", "p1", dd)
	for _, want := range []string{"p1: Heart failure (from template heart_failure)", "version 2 by dr.osei", "ReSPECT conversation",
		"Treatment escalation plan: no critical care", "decided by dr.patel", "review by 2027-02-",
		"weight every 1d by 10:00", "hf-weight-gain-3d (medium risk)", "when weight up more than 2 kg from the lowest within 3d"} {
		if !strings.Contains(show, want) {
			t.Errorf("show does not say %q:\n%s", want, show)
		}
	}
	out = mustCLI(t, "patients", "careplan", "end", "p1", "--reason", "Back to clinic", dd)
	if !strings.Contains(out, "care plan of p1 ended: version 3") {
		t.Errorf("end printed:\n%s", out)
	}
	hist := mustCLI(t, "patients", "careplan", "history", "p1", dd)
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "3") || !strings.Contains(lines[1], "(ended)") || !strings.Contains(lines[3], "Admitted with heart failure") {
		t.Errorf("history:\n%s", hist)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version": 1, "name": "x", "expected": [{"kind": "wieght", "every": "1d"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		says  string
	}{
		{"", []string{"show", "p1"}, "no current care plan"},
		{"", []string{"set", "p1", "--template", "heart_failure"}, `"reason" not set`},
		{"", []string{"set", "p1", "--reason", "x"}, "give one of --file or --template"},
		{"", []string{"set", "p1", "--template", "heart_failure", "--file", bad, "--reason", "x"}, "give one of --file or --template"},
		{"", []string{"set", "p1", "--template", "gout", "--reason", "x"}, `no care plan template "gout"`},
		{"", []string{"set", "p1", "--file", bad, "--reason", "x"}, `expected[0].kind: "wieght"`},
		{`{"version": 2, "name": "x"}`, []string{"set", "p1", "--file", "-", "--reason", "x"}, "version"},
		{"", []string{"set", "p1", "--file", filepath.Join(dir, "none.json"), "--reason", "x"}, "no such file"},
		{"", []string{"set", "p1", "--template", "frailty", "--reason", "  "}, "reason is required"},
		{"", []string{"set", "p9", "--template", "frailty", "--reason", "x"}, "not found"},
		{"", []string{"end", "p1", "--reason", "again"}, "no current care plan to end"},
		{"", []string{"set", "p1", "--template", "frailty", "--base", "2", "--reason", "x"}, "version 3 by cli:"},
		{"", []string{"history", "p9"}, "not found"},
	} {
		if msg := failCLI(t, c.stdin, append(append([]string{"patients", "careplan"}, c.args...), dd)...); !strings.Contains(msg, c.says) {
			t.Errorf("%v: %s, want it to say %q", c.args, msg, c.says)
		}
	}
	audit := mustCLI(t, "patients", "audit", "p1", dd)
	for _, want := range []string{"careplan.set", "careplan.end", "care plan version 2", "ceiling of care no_critical_care", "dr.osei", "ReSPECT conversation"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit does not say %q:\n%s", want, audit)
		}
	}
}
