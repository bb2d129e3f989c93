package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/notes"
	"github.com/vward/vward/observations"
)

// notesAPI serves the notes, observation, alert and timeline routes on a
// real registry, alert engine, monitor and in-memory history.
type notesAPI struct {
	*alertAPI
	reg   *devices.Registry
	notes *notes.Store
}

func newNotesAPI(t *testing.T) *notesAPI {
	t.Helper()
	r := newWardsRig(t, adaAndBea())
	ctx, log, db, reg, e, m := r.ctx, r.log, r.db, r.reg, r.engine, r.monitor
	entries, err := observations.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := notes.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	hist := history.NewMemory(1000)
	s := NewServer(ctx, Deps{Monitor: m, History: hist, Registry: reg, Alerts: e, Notes: ns,
		Observations: observations.NewService(entries, hist, m, log), Log: log})
	mux := http.NewServeMux()
	s.alertRoutes(mux)
	s.observationRoutes(mux)
	s.noteRoutes(mux)
	s.timelineRoutes(mux)
	srv := asTestUser(t, mux)
	return &notesAPI{alertAPI: &alertAPI{url: srv.URL, engine: e, monitor: m}, reg: reg, notes: ns}
}

func (a *notesAPI) addNote(t *testing.T, user string, p vward.PatientID, body string) (int, notes.View, string) {
	t.Helper()
	code, b := a.do(t, user, "POST", "/api/v1/patients/"+string(p)+"/notes", body)
	var out struct{ Note notes.View }
	_ = json.Unmarshal(b, &out)
	return code, out.Note, string(b)
}

func TestNotesAPI(t *testing.T) {
	api := newNotesAPI(t)
	at := time.Now().Add(-20 * time.Minute).UTC().Format(time.RFC3339)
	code, n, raw := api.addNote(t, alice, "p1", fmt.Sprintf(`{"kind":"phone_call","text":"Spoke to daughter: more breathless since lunch.","occurred_at":%q}`, at))
	if code != http.StatusCreated {
		t.Fatalf("add: %d %s", code, raw)
	}
	if n.ID != "note-1" || n.Kind != notes.PhoneCall || n.Author != "alice" || n.Ward != "w1" || n.OccurredAt.Format(time.RFC3339) != at {
		t.Errorf("note: %+v", n)
	}
	code, b := api.do(t, alice, "POST", "/api/v1/notes/note-1/addenda", `{"text":"It was the son, not the daughter."}`)
	if code != http.StatusCreated || !strings.Contains(string(b), `"amends":"note-1"`) || !strings.Contains(string(b), `"kind":"addendum"`) {
		t.Fatalf("addendum: %d %s", code, b)
	}
	// A viewer reads the notes with their addenda.
	code, b = api.do(t, vera, "GET", "/api/v1/patients/p1/notes", "")
	var list struct{ Notes []notes.View }
	_ = json.Unmarshal(b, &list)
	if code != 200 || len(list.Notes) != 1 || len(list.Notes[0].Addenda) != 1 || list.Notes[0].Addenda[0].Author != "alice" {
		t.Errorf("viewer's list: %d %s", code, b)
	}
	audit, err := api.reg.PatientAudit(context.Background(), "p1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) < 2 || audit[0].Action != "note.addendum" || audit[1].Action != "note.add" || audit[1].Actor != "alice" {
		t.Errorf("audit: %+v", audit)
	}
}

