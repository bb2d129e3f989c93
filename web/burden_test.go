package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/burden"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
)

// The alarm burden report over REST: a ward's raised-and-acknowledged
// alert, read by its clinician and its viewer; another ward's clinician
// finds no such ward; a bad days or top is refused by name.
func TestAlarmBurdenAPI(t *testing.T) {
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
	for _, w := range []devices.Ward{{ID: "w1", Name: "Respiratory"}, {ID: "w2", Name: "Frailty"}} {
		if err := reg.AddWard(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Admit(ctx, devices.Patient{ID: "p1", Ward: "w1", Name: "Ada Whitfield", Admitted: time.Now().Add(-48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e, err := alerting.OpenEngine(ctx, db, alerting.Config{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	api := &alertAPI{engine: e, monitor: alerting.NewMonitor(news2.DefaultFreshness(), nil, e, log)}
	s := NewServer(ctx, Deps{Alerts: e, Registry: reg, Log: log})
	mux := http.NewServeMux()
	s.burdenRoutes(mux)
	api.url = asTestUser(t, mux).URL

	api.deteriorate("p1", "w1")
	as, err := e.Alerts(ctx, alerting.Filter{Patient: "p1", State: "open"})
	if err != nil || len(as) != 1 {
		t.Fatalf("alerts %+v %v", as, err)
	}
	if _, err := e.Acknowledge(ctx, as[0].ID, "alice", "phoned"); err != nil {
		t.Fatal(err)
	}

	for _, user := range []string{alice, vera, admin} {
		code, b := api.do(t, user, "GET", "/api/v1/wards/w1/alarm-burden", "")
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", user, code, b)
		}
		var rep burden.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Days != 7 || rep.Alerts != 1 || rep.Patients != 1 || rep.PatientDays < 1.9 || rep.PerPatientDay == nil {
			t.Errorf("%s: days %d, alerts %d, patients %d, patient-days %.2f, rate %v", user, rep.Days, rep.Alerts, rep.Patients, rep.PatientDays, rep.PerPatientDay)
		}
		if len(rep.TimeToAcknowledge) != 1 || rep.TimeToAcknowledge[0].Risk != news2.High || rep.TimeToAcknowledge[0].Count != 1 {
			t.Errorf("%s: time to acknowledge %+v", user, rep.TimeToAcknowledge)
		}
		if len(rep.TopPatients) != 1 || rep.TopPatients[0].Name != "Ada Whitfield" || rep.TopPatients[0].ByCondition[alerting.News2] != 1 {
			t.Errorf("%s: top patients %+v", user, rep.TopPatients)
		}
	}
	for _, c := range []struct {
		user, query string
		code        int
		says        string
	}{
		{bob, "", http.StatusNotFound, "no such ward"},
		{admin, "/../../w9/alarm-burden", http.StatusNotFound, "w9"},
		{alice, "?days=0", http.StatusBadRequest, `days="0"`},
		{alice, "?days=91", http.StatusBadRequest, `days="91"`},
		{alice, "?days=week", http.StatusBadRequest, `days="week"`},
		{alice, "?top=0", http.StatusBadRequest, `top="0"`},
		{alice, "?day=7", http.StatusBadRequest, `unknown parameter "day"`},
		{"", "", http.StatusUnauthorized, "sign in"},
	} {
		path := "/api/v1/wards/w1/alarm-burden" + c.query
		if strings.HasPrefix(c.query, "/") {
			path = "/api/v1/wards/w9/alarm-burden"
		}
		code, b := api.do(t, c.user, "GET", path, "")
		var answer struct{ Error string }
		_ = json.Unmarshal(b, &answer)
		if code != c.code || !strings.Contains(answer.Error, c.says) {
			t.Errorf("%s %s: %d %s, want %d saying %q", c.user, path, code, b, c.code, c.says)
		}
	}
	code, b := api.do(t, alice, "GET", "/api/v1/wards/w1/alarm-burden?days=90&top=1", "")
	if code != http.StatusOK || !strings.Contains(string(b), `"days":90`) {
		t.Errorf("days=90: %d %s", code, b)
	}
}
