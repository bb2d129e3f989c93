package main

import (
	"strings"
	"testing"
	"time"
)

// A nurse logs a call from the command line, corrects it with an
// addendum, and lists the log; bad input is refused naming what is wrong.
func TestPatientsNotesCLI(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	mustCLI(t, "wards", "add", "resp", "--name", "Respiratory", dd)
	mustCLI(t, "patients", "admit", "p1", "--ward", "resp", "--nhs", "943 476 5919", "--name", "Ada Whitfield", dd)

	out := mustCLI(t, "patients", "note", "p1", "--kind", "phone_call", "--text", "Spoke to daughter: more breathless since lunch.",
		"--actor", "nurse.khan", dd)
	if !strings.Contains(out, "note-1 written for p1 (phone_call, by nurse.khan") {
		t.Errorf("note printed:\n%s", out)
	}
	var v struct {
		ID     string `json:"id"`
		Kind   string `json:"kind"`
		Amends string `json:"amends"`
		Author string `json:"author"`
	}
	jsonInto(t, mustCLI(t, "patients", "addendum", "note-1", "--text", "It was the son, not the daughter.", "--actor", "dr.osei", "--json", dd), &v)
	if v.ID != "note-2" || v.Kind != "addendum" || v.Amends != "note-1" || v.Author != "dr.osei" {
		t.Errorf("addendum --json: %+v", v)
	}
	mustCLI(t, "patients", "note", "p1", "--kind", "no_answer", "--at", "-1m", "--text", "No answer on the mobile", dd)

	list := mustCLI(t, "patients", "notes", "p1", dd)
	lines := strings.Split(strings.TrimSpace(list), "\n")
	// Newest first (note-3 happened a minute before the others); the addendum under its note.
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "note-1") || !strings.HasPrefix(lines[3], "note-3") ||
		!strings.Contains(lines[2], "note-2") || !strings.Contains(lines[2], "addendum to note-1") || !strings.Contains(lines[2], "It was the son") {
		t.Errorf("notes listed:\n%s", list)
	}

	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"note", "p1", "--kind", "fax", "--text", "sent"}, `kind "fax" is not one of phone_call, visit, mdt_review, message_left, no_answer, note`},
		{[]string{"note", "p1", "--kind", "visit", "--text", "  "}, "text is required"},
		{[]string{"note", "p1", "--kind", "visit", "--text", strings.Repeat("x", 4001)}, "at most 4000"},
		{[]string{"note", "p1", "--kind", "visit", "--text", "seen", "--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "in the future"},
		{[]string{"note", "p1", "--kind", "visit", "--text", "seen", "--at", "-72h"}, "before p1 was admitted"},
		{[]string{"note", "p9", "--kind", "visit", "--text", "seen"}, "not found"},
		{[]string{"note", "p1", "--text", "seen"}, `"kind" not set`},
		{[]string{"addendum", "note-2", "--text", "again"}, "note-2 is an addendum to note-1"},
		{[]string{"addendum", "note-9", "--text", "x"}, "no note note-9"},
		{[]string{"notes", "p9"}, "not found"},
	} {
		if msg := failCLI(t, "", append(append([]string{"patients"}, c.args...), dd)...); !strings.Contains(msg, c.says) {
			t.Errorf("%v: %s, want it to say %q", c.args, msg, c.says)
		}
	}
	audit := mustCLI(t, "patients", "audit", "p1", dd)
	for _, want := range []string{"note.add", "note-1 phone_call", "note.addendum", "note-2 amends note-1", "dr.osei", "nurse.khan"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit does not say %q:\n%s", want, audit)
		}
	}
}