func TestNotesAPIRefusals(t *testing.T) {
	api := newNotesAPI(t)
	if code, _, raw := api.addNote(t, alice, "p1", `{"kind":"visit","text":"seen at home"}`); code != 201 {
		t.Fatalf("add: %d %s", code, raw)
	}
	if code, _, raw := api.addNote(t, bob, "p2", `{"kind":"visit","text":"seen at home"}`); code != 201 {
		t.Fatalf("add on w2: %d %s", code, raw)
	}
	ok := `{"kind":"phone_call","text":"called"}`
	future := time.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name, user, method, path, body string
		code                           int
		says                           string
	}{
		{"viewer adds", vera, "POST", "/api/v1/patients/p1/notes", ok, 403, "viewer"},
		{"another ward's patient", alice, "POST", "/api/v1/patients/p2/notes", ok, 404, "no such patient"},
		{"another ward's list", alice, "GET", "/api/v1/patients/p2/notes", "", 404, "no such patient"},
		{"unknown patient", alice, "POST", "/api/v1/patients/p9/notes", ok, 404, "no such patient"},
		{"unknown kind", alice, "POST", "/api/v1/patients/p1/notes", `{"kind":"fax","text":"sent"}`, 400, `kind \"fax\" is not one of phone_call`},
		{"no kind", alice, "POST", "/api/v1/patients/p1/notes", `{"text":"called"}`, 400, "kind is required"},
		{"empty text", alice, "POST", "/api/v1/patients/p1/notes", `{"kind":"phone_call","text":"  "}`, 400, "text is required"},
		{"too long", alice, "POST", "/api/v1/patients/p1/notes", fmt.Sprintf(`{"kind":"note","text":%q}`, strings.Repeat("x", 4001)), 400, "text is 4001 characters long"},
		{"future", alice, "POST", "/api/v1/patients/p1/notes", fmt.Sprintf(`{"kind":"visit","text":"seen","occurred_at":%q}`, future), 400, "in the future (allowed skew 2m0s)"},
		{"malformed time", alice, "POST", "/api/v1/patients/p1/notes", `{"kind":"visit","text":"seen","occurred_at":"yesterday"}`, 400, `occurred_at \"yesterday\" is not an RFC 3339 time`},
		{"before the stay", alice, "POST", "/api/v1/patients/p1/notes", fmt.Sprintf(`{"kind":"visit","text":"seen","occurred_at":%q}`, time.Now().Add(-72*time.Hour).UTC().Format(time.RFC3339)), 400, "before p1 was admitted"},
		{"unknown field", alice, "POST", "/api/v1/patients/p1/notes", `{"kind":"visit","text":"seen","author":"someone else"}`, 400, `unknown field \"author\"`},
		{"viewer's addendum", vera, "POST", "/api/v1/notes/note-1/addenda", `{"text":"x"}`, 403, "viewer"},
		{"another ward's addendum", alice, "POST", "/api/v1/notes/note-2/addenda", `{"text":"x"}`, 404, "no such note"},
		{"no such note", alice, "POST", "/api/v1/notes/note-99/addenda", `{"text":"x"}`, 404, "no such note"},
		{"not a note id", alice, "POST", "/api/v1/notes/obs-1/addenda", `{"text":"x"}`, 404, "no such note"},
		{"empty addendum", alice, "POST", "/api/v1/notes/note-1/addenda", `{"text":""}`, 400, "text is required"},
		{"addendum's unknown field", alice, "POST", "/api/v1/notes/note-1/addenda", `{"text":"x","kind":"visit"}`, 400, `unknown field \"kind\"`},
		{"no way to change a note", alice, "PUT", "/api/v1/notes/note-1", `{"text":"x"}`, 404, ""},
		{"no way to change an addendum", alice, "DELETE", "/api/v1/notes/note-1/addenda", "", 405, ""},
	} {
		code, b := api.do(t, c.user, c.method, c.path, c.body)
		if code != c.code || !strings.Contains(string(b), c.says) {
			t.Errorf("%s: %d %s, want %d saying %q", c.name, code, b, c.code, c.says)
		}
	}
	if ns, _ := api.notes.List(context.Background(), "p1", time.Time{}, 10); len(ns) != 1 {
		t.Errorf("refused notes were kept: %+v", ns)
	}
}

