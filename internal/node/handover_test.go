package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
)

// A clinician hands a patient at high risk over to 999 from the alert in
// the patient view, sees the SBARD with the patient's latest set, and
// later records the outcome; a viewer can do neither.
func TestHandoverInBrowser(t *testing.T) {
	s := start(t)
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-h1", time.Now().Add(-2*time.Minute), 26, 91, 98, 124, "C", 39.2))
	eventually(t, "a high alert raised", func() bool {
		as, err := s.node.Alerts.Alerts(context.Background(), alerting.Filter{State: "open", Patient: patient, Condition: alerting.News2})
		return err == nil && len(as) == 1
	})

	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	click(t, b, `tr[data-patient="p1"]`)
	step(t, b, "open the patient", chromedp.WaitVisible(`#tl-items li.tl-alert button.handover`))
	click(t, b, `#tl-items li.tl-alert button.handover`)
	step(t, b, "the handover dialog", chromedp.WaitVisible("#handover-destination"))
	step(t, b, "hand over to 999",
		chromedp.SetValue("#handover-destination", "999"),
		chromedp.SendKeys("#handover-note", "lives alone, key safe 1234"),
		chromedp.Click(`#handover-form button[type="submit"]`),
		chromedp.WaitVisible("#handover-text"))
	sbard := text(t, b, "#handover-text")
	for _, want := range []string{
		"SBARD handover: Test Patient to 999 emergency ambulance",
		"S — SITUATION", "B — BACKGROUND", "A — ASSESSMENT", "R — RECOMMENDATION", "D — DECISION",
		"high risk (complete set)", "Emergency response",
		"Respiratory rate:      26 /min    [3]", "SpO₂:                  91 %       [3]", "Consciousness (ACVPU): C          [3]",
		"device ox-1", "Note: lives alone, key safe 1234", "Handed over by nurse",
	} {
		if !strings.Contains(sbard, want) {
			t.Errorf("the SBARD shown lacks %q:\n%s", want, sbard)
		}
	}
	if got := read(t, b, "copy and print offered", chromedp.Evaluate[bool](
		`!document.getElementById("handover-copy").hidden && !document.getElementById("handover-print").hidden`)); !got {
		t.Error("no Copy or Print button beside the SBARD")
	}
	screenshot(t, b, "handover")
	// Printed, the page is the SBARD alone.
	media := func(m string) {
		if _, err := chromedp.Call(b, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: m}); err != nil {
			t.Fatalf("emulate media %q: %v", m, err)
		}
	}
	media("print")
	if got := read(t, b, "what prints", chromedp.Evaluate[string](`JSON.stringify(["patient-view", "main", "handover-copy", "handover-destination", "handover-text"].map(
		id => document.getElementById(id).getClientRects().length > 0))`)); got != `[false,false,false,false,true]` {
		t.Errorf("printed, the patient view, board, Copy button, destination and SBARD are shown %s; want only the SBARD", got)
	}
	media("")
	step(t, b, "close the dialog", chromedp.Click("#handover-close"), chromedp.WaitNotVisible("#handover-dialog"))

	read(t, b, "the handover listed on the alert", chromedp.Poll[bool](
		`!!document.querySelector('#tl-items .handover-record select')`, chromedp.WithPollingTimeout(15*time.Second)))
	if got := text(t, b, "#tl-items li.tl-alert.act-handover"); !strings.Contains(got, "handed over to 999 emergency ambulance") || !strings.Contains(got, "by nurse") {
		t.Errorf("the handover on the timeline says %q", got)
	}
	screenshot(t, b, "handover-record")
	step(t, b, "record the outcome",
		chromedp.SetValue("#tl-items .handover-record select", "conveyed"),
		chromedp.SendKeys("#tl-items .handover-record input", "to QEQM"))
	click(t, b, "#tl-items .handover-record button.outcome")
	read(t, b, "the outcome shown", chromedp.Poll[bool](
		`(document.querySelector('#tl-items .handover-record .outcome') || {}).textContent?.includes("conveyed to hospital")`, chromedp.WithPollingTimeout(15*time.Second)))

	as, err := s.node.Alerts.Alerts(context.Background(), alerting.Filter{Patient: patient, Condition: alerting.News2})
	if err != nil || len(as) != 1 {
		t.Fatalf("alerts: %v %v", as, err)
	}
	_, audit, err := s.node.Alerts.Alert(context.Background(), as[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		if e.Actor == nurse {
			actions = append(actions, e.Action)
		}
	}
	if strings.Join(actions, ",") != "handover,handover_outcome" {
		t.Errorf("the nurse's audit entries on the alert: %v", actions)
	}

	v := browser(t)
	signInBoard(t, v, s.node.URL(), viewer)
	click(t, v, `tr[data-patient="p1"]`)
	step(t, v, "viewer opens the patient", chromedp.WaitVisible(`#tl-items .handover-record .outcome`))
	if got := read(t, v, "viewer's buttons", chromedp.Evaluate[bool](
		`!document.querySelector("#tl-items button.handover") && !document.querySelector("#tl-items button.outcome")`)); !got {
		t.Error("a viewer is offered a handover or an outcome")
	}
}
