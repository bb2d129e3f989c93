package node_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
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

// streamEnds reads the board stream until the server closes it, and fails
// if that takes longer than within; rows keep coming meanwhile.
func streamEnds(t *testing.T, what string, ws *websocket.Conn, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	_ = ws.SetReadDeadline(deadline)
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == websocket.ClosePolicyViolation && strings.Contains(ce.Text, "session ended") {
			return
		}
		t.Fatalf("%s: the board stream ended with %v, want closed within %s as its session ended", what, err, within)
	}
}

// An open board stream keeps its rights only while its session stands:
// a sign-out ends it at once; a password change, a change of wards or the
// account's removal from the command line end it within
// SessionCheckEvery, and the same session's REST calls are refused.
func TestSecurityStreamEndsWithItsSession(t *testing.T) {
	t.Parallel()
	s := start(t)
	cli := cliRegistry(t, s)
	ctx := devices.WithActor(context.Background(), "cli:test")
	within := web.SessionCheckEvery + 5*time.Second

	nurseS := signIn(t, s.node.URL(), nurse)
	ws := nurseS.dialBoard()
	if code := nurseS.do("POST", "/api/v1/logout", nil, nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	streamEnds(t, "signed out", ws, 3*time.Second)

	for _, tc := range []struct {
		what   string
		change func() error
	}{
		{"password changed", func() error { return cli.SetPassword(ctx, nurse, password) }},
		{"wards changed", func() error {
			return cli.UpdateClinician(ctx, nurse, "clinician", []vward.WardID{"w2"}, "moved to w2")
		}},
		{"account removed", func() error { return cli.RemoveClinician(ctx, nurse, "left") }},
	} {
		if err := cli.AddClinician(ctx, devices.Clinician{Username: nurse, Role: "clinician", Wards: []vward.WardID{ward}}, password); err != nil {
			t.Fatal(err)
		}
		nurseS := signIn(t, s.node.URL(), nurse)
		ws := nurseS.dialBoard()
		if err := tc.change(); err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if code := nurseS.do("GET", "/api/v1/patients", nil, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: the old session's REST call answered %d, want 401", tc.what, code)
		}
		streamEnds(t, tc.what, ws, within)
	}
	es, err := cli.Audit(context.Background(), devices.AuditQuery{Subject: "user:" + nurse})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"user.passwd", "user.update", "user.remove"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit of %s = %v, want %s in it", nurse, actions, want)
		}
	}
}

// ?hours= takes whole hours from 1 to 744 and nothing that only looks
// like them.
func TestSecurityReadingsHours(t *testing.T) {
	t.Parallel()
	s := start(t)
	nurseS := signIn(t, s.node.URL(), nurse)
	for q, want := range map[string]int{
		"2": http.StatusOK, "744": http.StatusOK,
		"1h2": http.StatusBadRequest, "0.0000001": http.StatusBadRequest, "0": http.StatusBadRequest,
		"745": http.StatusBadRequest, "-1": http.StatusBadRequest, "1.5": http.StatusBadRequest,
	} {
		if code := nurseS.do("GET", "/api/v1/patients/p1/readings?hours="+q, nil, nil); code != want {
			t.Errorf("hours=%s: %d, want %d", q, code, want)
		}
	}
}

// A patient's name is shown as text, whatever it holds: markup in it is
// neither parsed nor run (the page uses textContent only, and its
// Content-Security-Policy would refuse an inline handler anyway).
func TestSecurityBoardShowsNamesAsText(t *testing.T) {
	s := start(t)
	const hostile = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`
	if err := s.node.Registry.Admit(context.Background(), devices.Patient{ID: "p-x", Ward: ward, Name: hostile}); err != nil {
		t.Fatal(err)
	}
	if err := s.node.LoadPatients(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := browser(t)
	step(t, b, "sign in", chromedp.Navigate(s.node.URL()+"/"), chromedp.WaitVisible("#login-form"),
		chromedp.SendKeys("#login-username", nurse), chromedp.SendKeys("#login-password", password),
		chromedp.Click(`#login-form button[type="submit"]`), chromedp.WaitVisible(`tr[data-patient="p-x"]`))
	if got := text(t, b, `tr[data-patient="p-x"] .name`); got != hostile {
		t.Errorf("the row shows %q, want the name as text: %q", got, hostile)
	}
	ran := read(t, b, "injected markup", chromedp.Evaluate[string](
		`String(document.querySelectorAll("#rows img, #rows script").length) + "/" + String(window.__xss)`))
	if ran != "0/undefined" {
		t.Errorf("elements/flag = %s, want 0/undefined: the name's markup was parsed or run", ran)
	}
}