// The timeline merges the entered observations, the notes with their
// addenda and the alert events, newest first, and keeps to its window.
func TestTimeline(t *testing.T) {
	api := newNotesAPI(t)
	// An alert raised a minute ago (the readings' time), then acknowledged.
	api.deteriorate("p1", "w1")
	as, err := api.engine.Alerts(context.Background(), alerting.Filter{Patient: "p1"})
	if err != nil || len(as) != 1 {
		t.Fatalf("alerts: %+v %v", as, err)
	}
	if _, err := api.engine.Acknowledge(context.Background(), as[0].ID, "alice", "calling her now"); err != nil {
		t.Fatal(err)
	}
	ago := func(d time.Duration) string { return time.Now().Add(-d).UTC().Format(time.RFC3339) }
	code, b := api.do(t, alice, "POST", "/api/v1/patients/p1/observations",
		fmt.Sprintf(`{"source":"telephone","measured_at":%q,"readings":{"respiratory_rate":22}}`, ago(30*time.Minute)))
	if code != 201 {
		t.Fatalf("observation: %d %s", code, b)
	}
	if code, _, raw := api.addNote(t, alice, "p1", fmt.Sprintf(`{"kind":"no_answer","text":"no answer on the mobile","occurred_at":%q}`, ago(10*time.Minute))); code != 201 {
		t.Fatalf("note: %d %s", code, raw)
	}
	if code, b := api.do(t, alice, "POST", "/api/v1/notes/note-1/addenda", `{"text":"the number was out of date"}`); code != 201 {
		t.Fatalf("addendum: %d %s", code, b)
	}
	// p2's note is not on p1's timeline.
	if code, _, raw := api.addNote(t, bob, "p2", `{"kind":"visit","text":"seen"}`); code != 201 {
		t.Fatalf("p2's note: %d %s", code, raw)
	}

	get := func(user, query string) (int, Timeline, string) {
		code, b := api.do(t, user, "GET", "/api/v1/patients/p1/timeline"+query, "")
		var tl Timeline
		_ = json.Unmarshal(b, &tl)
		return code, tl, string(b)
	}
	code, tl, raw := get(vera, "")
	if code != 200 {
		t.Fatalf("timeline: %d %s", code, raw)
	}
	var got []string
	for _, it := range tl.Items {
		switch it.Type {
		case ItemObservation:
			got = append(got, "observation "+it.Observation.ID+" by "+it.By)
		case ItemNote:
			got = append(got, fmt.Sprintf("note %s by %s, %d addenda", it.Note.ID, it.By, len(it.Note.Addenda)))
		case ItemAlert:
			got = append(got, fmt.Sprintf("alert %s by %s, now %s", it.Event.Action, it.By, it.Alert.State))
			if it.Event.Observations != nil {
				t.Errorf("an alert event carries its evidence: %s", it.Event.Observations)
			}
		}
	}
	// The acknowledgement happened now, after the note's 10 minutes ago;
	// the raise at the readings' arrival, also now: both before the note.
	want := []string{
		"alert acknowledged by alice, now acknowledged",
		"alert raised by system, now acknowledged",
		"note note-1 by alice, 1 addenda",
		"observation obs-1 by alice",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("timeline:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if tl.Truncated || len(tl.Unavailable) != 0 || tl.To.Sub(tl.From) != 24*time.Hour {
		t.Errorf("timeline bounds: from %v to %v, truncated %v, unavailable %v", tl.From, tl.To, tl.Truncated, tl.Unavailable)
	}

	for _, c := range []struct {
		name, user, query string
		code              int
	}{
		{"another ward", bob, "", 404},
		{"hours=0", alice, "?hours=0", 400},
		{"hours=1.5", alice, "?hours=1.5", 400},
		{"hours=745", alice, "?hours=745", 400},
	} {
		if code, _, raw := get(c.user, c.query); code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, raw, c.code)
		}
	}
}

func TestMergeTimeline(t *testing.T) {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	item := func(typ string, min int) TimelineItem {
		return TimelineItem{Type: typ, At: base.Add(time.Duration(min) * time.Minute)}
	}
	for _, c := range []struct {
		name      string
		parts     []timelinePart
		want      string // type@minute, newest first
		from      int
		truncated bool
	}{
		{"empty", nil, "", -60, false},
		{"interleaved, newest first", []timelinePart{
			{items: []TimelineItem{item("o", 5), item("o", -10)}},
			{items: []TimelineItem{item("n", 0), item("n", -20)}},
		}, "o@5 n@0 o@-10 n@-20", -60, false},
		{"a tie keeps the sources' order", []timelinePart{
			{items: []TimelineItem{item("o", 0)}}, {items: []TimelineItem{item("n", 0)}}, {items: []TimelineItem{item("a", 0)}},
		}, "o@0 n@0 a@0", -60, false},
		{"a truncated source starts the timeline at its oldest item", []timelinePart{
			{items: []TimelineItem{item("a", 0), item("a", -5)}, truncated: true},
			{items: []TimelineItem{item("n", -3), item("n", -30)}},
		}, "a@0 n@-3 a@-5", -5, true},
	} {
		items, from, truncated := mergeTimeline(base.Add(-time.Hour), c.parts...)
		var got []string
		for _, it := range items {
			got = append(got, fmt.Sprintf("%s@%d", it.Type, int(it.At.Sub(base).Minutes())))
		}
		if strings.Join(got, " ") != c.want || from != base.Add(time.Duration(c.from)*time.Minute) || truncated != c.truncated {
			t.Errorf("%s: %v from %v truncated %v; want %q from %d truncated %v", c.name, got, from, truncated, c.want, c.from, c.truncated)
		}
	}
}
