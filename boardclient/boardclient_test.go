package boardclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeBoard signs "sam" in with a session cookie and opens a stream for
// that session only, which starts with a snapshot; the test writes the
// rest on the connections it receives.
type fakeBoard struct {
	mu      sync.Mutex
	session string
	logins  int
	conns   chan *websocket.Conn
}

func newFakeBoard(t *testing.T) (*fakeBoard, *httptest.Server) {
	f := &fakeBoard{conns: make(chan *websocket.Conn, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/login", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username, Password string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Username != "sam" || in.Password != "pw" {
			http.Error(w, `{"error":"wrong username or password"}`, http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.logins++
		f.session = strings.Repeat("s", f.logins)
		tok := f.session
		f.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "session", Value: tok, Path: "/"})
		_ = json.NewEncoder(w).Encode(map[string]string{"csrf_token": "csrf-" + tok})
	})
	mux.HandleFunc("PUT /api/v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		f.mu.Lock()
		ok := err == nil && c.Value == f.session
		csrf := r.Header.Get("X-CSRF-Token") == "csrf-"+f.session
		f.mu.Unlock()
		var in map[string]string
		switch {
		case !ok:
			http.Error(w, `{"error":"sign in first"}`, http.StatusUnauthorized)
		case !csrf:
			http.Error(w, `{"error":"missing or wrong CSRF token"}`, http.StatusForbidden)
		case json.NewDecoder(r.Body).Decode(&in) != nil || r.Header.Get("Content-Type") != "application/json":
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
		default:
			_ = json.NewEncoder(w).Encode(map[string]string{"id": r.PathValue("id"), "reason": in["reason"]})
		}
	})
	up := websocket.Upgrader{}
	mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		f.mu.Lock()
		ok := err == nil && c.Value == f.session
		f.mu.Unlock()
		if !ok {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"snapshot","patients":[]}`))
		f.conns <- ws
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

type got struct {
	mu   sync.Mutex
	msgs []string
	more chan struct{}
}

func (g *got) handle(_ time.Time, msg []byte) {
	g.mu.Lock()
	g.msgs = append(g.msgs, string(msg))
	g.mu.Unlock()
	g.more <- struct{}{}
}

func (g *got) wait(t *testing.T, n int) []string {
	t.Helper()
	for {
		g.mu.Lock()
		have := append([]string(nil), g.msgs...)
		g.mu.Unlock()
		if len(have) >= n {
			return have
		}
		select {
		case <-g.more:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d messages, want %d: %q", len(have), n, have)
		}
	}
}

// The handler sees the snapshot, then each message; a dropped stream is
// reopened, signing in again once the session has ended, and the fresh
// snapshot handed on.
func TestStreamReadsAndReconnects(t *testing.T) {
	f, srv := newFakeBoard(t)
	g := &got{more: make(chan struct{}, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(ctx, Login{URL: srv.URL, Username: "sam", Password: "pw"}, g.handle, Options{Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	ws := <-f.conns
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"patient"}`))
	g.wait(t, 2)

	// The session ends with the stream: the reconnect must sign in again.
	f.mu.Lock()
	f.session = "ended"
	f.mu.Unlock()
	ws.Close()
	ws = <-f.conns
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"alert"}`))
	msgs := g.wait(t, 4)
	want := []string{`{"type":"snapshot","patients":[]}`, `{"type":"patient"}`, `{"type":"snapshot","patients":[]}`, `{"type":"alert"}`}
	if strings.Join(msgs, " ") != strings.Join(want, " ") {
		t.Errorf("messages %q, want %q", msgs, want)
	}
	f.mu.Lock()
	logins := f.logins
	f.mu.Unlock()
	if s.Reconnects() != 1 || logins != 2 {
		t.Errorf("%d reconnects, %d sign-ins; want 1 and 2", s.Reconnects(), logins)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

// Without Reconnect, Run returns when the stream drops; a wrong password
// is refused at Open.
func TestStreamWithoutReconnect(t *testing.T) {
	f, srv := newFakeBoard(t)
	if _, err := Open(context.Background(), Login{URL: srv.URL, Username: "sam", Password: "no"}, func(time.Time, []byte) {}, Options{}); err == nil || !strings.Contains(err.Error(), "status 401") {
		t.Errorf("wrong password: %v, want a refused sign-in", err)
	}
	s, err := Open(context.Background(), Login{URL: srv.URL, Username: "sam", Password: "pw"}, func(time.Time, []byte) {}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	(<-f.conns).Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned nil for a dropped stream")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return when the stream dropped")
	}
}

// Put carries the session's CSRF token and a JSON body, signs in again
// once when the session has ended, and says what a refusal answered.
func TestPut(t *testing.T) {
	f, srv := newFakeBoard(t)
	ctx := context.Background()
	s, err := Open(ctx, Login{URL: srv.URL, Username: "sam", Password: "pw"}, func(time.Time, []byte) {}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out map[string]string
	if err := s.Put(ctx, "/api/v1/things/a", map[string]string{"reason": "why"}, &out); err != nil {
		t.Fatalf("put: %v", err)
	}
	if out["id"] != "a" || out["reason"] != "why" {
		t.Errorf("answer %v", out)
	}
	f.mu.Lock()
	f.session = "ended"
	f.mu.Unlock()
	if err := s.Put(ctx, "/api/v1/things/b", map[string]string{"reason": "again"}, nil); err != nil {
		t.Fatalf("put after the session ended: %v", err)
	}
	if f.logins != 2 {
		t.Errorf("%d sign-ins, want 2", f.logins)
	}
	s.mu.Lock()
	s.csrf = "stale"
	s.mu.Unlock()
	err = s.Put(ctx, "/api/v1/things/c", map[string]string{}, nil)
	if err == nil || !strings.Contains(err.Error(), "status 403") || !strings.Contains(err.Error(), "CSRF") {
		t.Errorf("put with a wrong token: %v, want the 403 and its message", err)
	}
}
