package node_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/web"
)

// Every answer carries the security headers; patient data is never cached.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := start(t)
	nurseS := signIn(t, s.node.URL(), nurse)
	for _, path := range []string{"/", "/app.js", "/api/v1/patients", "/api/v1/alerts?state=open"} {
		req, _ := http.NewRequest("GET", s.node.URL()+path, nil)
		resp, err := nurseS.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", path, h)
		}
		if api := strings.HasPrefix(path, "/api/"); api != (h.Get("Cache-Control") == "no-store") {
			t.Errorf("%s: Cache-Control %q", path, h.Get("Cache-Control"))
		}
	}
}

// A cross-site page cannot sign a browser in (login CSRF), nor change
// anything with a signed-in browser's cookie; a form's text/plain body is
// refused even from the same site.
func TestSecurityCrossSiteRequests(t *testing.T) {
	t.Parallel()
	s := start(t)
	post := func(path, contentType, origin, body string, cookies *session) int {
		t.Helper()
		req, _ := http.NewRequest("POST", s.node.URL()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		c := http.DefaultClient
		if cookies != nil {
			c = cookies.client
			req.Header.Set("X-CSRF-Token", cookies.csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	login := `{"username":"` + nurse + `","password":"` + password + `"}`
	if code := post("/api/v1/login", "text/plain", "https://evil.example", login, nil); code != http.StatusForbidden {
		t.Errorf("cross-site text/plain sign-in: %d, want 403", code)
	}
	if code := post("/api/v1/login", "application/json", "https://evil.example", login, nil); code != http.StatusForbidden {
		t.Errorf("cross-site JSON sign-in: %d, want 403", code)
	}
	if code := post("/api/v1/login", "text/plain", "", login, nil); code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain sign-in: %d, want 415", code)
	}
	nurseS := signIn(t, s.node.URL(), nurse)
	if code := post("/api/v1/logout", "application/json", "https://evil.example", "{}", nurseS); code != http.StatusForbidden {
		t.Errorf("cross-site logout with the nurse's cookie: %d, want 403", code)
	}
	if code := post("/api/v1/patients/p1/spo2-scale", "application/json", "", `{"scale":2,"reason":"`+strings.Repeat("x", web.MaxBodyBytes)+`"}`, nurseS); code != http.StatusBadRequest {
		t.Errorf("a body over %d bytes: %d, want 400", web.MaxBodyBytes, code)
	}
}

// A client that sends its request slowly, or not at all, does not hold a
// connection for longer than the read timeout.
func TestSecuritySlowRequestsAreCut(t *testing.T) {
	t.Parallel()
	s := start(t)
	addr := strings.TrimPrefix(s.node.URL(), "http://")
	for _, tc := range []struct{ what, send string }{
		{"half a body", "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user"},
		{"half the headers", "POST /api/v1/login HTTP/1.1\r\nHost: x\r\n"},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(tc.send)); err != nil {
			t.Fatal(err)
		}
		limit := web.RequestReadTimeout + 5*time.Second
		_ = c.SetReadDeadline(time.Now().Add(limit))
		_, err = bufio.NewReader(c).ReadString(0)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: connection still held after %s", tc.what, limit)
		}
		c.Close()
	}
}
