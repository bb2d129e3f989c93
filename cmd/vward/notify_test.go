package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/notify"
)

// The notify commands configure a channel, a route, a contact and a rota,
// never print a secret back, audit each change, and test-send over a real
// HTTP receiver.
func TestNotifyCLI(t *testing.T) {
	dd := "--data-dir=" + t.TempDir()
	mustCLI(t, "wards", "add", "resp", "--name", "Respiratory", dd)
	if _, errOut, err := vwardCLI(t, "a-password-1\n", "users", "add", "sam", "--role", "clinician", "--ward", "resp", dd); err != nil {
		t.Fatalf("users add: %v\n%s", err, errOut)
	}
	const key = "a-very-secret-signing-key"
	var got []byte
	var sigErr error
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		sigErr = notify.VerifySignature([]byte(key), r.Header.Get(notify.HeaderTimestamp), r.Header.Get(notify.HeaderSignature), got, time.Now(), notify.ReplayWindow)
	}))
	defer rc.Close()

	if msg := failCLI(t, "short\n", "notify", "channels", "set", "pager", "--kind", "webhook", "--url", rc.URL, dd); !strings.Contains(msg, "at least 16 characters") {
		t.Errorf("a short key: %s", msg)
	}
	if _, errOut, err := vwardCLI(t, key+"\n", "notify", "channels", "set", "pager", "--kind", "webhook", "--url", rc.URL, "--actor", "ops", dd); err != nil {
		t.Fatalf("channels set: %v\n%s", err, errOut)
	}
	for _, args := range [][]string{{"notify", "channels", "list", dd}, {"notify", "channels", "list", "--json", dd}} {
		out := mustCLI(t, args...)
		if strings.Contains(out, key) || !strings.Contains(out, "pager") {
			t.Errorf("vward %s printed the key, or not the channel:\n%s", strings.Join(args, " "), out)
		}
	}
	if msg := failCLI(t, "", "notify", "routes", "add", "--ward", "resp", "--tier", "0", "--user", "sam", "--rota", "x", "--channel", "pager", dd); !strings.Contains(msg, "exactly one") {
		t.Errorf("two targets: %s", msg)
	}
	if msg := failCLI(t, "", "notify", "routes", "add", "--ward", "resp", "--queue", "technical", "--tier", "1", "--user", "sam", "--channel", "pager", dd); !strings.Contains(msg, "never escalate") {
		t.Errorf("a technical tier 1: %s", msg)
	}
	mustCLI(t, "notify", "routes", "add", "--ward", "resp", "--tier", "0", "--rota", "nights", "--channel", "pager", dd)
	if out := mustCLI(t, "notify", "routes", "list", dd); !strings.Contains(out, "rota nights") {
		t.Errorf("routes list:\n%s", out)
	}
	if msg := failCLI(t, "", "notify", "rotas", "add-shift", "nights", "sam", "--from", "2026-12-04T20:00:00Z", "--until", "2026-12-04T08:00:00Z", dd); !strings.Contains(msg, "must end") {
		t.Errorf("a shift ending before it starts: %s", msg)
	}
	mustCLI(t, "notify", "rotas", "add-shift", "nights", "sam", "--from", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--until", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), dd)
	if out := mustCLI(t, "notify", "rotas", "list", dd); !strings.Contains(out, "sam") {
		t.Errorf("rotas list:\n%s", out)
	}

	mustCLI(t, "notify", "test-send", "pager", "sam", dd)
	var n notify.Notification
	if err := json.Unmarshal(got, &n); err != nil || n.Event != "test" || n.Recipient != "sam" || sigErr != nil {
		t.Errorf("test notification %s (%v), signature check %v", got, err, sigErr)
	}
}

func TestParseAckTimeouts(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want alerting.PerRisk
		err  string
	}{
		{nil, alerting.PerRisk{}, ""},
		{[]string{"high=30s", "medium=5m"}, alerting.PerRisk{High: 30 * time.Second, Medium: 5 * time.Minute}, ""},
		{[]string{"low-medium=1h", "low=4h"}, alerting.PerRisk{LowMedium: time.Hour, Low: 4 * time.Hour}, ""},
		{[]string{"high"}, alerting.PerRisk{}, "risk=duration"},
		{[]string{"high=1s"}, alerting.PerRisk{}, "from 10s to 24h"},
		{[]string{"urgent=10m"}, alerting.PerRisk{}, `risk "urgent"`},
	} {
		got, err := parseAckTimeouts(c.in)
		if c.err == "" && (err != nil || got != c.want) || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("parseAckTimeouts(%q) = %+v, %v; want %+v, error containing %q", c.in, got, err, c.want, c.err)
		}
	}
}
