package handover

import (
	"context"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/notes"
)

// NotesOf quotes a patient's notes and contact log (notes.Store) in the
// SBARD.
func NotesOf(s *notes.Store) NoteSource { return noteLog{s} }

type noteLog struct{ s *notes.Store }

func (l noteLog) Recent(ctx context.Context, patient vward.PatientID, since time.Time) ([]NoteLine, error) {
	ns, err := l.s.Recent(ctx, patient, since)
	if err != nil {
		return nil, err
	}
	out := make([]NoteLine, len(ns))
	for i, n := range ns {
		kind := strings.ReplaceAll(string(n.Kind), "_", " ")
		if n.Kind == notes.MDTReview {
			kind = "MDT review"
		}
		if n.Amends != 0 {
			kind = "addendum to " + notes.Name(n.Amends)
		}
		out[i] = NoteLine{ID: n.Name(), At: n.OccurredAt, Author: n.Author, Kind: kind, Text: n.Text}
	}
	return out, nil
}
