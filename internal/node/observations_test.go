package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
	"github.com/vward/vward/sqlitedb"
)

// partialMessage is a home device's message: SpO2, pulse, blood pressure
// and temperature, but no respiratory rate, consciousness or oxygen.
func partialMessage(msgID string, at time.Time) []byte {
	return []byte(fmt.Sprintf(`{"msg_id":%q,"ts":%q,"readings":[
		{"type":"spo2","value":96},{"type":"systolic_bp","value":124},
		{"type":"heart_rate","value":72},{"type":"temperature","value":36.9}]}`, msgID, at.UTC().Format(time.RFC3339)))
}

// A clinician on the telephone completes a patient's set in the browser:
// the board rescores at once, and marking the entry entered in error
// rescores it back. A viewer sees no form.
func TestObservationEntryInBrowser(t *testing.T) {
	s := start(t)
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device), partialMessage("ox-1-1", time.Now().Add(-5*time.Minute)))
	eventually(t, "the device's readings scored", func() bool {
		row, ok := s.node.Monitor.Patient(patient)
		return ok && row.Scored
	})

	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	click(t, b, `tr[data-patient="p1"]`)
	step(t, b, "open the patient", chromedp.WaitVisible("#obs-form"))
	if got := text(t, b, "#pv-score"); !strings.Contains(got, "partial") || !strings.Contains(got, "respiratory rate") {
		t.Fatalf("before the call, the score says %q; want partial, missing respiratory rate", got)
	}
	// The keyboard alone: the first field has focus, Tab moves on, Enter submits.
	read(t, b, "focus on the respiratory rate field", chromedp.Poll[bool](`document.activeElement.id === "obs-respiratory_rate"`,
		chromedp.WithPollingTimeout(15*time.Second)))
	step(t, b, "enter the telephone round",
		chromedp.SendKeys("#obs-respiratory_rate", "25"),
		chromedp.SetValue("#obs-consciousness", "A"),
		chromedp.SetValue("#obs-source", "telephone"),
		chromedp.SendKeys("#obs-temperature", "\r"))
	read(t, b, "the entry answered", chromedp.Poll[bool](`document.getElementById("obs-result").textContent.includes("obs-1 entered")`,
		chromedp.WithPollingTimeout(15*time.Second)))
	// A board update fetched just before the entry may still arrive after
	// the answer; the next one brings the rescored row.
	read(t, b, "the rescored set shown", chromedp.Poll[bool](`!document.getElementById("pv-score").textContent.includes("partial")`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if score, num := text(t, b, "#pv-score"), text(t, b, "#pv-score .num"); strings.Contains(score, "partial") || num != "3" {
		t.Errorf("after the call, the score says %q (NEWS2 %s); want a complete NEWS2 3", score, num)
	}
	if got := read(t, b, "board row", chromedp.Evaluate[string](`JSON.stringify([patients.get("p1").news2.complete, patients.get("p1").news2.score])`)); got != "[true,3]" {
		t.Errorf("the board's row of p1 is [complete, score] %s, want [true,3]", got)
	}
	row, _ := s.node.Monitor.Patient(patient)
	if !row.Result.Complete || row.Result.Score != 3 {
		t.Errorf("the monitor scores %+v, want complete 3", row.Result)
	}
	// The list is fetched again after the entry: wait for it.
	read(t, b, "the entry listed", chromedp.Poll[bool](`!!document.querySelector('.entry[data-entry="obs-1"]')`,
		chromedp.WithPollingTimeout(15*time.Second)))
	entries := text(t, b, "#tl-items")
	for _, want := range []string{"telephone", nurse, "Respiration rate 25", "Oxygen air", "Consciousness (ACVPU) A"} {
		if !strings.Contains(entries, want) {
			t.Errorf("the entries say %q, not %q", entries, want)
		}
	}
	screenshot(t, b, "observation-entry")

	step(t, b, "mark it entered in error",
		chromedp.SendKeys(`.entry[data-entry="obs-1"] input`, "entered against the wrong patient"))
	click(t, b, `.entry[data-entry="obs-1"] button.error`)
	read(t, b, "rescored without it", chromedp.Poll[bool](`document.getElementById("pv-score").textContent.includes("partial")`,
		chromedp.WithPollingTimeout(15*time.Second)))
	read(t, b, "the entry shows in error", chromedp.Poll[bool](`!!document.querySelector('.entry.in-error[data-entry="obs-1"]')`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if got := read(t, b, "board row after the mark", chromedp.Evaluate[bool](`patients.get("p1").news2.complete`)); got {
		t.Error("after the mark the board's row of p1 is still complete")
	}
	// Another entry, not in error, for the viewer to see.
	step(t, b, "enter a temperature", chromedp.SendKeys("#obs-temperature", "37.2\r"))
	read(t, b, "the second entry answered", chromedp.Poll[bool](`document.getElementById("obs-result").textContent.includes("obs-2 entered")`,
		chromedp.WithPollingTimeout(15*time.Second)))
	// A weight alone, beyond NEWS2: no oxygen or air comes with it.
	step(t, b, "enter a weight", chromedp.SendKeys("#obs-weight", "82.4\r"))
	read(t, b, "the weight listed", chromedp.Poll[bool](`!!document.querySelector('.entry[data-entry="obs-3"]')`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if got := text(t, b, `.entry[data-entry="obs-3"] .values`); got != "Weight 82.4" {
		t.Errorf("the weight's entry says %q, want only \"Weight 82.4\"", got)
	}
	audit, err := s.node.Registry.PatientAudit(context.Background(), patient, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) < 4 || audit[2].Action != "observation.entered_in_error" || audit[2].Actor != nurse || audit[3].Action != "observation.enter" {
		t.Errorf("audit: %+v", audit)
	}

	v := browser(t)
	signInBoard(t, v, s.node.URL(), viewer)
	click(t, v, `tr[data-patient="p1"]`)
	step(t, v, "viewer opens the patient", chromedp.WaitVisible(`.entry[data-entry="obs-2"]`))
	if got := read(t, v, "viewer's form", chromedp.Evaluate[bool](`document.getElementById("obs-form").hidden && !document.querySelector(".entry button")`)); !got {
		t.Error("a viewer sees the observation form or an entered-in-error button")
	}
}

// An entry made with the CLI (another process, the SQL store alone) reaches
// the running node: scored, stored in the history; and so does its mark.
func TestObservationFromAnotherProcess(t *testing.T) {
	var dataDir string
	s := start(t, func(c *node.Config) { dataDir = c.DataDir })
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(dataDir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	store, err := observations.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := store.Enter(devices.WithActor(ctx, "cli:nurse"), patient, observations.Input{Source: "care_home_staff",
		Readings: map[string]json.RawMessage{"respiratory_rate": json.RawMessage("24")}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node scores the entry", func() bool {
		row, _ := s.node.Monitor.Patient(patient)
		return row.Vitals[vward.RespiratoryRate.Index()].Value == 24 && row.Result.Subscores[news2.RespiratoryRate] == 2
	})
	eventually(t, "the node stores the entry", func() bool {
		got, err := store.Entry(ctx, e.ID)
		return err == nil && got.Stored
	})
	rs, err := s.node.History.Readings(ctx, patient, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil || len(rs) != 1 || rs[0].Device != "person:care_home_staff" || rs[0].Value != 24 {
		t.Errorf("history: %+v %v", rs, err)
	}
	if _, err := store.MarkEnteredInError(devices.WithActor(ctx, "cli:nurse"), e.ID, "wrong resident"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node drops the entry", func() bool {
		row, _ := s.node.Monitor.Patient(patient)
		return row.Vitals[vward.RespiratoryRate.Index()].Kind == ""
	})
}
