package notes_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/notes"
	"github.com/vward/vward/sqlitedb"
)

func open(t *testing.T) (context.Context, *devices.Registry, *notes.Store, func(q string, args ...any) error) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.AddWard(ctx, devices.Ward{ID: "w1", Name: "w1"}); err != nil {
		t.Fatal(err)
	}
	admitted := time.Now().Add(-48 * time.Hour)
	for _, p := range []devices.Patient{{ID: "p1", Ward: "w1", Name: "Ada", Admitted: admitted}, {ID: "p2", Ward: "w1", Name: "Bea"}} {
		if err := reg.Admit(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	store, err := notes.Open(ctx, db, reg)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) error { _, err := db.ExecContext(ctx, q, args...); return err }
	return devices.WithActor(ctx, "nurse.khan"), reg, store, exec
}

func TestAddRefusals(t *testing.T) {
	ctx, reg, store, _ := open(t)
	now := time.Now()
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	for _, c := range []struct {
		name    string
		patient vward.PatientID
		in      notes.Input
		kind    error
		says    string
	}{
		{"no kind", "p1", notes.Input{Text: "called"}, vward.ErrInvalid, "kind is required: one of phone_call, visit, mdt_review, message_left, no_answer, note"},
		{"unknown kind", "p1", notes.Input{Kind: "fax", Text: "sent"}, vward.ErrInvalid, `kind "fax" is not one of`},
		{"addendum as a kind", "p1", notes.Input{Kind: "addendum", Text: "x"}, vward.ErrInvalid, `kind "addendum" is not one of`},
		{"no text", "p1", notes.Input{Kind: "phone_call"}, vward.ErrInvalid, "text is required"},
		{"blank text", "p1", notes.Input{Kind: "phone_call", Text: " \n\t "}, vward.ErrInvalid, "text is required"},
		{"too long", "p1", notes.Input{Kind: "note", Text: strings.Repeat("é", notes.MaxText+1)}, vward.ErrInvalid, "text is 4001 characters long; at most 4000"},
		{"control character", "p1", notes.Input{Kind: "note", Text: "rang\x07 twice"}, vward.ErrInvalid, "control character (U+0007) at character 5"},
		{"malformed time", "p1", notes.Input{Kind: "visit", Text: "seen", OccurredAt: "14:05"}, vward.ErrInvalid, `occurred_at "14:05" is not an RFC 3339 time`},
		{"future", "p1", notes.Input{Kind: "visit", Text: "seen", OccurredAt: rfc(now.Add(10 * time.Minute))}, vward.ErrInvalid, "in the future (allowed skew 2m0s)"},
		{"before the stay", "p1", notes.Input{Kind: "visit", Text: "seen", OccurredAt: rfc(now.Add(-72 * time.Hour))}, vward.ErrInvalid, "before p1 was admitted"},
		{"unknown patient", "p9", notes.Input{Kind: "visit", Text: "seen"}, vward.ErrNotFound, "p9"},
	} {
		_, err := store.Add(ctx, c.patient, c.in)
		if !errors.Is(err, c.kind) || err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want %v saying %q", c.name, err, c.kind, c.says)
		}
	}
	// The edges that pass: at the limit of length, within the skew, early in the stay.
	for name, in := range map[string]notes.Input{
		"4000 characters": {Kind: "note", Text: strings.Repeat("a", notes.MaxText)},
		"a minute ahead":  {Kind: "phone_call", Text: "called", OccurredAt: rfc(now.Add(time.Minute))},
		"the first day":   {Kind: "visit", Text: "admission visit", OccurredAt: rfc(now.Add(-47 * time.Hour))},
		"lines and tabs":  {Kind: "mdt_review", Text: "plan:\n\t1. oxygen\r\n\t2. review"},
	} {
		if _, err := store.Add(ctx, "p1", in); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := reg.Discharge(ctx, "p2", "recovered", "well", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Add(ctx, "p2", notes.Input{Kind: "phone_call", Text: "called"}); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("a note for a discharged patient: %v, want a conflict", err)
	}
}

