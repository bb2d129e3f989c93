package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/sqlitedb"
)

// alertAPI serves the alert routes on a real engine. The user comes from
// the X-Test-User header ("name:role:ward,ward"), injected with WithUser as
// the session middleware would.
type alertAPI struct {
	url     string
	engine  *alerting.Engine
	monitor *alerting.Monitor
}

// asTestUser serves mux as the user its X-Test-User header names
// ("name:role:ward,ward"), closed when the test ends.
func asTestUser(t *testing.T, mux http.Handler) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("X-Test-User"); h != "" {
			parts := strings.SplitN(h, ":", 3)
			u := User{Username: parts[0], Role: parts[1], Wards: []vward.WardID{}}
			for _, w := range strings.Split(parts[2], ",") {
				if w != "" {
					u.Wards = append(u.Wards, vward.WardID(w))
				}
			}
			r = r.WithContext(WithUser(r.Context(), u))
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newAlertAPI(t *testing.T) *alertAPI {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e, err := alerting.OpenEngine(context.Background(), db, alerting.Config{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	m := alerting.NewMonitor(news2.DefaultFreshness(), nil, e, log)
	s := NewServer(context.Background(), Deps{Alerts: e, Log: log})
	mux := http.NewServeMux()
	s.alertRoutes(mux)
	srv := asTestUser(t, mux)
	return &alertAPI{url: srv.URL, engine: e, monitor: m}
}

// deteriorate makes a patient of a ward score NEWS2 8 (high).
func (a *alertAPI) deteriorate(p vward.PatientID, w vward.WardID) {
	at := time.Now().Add(-time.Minute)
	vals := map[vward.ReadingKind]float64{
		vward.RespiratoryRate: 22, vward.SpO2: 93, vward.SupplementalOxygen: 0, vward.SystolicBP: 105,
		vward.HeartRate: 115, vward.Consciousness: 0, vward.Temperature: 38.3,
	}
	var rs []vward.Reading
	for k, v := range vals {
		rs = append(rs, vward.Reading{Device: vward.DeviceID("d-" + p), Patient: p, Ward: w, Kind: k, Value: v, At: at})
	}
	a.monitor.Admit(alerting.PatientInfo{ID: p, Ward: w})
	a.monitor.Observe(rs)
}

func (a *alertAPI) do(t *testing.T, user, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const (
	alice = "alice:clinician:w1"
	vera  = "vera:viewer:w1"
	bob   = "bob:clinician:w2"
	admin = "root:admin:"
)

func TestAlertAPIAccess(t *testing.T) {
	api := newAlertAPI(t)
	api.deteriorate("p1", "w1")
	api.deteriorate("p2", "w2")
	list := func(user, query string) (int, []alerting.Alert) {
		code, b := api.do(t, user, "GET", "/api/v1/alerts"+query, "")
		var out struct{ Alerts []alerting.Alert }
		_ = json.Unmarshal(b, &out)
		return code, out.Alerts
	}
	if code, _ := list("", ""); code != http.StatusUnauthorized {
		t.Errorf("no user: %d, want 401", code)
	}
	code, as := list(alice, "?state=open")
	if code != 200 || len(as) != 1 || as[0].Patient != "p1" || as[0].Ward != "w1" || as[0].Condition != alerting.News2 || as[0].Risk != news2.High {
		t.Fatalf("alice's open alerts: %d %+v", code, as)
	}
	if code, _ := list(alice, "?ward=w2"); code != http.StatusNotFound {
		t.Errorf("alice asks for w2: %d, want 404", code)
	}
	if code, as := list(admin, ""); code != 200 || len(as) != 2 {
		t.Errorf("admin sees %d alerts (%d), want 2", len(as), code)
	}
	if code, as := list(admin, "?patient=p2&state=raised"); code != 200 || len(as) != 1 || as[0].Patient != "p2" {
		t.Errorf("admin ?patient=p2: %d %+v", code, as)
	}
	if code, _ := list(alice, "?state=asleep"); code != http.StatusBadRequest {
		t.Errorf("bad state: %d", code)
	}
	p1 := fmt.Sprintf("/api/v1/alerts/%d", as[0].ID)
	_, bs := list(bob, "")
	p2 := fmt.Sprintf("/api/v1/alerts/%d", bs[0].ID)

	if code, _ := api.do(t, alice, "GET", p2, ""); code != http.StatusNotFound {
		t.Errorf("alice reads w2's alert: %d, want 404", code)
	}
	if code, _ := api.do(t, alice, "POST", p2+"/ack", ""); code != http.StatusNotFound {
		t.Errorf("alice acknowledges w2's alert: %d, want 404", code)
	}
	if code, _ := api.do(t, alice, "GET", "/api/v1/alerts/999", ""); code != http.StatusNotFound {
		t.Errorf("no such alert: %d", code)
	}
	for _, act := range []string{"/ack", "/resolve", "/shelve"} {
		if code, _ := api.do(t, vera, "POST", p1+act, `{"minutes":10,"reason":"x"}`); code != http.StatusForbidden {
			t.Errorf("viewer %s: %d, want 403", act, code)
		}
		if code, _ := api.do(t, "", "POST", p1+act, ""); code != http.StatusUnauthorized {
			t.Errorf("no user %s: %d, want 401", act, code)
		}
	}
	if code, _ := api.do(t, vera, "GET", p1, ""); code != 200 {
		t.Errorf("viewer reads: %d", code)
	}
}

func TestAlertAPILifecycle(t *testing.T) {
	api := newAlertAPI(t)
	api.deteriorate("p1", "w1")
	_, b := api.do(t, alice, "GET", "/api/v1/alerts", "")
	var list struct{ Alerts []alerting.Alert }
	_ = json.Unmarshal(b, &list)
	path := fmt.Sprintf("/api/v1/alerts/%d", list.Alerts[0].ID)

	for _, tc := range []struct{ body, want string }{
		{`{"minutes": 10}`, "reason"},
		{`{"minutes": 10, "reason": "  "}`, "reason"},
		{`{"reason": "visit"}`, "minutes"},
		{`{"minutes": 600, "reason": "visit"}`, "1 to 240 minutes"},
		{`not json`, "JSON"},
	} {
		code, b := api.do(t, alice, "POST", path+"/shelve", tc.body)
		if code != http.StatusBadRequest || !strings.Contains(string(b), tc.want) {
			t.Errorf("shelve %s: %d %s, want 400 naming %q", tc.body, code, b, tc.want)
		}
	}
	code, b := api.do(t, alice, "POST", path+"/shelve", `{"minutes": 15, "reason": "district nurse on the way"}`)
	var a alerting.Alert
	if err := json.Unmarshal(b, &a); code != 200 || err != nil || a.State != alerting.Shelved || a.ShelvedBy != "alice" {
		t.Fatalf("shelve: %d %s", code, b)
	}
	code, b = api.do(t, alice, "POST", path+"/ack", `{"note": "spoke to patient"}`)
	if err := json.Unmarshal(b, &a); code != 200 || err != nil || a.State != alerting.Acknowledged || a.AcknowledgedBy != "alice" || a.AckNote != "spoke to patient" {
		t.Fatalf("ack: %d %s", code, b)
	}
	if code, b := api.do(t, alice, "POST", path+"/ack", ""); code != http.StatusConflict {
		t.Errorf("second ack: %d %s, want 409", code, b)
	}
	if code, b := api.do(t, alice, "POST", path+"/resolve", `{"note": "admitted to hospital"}`); code != 200 {
		t.Fatalf("resolve: %d %s", code, b)
	}
	code, b = api.do(t, alice, "GET", path, "")
	var got AlertWithAudit
	if err := json.Unmarshal(b, &got); code != 200 || err != nil {
		t.Fatalf("get: %d %s", code, b)
	}
	var trail []string
	for _, e := range got.Audit {
		trail = append(trail, e.Action+" by "+e.Actor)
	}
	want := "raised by system, shelved by alice, acknowledged by alice, resolved by alice"
	if got.State != alerting.Resolved || strings.Join(trail, ", ") != want {
		t.Errorf("audit trail = %q, want %q", strings.Join(trail, ", "), want)
	}
	if len(got.Audit[0].Observations) == 0 || got.Audit[2].ResponseSeconds == nil || got.Audit[2].Note != "spoke to patient" {
		t.Errorf("audit entries = %+v", got.Audit)
	}

	code, b = api.do(t, alice, "GET", "/api/v1/reports/response-times", "")
	var rep struct {
		ResponseTimes []alerting.ResponseTime `json:"response_times"`
	}
	if err := json.Unmarshal(b, &rep); code != 200 || err != nil || len(rep.ResponseTimes) != 1 || rep.ResponseTimes[0].Risk != news2.High || rep.ResponseTimes[0].Count != 1 {
		t.Errorf("response times: %d %s", code, b)
	}
	if code, _ := api.do(t, alice, "GET", "/api/v1/reports/response-times?ward=w2", ""); code != http.StatusNotFound {
		t.Errorf("report of another ward: %d", code)
	}
}

// Alert events are never coalesced: every change reaches the client, in
// order, even when patient rows for the same patient coalesce.
func TestHubSendsEveryAlertEvent(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ws := dial(t, hubServer(t, h))
	waitClients(t, h, 1)
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := ws.ReadMessage(); err != nil { // snapshot
		t.Fatal(err)
	}
	for v := 1; v <= 50; v++ {
		h.Publish(alerting.Event{Type: "alert", Change: "reminded", Alert: &alerting.Alert{ID: 7, Version: v, Patient: "p1", Ward: "w1"}})
	}
	for v := 1; v <= 50; v++ {
		var e Event
		if err := ws.ReadJSON(&e); err != nil {
			t.Fatal(err)
		}
		if e.Type != "alert" || e.Alert == nil || e.Alert.Version != v {
			t.Fatalf("event %d = %+v", v, e)
		}
	}
}

// A client that lets its alert queue overflow is dropped, never left with
// a silently incomplete alert history.
func TestHubDropsClientWhoseAlertQueueOverflows(t *testing.T) {
	h := NewHub(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c := &client{wards: nil, rows: map[vward.PatientID]queued{}, wake: make(chan struct{}, 1)}
	h.clients[c] = struct{}{}
	for v := range maxQueuedAlerts + 1 {
		h.Publish(alerting.Event{Type: "alert", Alert: &alerting.Alert{ID: 1, Version: v, Ward: "w1"}})
	}
	if !c.alertOverflow || len(c.alerts) != maxQueuedAlerts {
		t.Fatalf("queued %d alerts, overflow %v", len(c.alerts), c.alertOverflow)
	}
}
