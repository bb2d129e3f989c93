package main

import (
	"strings"
	"testing"
	"time"
)

// A nurse enters a telephone round from the command line: it is checked as
// a device's readings are, kept with who entered it, audited, and can be
// marked entered in error.
func TestPatientsObserveCLI(t *testing.T) {
	dir := t.TempDir()
	dd := "--data-dir=" + dir
	mustCLI(t, "wards", "add", "resp", "--name", "Respiratory", dd)
	mustCLI(t, "patients", "admit", "p1", "--ward", "resp", "--nhs", "943 476 5919", "--name", "Ada Whitfield", dd)

	out := mustCLI(t, "patients", "observe", "p1", "--source", "telephone", "--respiratory-rate", "22",
		"--consciousness", "a", "--supplemental-oxygen", "false", "--actor", "nurse.khan", dd)
	if !strings.Contains(out, "obs-1 entered for p1 (telephone, by nurse.khan") {
		t.Errorf("observe printed:\n%s", out)
	}
	var v struct {
		ID       string         `json:"id"`
		Author   string         `json:"entered_by"`
		Readings map[string]any `json:"readings"`
		Current  bool           `json:"current"`
		Note     string         `json:"note"`
	}
	jsonInto(t, mustCLI(t, "patients", "observe", "p1", "--source", "carer", "--at", "-3h", "--temperature", "38.4", "--json", dd), &v)
	if v.ID != "obs-2" || v.Readings["temperature"] != 38.4 || v.Current || !strings.Contains(v.Note, "not part of the current NEWS2") {
		t.Errorf("observe 3 h ago --json: %+v", v)
	}

	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"p1", "--source", "telephone", "--spo2", "105"}, "readings.spo2: value 105 % is outside the possible range 0–100"},
		{[]string{"p1", "--source", "telephone", "--heart-rate", "fast"}, "readings.heart_rate: value fast is not a number"},
		{[]string{"p1", "--source", "telephone", "--consciousness", "drowsy"}, "readings.consciousness"},
		{[]string{"p1", "--source", "pigeon", "--heart-rate", "70"}, `source "pigeon" is not one of`},
		{[]string{"p1", "--source", "telephone"}, "readings is required"},
		{[]string{"p1", "--source", "telephone", "--heart-rate", "70", "--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "in the future"},
		{[]string{"p9", "--source", "telephone", "--heart-rate", "70"}, "not found"},
	} {
		if msg := failCLI(t, "", append(append([]string{"patients", "observe"}, c.args...), dd)...); !strings.Contains(msg, c.says) {
			t.Errorf("observe %v: %s, want it to say %q", c.args, msg, c.says)
		}
	}

	if msg := failCLI(t, "", "patients", "entered-in-error", "obs-1", "--reason", " ", dd); !strings.Contains(msg, "reason is required") {
		t.Errorf("entered-in-error without a reason: %s", msg)
	}
	out = mustCLI(t, "patients", "entered-in-error", "obs-1", "--reason", "wrong patient", "--actor", "nurse.khan", dd)
	if !strings.Contains(out, "obs-1 marked entered in error") {
		t.Errorf("entered-in-error printed:\n%s", out)
	}
	if msg := failCLI(t, "", "patients", "entered-in-error", "obs-1", "--reason", "again", dd); !strings.Contains(msg, "already marked") {
		t.Errorf("marked twice: %s", msg)
	}
	if msg := failCLI(t, "", "patients", "entered-in-error", "obs-7", "--reason", "x", dd); !strings.Contains(msg, "no such observation entry") {
		t.Errorf("an unknown entry: %s", msg)
	}
	audit := mustCLI(t, "patients", "audit", "p1", dd)
	for _, want := range []string{"observation.enter", "obs-1 by telephone", "respiratory_rate 22/min", "consciousness A", "observation.entered_in_error", "wrong patient", "nurse.khan"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit does not say %q:\n%s", want, audit)
		}
	}
}
