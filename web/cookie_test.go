package web

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/vward/vward/devices"
	"github.com/vward/vward/devices/devicestest"
)

// clinicians is a real registry with one clinician, sam.
func clinicians(t *testing.T) (*sql.DB, *devices.Registry) {
	t.Helper()
	db, reg := devicestest.Open(t)
	if err := reg.AddClinician(context.Background(), devices.Clinician{Username: "sam", Role: "clinician"}, "correct horse"); err != nil {
		t.Fatal(err)
	}
	return db, reg
}

// boardServer serves the board's routes with a real session store over
// TLS (httptest's own certificate) or plain HTTP, trusting proxies as
// --trusted-proxy would.
func boardServer(t *testing.T, db *sql.DB, reg *devices.Registry, overTLS bool, proxies ...string) *httptest.Server {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var cfg AuthConfig
	for _, p := range proxies {
		cfg.TrustedProxies = append(cfg.TrustedProxies, netip.MustParsePrefix(p))
	}
	auth, err := NewAuth(ctx, db, reg, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	h := NewServer(ctx, Deps{Auth: auth, Registry: reg, Log: log}).Handler()
	var srv *httptest.Server
	if overTLS {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

// signInAndOut signs sam in and out, each request with the headers given
// (as a proxy would add them), and returns the session cookie each answer
// set: the session, then its removal.
func signInAndOut(t *testing.T, srv *httptest.Server, header http.Header) (in, out *http.Cookie) {
	t.Helper()
	do := func(method, path, body string, extra http.Header) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, vs := range header {
			req.Header[k] = vs
		}
		for k, vs := range extra {
			req.Header[k] = vs
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	cookie := func(resp *http.Response) *http.Cookie {
		t.Helper()
		for _, c := range resp.Cookies() {
			if c.Name == SessionCookie {
				return c
			}
		}
		t.Fatalf("%s %s: %s, and no %s cookie", resp.Request.Method, resp.Request.URL.Path, resp.Status, SessionCookie)
		return nil
	}
	resp := do(http.MethodPost, "/api/v1/login", `{"username":"sam","password":"correct horse"}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign in: %s", resp.Status)
	}
	in = cookie(resp)
	var s session
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("sign-in answer: %v", err)
	}
	// Sent by hand: a client's cookie jar would not send a Secure cookie
	// over plain HTTP, though the proxy in front would have.
	resp = do(http.MethodPost, "/api/v1/logout", "", http.Header{"Cookie": {in.Name + "=" + in.Value}, CSRFHeader: {s.CSRF}})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("sign out: %s", resp.Status)
	}
	return in, cookie(resp)
}

// The session cookie is Secure when the browser reached the board over
// TLS: directly, or through a trusted proxy that says so in
// X-Forwarded-Proto. The same header from anyone else is ignored: a
// client cannot talk the board into a cookie it believes is protected.
func TestSessionCookieSecureBehindTLS(t *testing.T) {
	db, reg := clinicians(t)
	for _, tc := range []struct {
		name    string
		overTLS bool
		proxies []string
		proto   string // X-Forwarded-Proto
		secure  bool
	}{
		{name: "direct https", overTLS: true, secure: true},
		{name: "plain http", secure: false},
		{name: "https from a trusted proxy", proxies: []string{"127.0.0.1/32"}, proto: "https", secure: true},
		{name: "https from an untrusted peer", proto: "https", secure: false},
		{name: "https from a peer outside the trusted range", proxies: []string{"10.0.0.0/8"}, proto: "https", secure: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := boardServer(t, db, reg, tc.overTLS, tc.proxies...)
			header := http.Header{}
			if tc.proto != "" {
				header.Set("X-Forwarded-Proto", tc.proto)
			}
			in, out := signInAndOut(t, srv, header)
			if in.Secure != tc.secure || out.Secure != tc.secure {
				t.Errorf("session cookie Secure %v, its removal Secure %v; want %v", in.Secure, out.Secure, tc.secure)
			}
			if !in.HttpOnly || in.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie HttpOnly %v, SameSite %v; want HttpOnly and Strict whatever the transport", in.HttpOnly, in.SameSite)
			}
		})
	}
}

// Of X-Forwarded-Proto from a trusted proxy, the last value counts: the
// one the nearest proxy added. An https a client wrote before it does not.
func TestIsTLSReadsTheNearestProxy(t *testing.T) {
	a := &Auth{cfg: AuthConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}}
	for _, tc := range []struct {
		remote string
		proto  []string
		want   bool
	}{
		{"10.0.0.2:4000", []string{"https"}, true},
		{"10.0.0.2:4000", []string{"HTTPS"}, true},
		{"10.0.0.2:4000", []string{"http"}, false},
		{"10.0.0.2:4000", nil, false},
		{"10.0.0.2:4000", []string{"https, http"}, false},
		{"10.0.0.2:4000", []string{"http", "https"}, true},
		{"10.0.0.2:4000", []string{"http,https "}, true},
		{"[::ffff:10.0.0.2]:4000", []string{"https"}, true},
		{"192.0.2.7:4000", []string{"https"}, false},
		{"garbled", []string{"https"}, false},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://board/api/v1/login", nil)
		r.RemoteAddr = tc.remote
		r.Header["X-Forwarded-Proto"] = tc.proto
		if got := a.isTLS(r); got != tc.want {
			t.Errorf("from %s, X-Forwarded-Proto %q: isTLS %v, want %v", tc.remote, tc.proto, got, tc.want)
		}
	}
}
