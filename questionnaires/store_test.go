package questionnaires

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
)

func TestKeepAndList(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	q := vward.Answered{Device: "hub-7", Patient: "p1", Ward: "w1", MsgID: "q1", At: at, Questionnaire: "soft_signs", Version: 1,
		AnsweredBy: vward.RespondentCarer, Answers: []vward.Answer{{Question: "carer_worried", Value: 1, RedFlag: true}}}
	older := q
	older.MsgID, older.At = "q0", at.Add(-time.Hour)
	other := q
	other.Patient, other.MsgID = "p2", "q2"
	if err := s.Keep(ctx, []vward.Answered{q, other}); err != nil {
		t.Fatal(err)
	}
	// A redelivery with other answers changes nothing.
	again := q
	again.Answers = nil
	if err := s.Keep(ctx, []vward.Answered{again, older}); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "p1", at.Add(-2*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []vward.Answered{q, older}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v\nwant %+v", got, want)
	}
	if got, _ := s.List(ctx, "p1", at, 10); len(got) != 1 || got[0].MsgID != "q1" {
		t.Fatalf("List since %s = %+v", at, got)
	}
	if got, _ := s.List(ctx, "p1", time.Time{}, 1); len(got) != 1 || got[0].MsgID != "q1" {
		t.Fatalf("List of 1 = %+v, want the newest", got)
	}
	latest, err := s.Latest(ctx, at.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := []vward.Answered{q, other}; !reflect.DeepEqual(latest, want) {
		t.Fatalf("Latest = %+v\nwant each patient's newest, %+v", latest, want)
	}
	if latest, _ := s.Latest(ctx, at.Add(time.Second)); len(latest) != 0 {
		t.Fatalf("Latest after every answer = %+v", latest)
	}
}
