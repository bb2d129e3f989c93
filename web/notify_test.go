package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/notify"
	"github.com/vward/vward/sqlitedb"
)

// The delivery log is for whoever sees the alert; the settings are for
// admins, and never answer a secret back.
func TestNotifyAPI(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
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
	inbox := notify.NewInbox(0)
	e, err := alerting.OpenEngine(ctx, db, alerting.Config{}, inbox, log)
	if err != nil {
		t.Fatal(err)
	}
	st, err := notify.OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	d := notify.NewDispatcher(notify.Config{}, inbox, st, e.Store(), reg, nil, nil, log)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	rc := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(rc.Close)

	s := NewServer(ctx, Deps{Alerts: e, Notify: d, Log: log})
	mux := http.NewServeMux()
	s.alertRoutes(mux)
	s.notifyRoutes(mux)
	api := &alertAPI{url: asTestUser(t, mux).URL, engine: e, monitor: alerting.NewMonitor(news2.DefaultFreshness(), nil, e, log)}

	const key = "a-webhook-key-nobody-may-read"
	body := `{"kind":"webhook","url":"` + rc.URL + `","secret":"` + key + `"}`
	for _, u := range []string{alice, vera} {
		if code, _ := api.do(t, u, "PUT", "/api/v1/notify/channels/pager", body); code != http.StatusForbidden {
			t.Errorf("%s set a channel: %d, want 403", u, code)
		}
	}
	if code, b := api.do(t, admin, "PUT", "/api/v1/notify/channels/pager", `{"kind":"webhook","url":"ftp://x","secret":"`+key+`"}`); code != http.StatusBadRequest || !strings.Contains(string(b), "url") {
		t.Errorf("a bad URL: %d %s", code, b)
	}
	code, b := api.do(t, admin, "PUT", "/api/v1/notify/channels/pager", body)
	if code != http.StatusOK || strings.Contains(string(b), key) || !strings.Contains(string(b), `"has_secret":true`) {
		t.Errorf("set a channel: %d %s", code, b)
	}
	if _, b := api.do(t, admin, "GET", "/api/v1/notify/channels", ""); strings.Contains(string(b), key) || !strings.Contains(string(b), "pager") {
		t.Errorf("channels list shows the key, or not the channel: %s", b)
	}
	if code, b := api.do(t, admin, "POST", "/api/v1/notify/routes", `{"ward":"w1","tier":0,"target_kind":"user","target":"alice","channel":"pager"}`); code != http.StatusCreated {
		t.Fatalf("add a route: %d %s", code, b)
	}
	if code, b := api.do(t, admin, "POST", "/api/v1/notify/routes", `{"ward":"w1","tier":0,"target_kind":"team","target":"x","channel":"pager"}`); code != http.StatusBadRequest || !strings.Contains(string(b), "target kind") {
		t.Errorf("a bad route: %d %s", code, b)
	}
	_, b = api.do(t, admin, "GET", "/api/v1/notify/audit", "")
	if !strings.Contains(string(b), `"actor":"root"`) || !strings.Contains(string(b), "notify.route.add") || strings.Contains(string(b), key) {
		t.Errorf("notify audit: %s", b)
	}

	api.deteriorate("p1", "w1")
	as, err := e.Alerts(ctx, alerting.Filter{State: "open"})
	if err != nil || len(as) != 1 {
		t.Fatalf("open alerts: %v %v", as, err)
	}
	path := "/api/v1/alerts/" + jsonNumber(as[0].ID) + "/notifications"
	var log1 struct {
		Notifications []notify.Delivery `json:"notifications"`
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, b := api.do(t, vera, "GET", path, "")
		if code != http.StatusOK {
			t.Fatalf("a viewer of the ward reads the delivery log: %d %s", code, b)
		}
		_ = json.Unmarshal(b, &log1)
		if len(log1.Notifications) > 0 && log1.Notifications[0].Result == notify.ResultSent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log never showed the send: %s", b)
		}
	}
	if n := log1.Notifications[0]; n.Recipient != "alice" || n.Channel != "pager" || n.Tier != 0 || n.Attempt != 1 {
		t.Errorf("delivery = %+v", n)
	}
	if code, _ := api.do(t, bob, "GET", path, ""); code != http.StatusNotFound {
		t.Errorf("a clinician of another ward reads the delivery log: %d, want 404", code)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }
