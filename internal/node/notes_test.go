package node_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vward/vward"
)

// A clinician writes a contact in the patient view, and it appears on the
// one timeline with an entered observation and the alert's events, newest
// first; an addendum shows under it; the alert is acknowledged from the
// timeline. A viewer reads it all and sees no form and no action.
func TestNotesTimelineInBrowser(t *testing.T) {
	s := start(t)
	// NEWS2 8: a high alert is raised.
	publish(t, s.broker.URL, "ox-1-c", vward.ReadingsTopic(device),
		vitalsMessage("ox-1-1", time.Now().Add(-10*time.Second), 26, 91, 98, 124, "C", 39.2))
	eventually(t, "the alert raised", func() bool { return s.node.Alerts.HasOpenAlerts(patient) })

	b := browser(t)
	signInBoard(t, b, s.node.URL(), nurse)
	click(t, b, `tr[data-patient="p1"]`)
	step(t, b, "open the patient", chromedp.WaitVisible("#note-form"),
		chromedp.WaitVisible(`#tl-items .tl-alert.act-raised`))

	step(t, b, "enter a temperature", chromedp.SendKeys("#obs-temperature", "38.9\r"))
	read(t, b, "the entry answered", chromedp.Poll[bool](`document.getElementById("obs-result").textContent.includes("obs-1 entered")`,
		chromedp.WithPollingTimeout(15*time.Second)))

	step(t, b, "write a contact",
		chromedp.SetValue("#note-kind", "phone_call"),
		chromedp.SendKeys("#note-text", "Spoke to daughter: more breathless since lunch. GP informed."),
		chromedp.Click(`#note-form button[type="submit"]`))
	read(t, b, "the note on the timeline", chromedp.Poll[bool](`!!document.querySelector('#tl-items .tl-note[data-note="note-1"]')`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if got := text(t, b, "#note-result"); !strings.Contains(got, "note-1 written: Phone call") {
		t.Errorf("after writing, the form says %q", got)
	}
	if got := read(t, b, "the form emptied", chromedp.Evaluate[string](`document.getElementById("note-text").value`)); got != "" {
		t.Errorf("the note's text stays in the form: %q", got)
	}
	note := text(t, b, `.tl-note[data-note="note-1"]`)
	for _, want := range []string{"Phone call", "by " + nurse, "Spoke to daughter: more breathless since lunch. GP informed."} {
		if !strings.Contains(note, want) {
			t.Errorf("the note reads %q, without %q", note, want)
		}
	}

	// One timeline, newest first: the note, the entry, the alert's raise.
	order := read(t, b, "the timeline's order", chromedp.Evaluate[[]string](`[...document.querySelectorAll("#tl-items > li")].map(li =>
		(li.dataset.note || li.dataset.entry || ("alert-" + li.dataset.alert)) + "@" + li.querySelector("time").dateTime)`))
	var kinds []string
	for i, o := range order {
		name, at, _ := strings.Cut(o, "@")
		kinds = append(kinds, name)
		if i > 0 {
			_, prev, _ := strings.Cut(order[i-1], "@")
			if p, _ := time.Parse(time.RFC3339Nano, prev); p.Before(parse(t, at)) {
				t.Errorf("the timeline is not newest first: %v", order)
			}
		}
	}
	if len(kinds) != 3 || kinds[0] != "note-1" || kinds[1] != "obs-1" || !strings.HasPrefix(kinds[2], "alert-") {
		t.Errorf("the timeline holds %v, want note-1, obs-1 and the alert's raise", kinds)
	}

	step(t, b, "write an addendum", chromedp.Click(`.tl-note[data-note="note-1"] button.addendum`),
		chromedp.SendKeys(`.tl-note[data-note="note-1"] .addendum-form textarea`, "It was the son, not the daughter."))
	click(t, b, `.tl-note[data-note="note-1"] button.save-addendum`)
	read(t, b, "the addendum under the note", chromedp.Poll[bool](`!!document.querySelector('.tl-note[data-note="note-1"] ol.addenda li[data-note="note-2"]')`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if got := text(t, b, `.tl-note[data-note="note-1"]`); !strings.Contains(got, "Spoke to daughter") || !strings.Contains(got, "It was the son, not the daughter.") {
		t.Errorf("the note with its addendum reads %q; want both, the note unchanged", got)
	}

	step(t, b, "acknowledge from the timeline", chromedp.SendKeys(`.tl-alert input`, "calling her now"))
	click(t, b, `.tl-alert button.ack`)
	read(t, b, "the acknowledgement on the timeline", chromedp.Poll[bool](`!!document.querySelector('#tl-items .tl-alert.act-acknowledged')`,
		chromedp.WithPollingTimeout(15*time.Second)))
	if got := text(t, b, "#tl-items .tl-alert.act-acknowledged"); !strings.Contains(got, "by "+nurse) || !strings.Contains(got, "calling her now") {
		t.Errorf("the acknowledgement reads %q", got)
	}
	if got := read(t, b, "the alert's note field", chromedp.Evaluate[string](`document.querySelector(".tl-alert input").value`)); got != "" {
		t.Errorf("after the acknowledgement its note field still holds %q", got)
	}
	// The note form and the timeline below it, clear of the sticky header.
	read(t, b, "scroll to the note form", chromedp.Evaluate[bool](`(() => {
		window.scrollTo(0, document.getElementById("note-form").getBoundingClientRect().top + window.scrollY - 70); return true; })()`))
	viewportShot(t, b, "timeline")

	audit, err := s.node.Registry.PatientAudit(context.Background(), patient, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range audit {
		if strings.HasPrefix(e.Action, "note.") {
			actions = append(actions, e.Action+" by "+e.Actor)
		}
	}
	if strings.Join(actions, ", ") != "note.addendum by "+nurse+", note.add by "+nurse {
		t.Errorf("the patient's audit of notes: %v", actions)
	}

	v := browser(t)
	signInBoard(t, v, s.node.URL(), viewer)
	click(t, v, `tr[data-patient="p1"]`)
	step(t, v, "viewer opens the patient", chromedp.WaitVisible(`.tl-note[data-note="note-1"] ol.addenda li`))
	if got := read(t, v, "viewer's controls", chromedp.Evaluate[string](`JSON.stringify([document.getElementById("note-form").hidden,
		document.querySelectorAll("#tl-items button, #tl-items input, #tl-items textarea").length])`)); got != "[true,0]" {
		t.Errorf("a viewer's [note form hidden, timeline controls] are %s, want [true,0]", got)
	}
}

func parse(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return at
}
