// Package notes keeps a patient's notes and contact log: the telephone
// calls, visits, MDT reviews, messages left and unanswered calls of a
// virtual ward, each with who wrote it and when it happened. A note is
// never changed or removed once written; a correction is an addendum, a
// new note linked to the one it amends. SQLite keeps them beside the
// registry, and each is recorded in the patient's audit in the same
// transaction (devices.RecordPatientAudit).
package notes

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vward/vward"
)

// Kind is what a note records.
type Kind string

// The kinds of note a person writes.
const (
	PhoneCall   Kind = "phone_call"
	Visit       Kind = "visit"
	MDTReview   Kind = "mdt_review"
	MessageLeft Kind = "message_left"
	NoAnswer    Kind = "no_answer"
	Plain       Kind = "note"
)

// Addendum is the kind of a note that amends another; it is written with
// Store.Addendum, never given as a note's kind.
const Addendum Kind = "addendum"

// Kinds lists the kinds a note may be written as, in the order the board
// offers them.
var Kinds = []Kind{PhoneCall, Visit, MDTReview, MessageLeft, NoAnswer, Plain}

// ParseKind reads a kind's name.
func ParseKind(s string) (Kind, error) {
	if slices.Contains(Kinds, Kind(s)) {
		return Kind(s), nil
	}
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	if s == "" {
		return "", vward.Errorf(vward.ErrInvalid, "kind is required: one of %s", strings.Join(names, ", "))
	}
	return "", vward.Errorf(vward.ErrInvalid, "kind %q is not one of %s", s, strings.Join(names, ", "))
}

// MaxText bounds a note's text, in characters: a contact log entry, not a
// discharge letter.
const MaxText = 4000

// checkText returns text without surrounding space, refusing an empty or
// over-long text and control characters other than line breaks and tabs
// (which a terminal or the board would show as nothing, or worse).
func checkText(text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", vward.Errorf(vward.ErrInvalid, "text is required: say what happened")
	}
	if !utf8.ValidString(text) {
		return "", vward.Errorf(vward.ErrInvalid, "text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > MaxText {
		return "", vward.Errorf(vward.ErrInvalid, "text is %d characters long; at most %d are kept", n, MaxText)
	}
	for i, r := range []rune(text) {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return "", vward.Errorf(vward.ErrInvalid, "text holds a control character (U+%04X) at character %d", r, i+1)
		}
	}
	return text, nil
}

// Input is a note as a person gives it.
type Input struct {
	Kind       string `json:"kind"`
	Text       string `json:"text"`
	OccurredAt string `json:"occurred_at"` // RFC 3339; "" is now
}

// Note is one entry of a patient's notes and contact log.
type Note struct {
	ID      int64
	Patient vward.PatientID
	Ward    vward.WardID // the patient's ward when it was written
	Kind    Kind
	Text    string
	// OccurredAt is when the call, visit or review happened; CreatedAt
	// when the note was written.
	OccurredAt time.Time
	CreatedAt  time.Time
	Author     string // a clinician's username, or "cli:<login>"
	// Amends is the note an addendum amends; 0 for a note.
	Amends int64
}

// Name is the note's id as people and the API write it: "note-12".
func (n Note) Name() string { return Name(n.ID) }

// Name writes a note id as "note-<n>".
func Name(id int64) string { return "note-" + strconv.FormatInt(id, 10) }

// ParseName reads "note-12" or "12".
func ParseName(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(s, "note-"), 10, 64)
	if err != nil || n <= 0 {
		return 0, vward.Errorf(vward.ErrNotFound, "no note %q", s)
	}
	return n, nil
}

// clip shortens text for the audit's one-line detail; the note keeps all.
func clip(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > 200 {
		return string(r[:200]) + "…"
	}
	return text
}

// View is a note as the REST API and the CLI show it, with its addenda,
// oldest first.
type View struct {
	ID         string          `json:"id"` // "note-12"
	Patient    vward.PatientID `json:"patient"`
	Ward       vward.WardID    `json:"ward"`
	Kind       Kind            `json:"kind"`
	Text       string          `json:"text"`
	OccurredAt time.Time       `json:"occurred_at"`
	CreatedAt  time.Time       `json:"created_at"`
	Author     string          `json:"author"`
	Amends     string          `json:"amends,omitempty"`
	Addenda    []View          `json:"addenda,omitempty"`
}

// Present shows one note without its addenda.
func Present(n Note) View {
	v := View{ID: n.Name(), Patient: n.Patient, Ward: n.Ward, Kind: n.Kind, Text: n.Text,
		OccurredAt: n.OccurredAt, CreatedAt: n.CreatedAt, Author: n.Author}
	if n.Amends != 0 {
		v.Amends = Name(n.Amends)
	}
	return v
}

// Thread shows notes in the order Store.List and Store.Recent give them,
// each note followed by its addenda, as notes with their addenda under
// them. An addendum whose note is not among ns is shown on its own.
func Thread(ns []Note) []View {
	out := []View{}
	at := map[int64]int{}
	for _, n := range ns {
		if i, ok := at[n.Amends]; ok && n.Amends != 0 {
			out[i].Addenda = append(out[i].Addenda, Present(n))
			continue
		}
		at[n.ID] = len(out)
		out = append(out, Present(n))
	}
	return out
}