// A note is never changed or removed: a correction is an addendum under
// it, each audited in the patient's audit.
func TestAddendumOnly(t *testing.T) {
	ctx, reg, store, exec := open(t)
	n, err := store.Add(ctx, "p1", notes.Input{Kind: "phone_call", Text: "  Spoke to daughter: more breathless.  ",
		OccurredAt: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	if n.Name() != "note-1" || n.Text != "Spoke to daughter: more breathless." || n.Author != "nurse.khan" || n.Ward != "w1" || n.Amends != 0 {
		t.Errorf("note: %+v", n)
	}
	later, err := store.Add(ctx, "p1", notes.Input{Kind: "no_answer", Text: "no answer on the landline"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.Addendum(devices.WithActor(context.Background(), "dr.osei"), n.ID, "It was the son, not the daughter.")
	if err != nil {
		t.Fatal(err)
	}
	if a.Kind != notes.Addendum || a.Amends != n.ID || a.Author != "dr.osei" || time.Since(a.OccurredAt) > time.Minute {
		t.Errorf("addendum: %+v", a)
	}
	if _, err := store.Addendum(ctx, a.ID, "again"); !errors.Is(err, vward.ErrInvalid) || !strings.Contains(err.Error(), "note-3 is an addendum to note-1: add the addendum to note-1") {
		t.Errorf("an addendum to an addendum: %v", err)
	}
	if _, err := store.Addendum(ctx, 99, "x"); !errors.Is(err, vward.ErrNotFound) {
		t.Errorf("an addendum to no note: %v", err)
	}
	if _, err := store.Addendum(ctx, n.ID, " "); !errors.Is(err, vward.ErrInvalid) {
		t.Errorf("an empty addendum: %v", err)
	}
	for _, q := range []string{`UPDATE patient_notes SET text = 'changed' WHERE id = 1`, `DELETE FROM patient_notes WHERE id = 1`} {
		if err := exec(q); err == nil || !strings.Contains(err.Error(), "add an addendum") {
			t.Errorf("%s: %v, want it refused", q, err)
		}
	}

	got, err := store.List(context.Background(), "p1", time.Now().Add(-24*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, g := range got {
		order = append(order, g.Name())
	}
	// Newest note first; the addendum under the note it amends.
	if strings.Join(order, " ") != "note-2 note-1 note-3" {
		t.Errorf("list order %v, want note-2 note-1 note-3", order)
	}
	th := notes.Thread(got)
	if len(th) != 2 || th[0].ID != later.Name() || len(th[1].Addenda) != 1 || th[1].Addenda[0].Amends != "note-1" {
		t.Errorf("thread: %+v", th)
	}
	// A window that leaves the older note out leaves its addendum out too.
	recent, err := store.Recent(context.Background(), "p1", time.Now().Add(-30*time.Minute))
	if err != nil || len(recent) != 1 || recent[0].ID != later.ID {
		t.Errorf("recent: %+v %v", recent, err)
	}

	audit, err := reg.PatientAudit(context.Background(), "p1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) < 3 || audit[0].Action != "note.addendum" || audit[0].Actor != "dr.osei" ||
		!strings.Contains(audit[0].Detail, "note-3 amends note-1 (phone_call of") || !strings.Contains(audit[0].Detail, "It was the son") ||
		audit[2].Action != "note.add" || !strings.Contains(audit[2].Detail, "note-1 phone_call") || audit[2].Actor != "nurse.khan" {
		t.Errorf("audit: %+v", audit)
	}
}

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{{"note-12", 12, true}, {"12", 12, true}, {"note-0", 0, false}, {"obs-1", 0, false}, {"", 0, false}, {"note-x", 0, false}} {
		got, err := notes.ParseName(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseName(%q) = %d, %v", c.in, got, err)
		}
		if err != nil && !errors.Is(err, vward.ErrNotFound) {
			t.Errorf("ParseName(%q): %v is not a not-found", c.in, err)
		}
	}
}
