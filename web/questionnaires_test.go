package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/history"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/questionnaires"
	"github.com/vward/vward/sqlitedb"
)

// The questionnaire routes are ward-scoped: a questionnaire answered
// while the patient was on another ward is shown only to who sees that
// ward, and another ward's patient is not found.
func TestQuestionnaireAPI(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg, err := devices.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := questionnaires.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, nil, log)
	m.Admit(alerting.PatientInfo{ID: "p1", Ward: "w1", Name: "Ada"})
	now := time.Now().UTC().Truncate(time.Second)
	answered := func(msgID string, ward vward.WardID, ago time.Duration) vward.Answered {
		return vward.Answered{Device: "hub-1", Patient: "p1", Ward: ward, MsgID: msgID, At: now.Add(-ago), Questionnaire: "soft_signs", Version: 1,
			AnsweredBy: vward.RespondentCarer, Answers: []vward.Answer{{Question: "carer_worried", Value: 1, RedFlag: true}}}
	}
	if err := qs.Keep(ctx, []vward.Answered{answered("on-w2", "w2", 3*time.Hour), answered("on-w1", "w1", time.Hour), answered("last-week", "w1", 100*time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s := NewServer(ctx, Deps{Monitor: m, History: history.NewMemory(10), Registry: reg, Questionnaires: qs, Log: log})
	mux := http.NewServeMux()
	s.questionnaireRoutes(mux)
	s.timelineRoutes(mux)
	api := &alertAPI{url: asTestUser(t, mux).URL}

	list := func(user, query string) (int, []string) {
		t.Helper()
		code, b := api.do(t, user, "GET", "/api/v1/patients/p1/questionnaires"+query, "")
		var out struct{ Questionnaires []vward.Answered }
		_ = json.Unmarshal(b, &out)
		var ids []string
		for _, q := range out.Questionnaires {
			ids = append(ids, q.MsgID)
		}
		return code, ids
	}
	for _, tc := range []struct {
		user, query string
		code        int
		want        []string
	}{
		{alice, "", http.StatusOK, []string{"on-w1"}},
		{"root:admin:", "", http.StatusOK, []string{"on-w1", "on-w2"}},
		{"root:admin:", "?hours=168", http.StatusOK, []string{"on-w1", "on-w2", "last-week"}},
		{bob, "", http.StatusNotFound, nil},
		{alice, "?hours=1h", http.StatusBadRequest, nil},
	} {
		code, ids := list(tc.user, tc.query)
		if code != tc.code || len(ids) != len(tc.want) {
			t.Errorf("%s %s: %d %v, want %d %v", tc.user, tc.query, code, ids, tc.code, tc.want)
			continue
		}
		for i := range ids {
			if ids[i] != tc.want[i] {
				t.Errorf("%s %s: %v, want %v", tc.user, tc.query, ids, tc.want)
			}
		}
	}

	code, b := api.do(t, alice, "GET", "/api/v1/patients/p1/timeline", "")
	var tl Timeline
	if err := json.Unmarshal(b, &tl); err != nil || code != http.StatusOK {
		t.Fatalf("timeline: %d %s", code, b)
	}
	var items []string
	for _, it := range tl.Items {
		if it.Type == ItemQuestionnaire {
			items = append(items, it.Questionnaire.MsgID+" by "+it.By)
		}
	}
	if len(items) != 1 || items[0] != "on-w1 by carer" {
		t.Errorf("timeline's questionnaires = %v, want on-w1 by carer", items)
	}
}
