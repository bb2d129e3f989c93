package node_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vward/vward/web"
)

// Without a session every API route and the stream are refused; with a
// session, a change without the CSRF token is refused; a clinician of
// another ward sees none of this ward's patients.
func TestAccessControl(t *testing.T) {
	s := start(t)
	base := s.node.URL()

	for _, path := range []string{"/api/v1/patients", "/api/v1/patients/p1", "/api/v1/patients/p1/readings", "/api/v1/stream"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d, want 401", path, resp.StatusCode)
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/api/v1/stream", nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stream without a session: err %v, want a 401 refusal", err)
	}

	nurseSession := signIn(t, base, nurse)
	forged := *nurseSession
	forged.csrf = "not-the-token"
	if code := forged.do("POST", "/api/v1/logout", nil, nil); code != http.StatusForbidden {
		t.Errorf("logout with a wrong CSRF token: %d, want 403", code)
	}
	var snap web.Snapshot
	if code := nurseSession.do("GET", "/api/v1/patients", nil, &snap); code != http.StatusOK || len(snap.Patients) != 1 {
		t.Errorf("nurse of w1: status %d, %d patients, want 200 and 1", code, len(snap.Patients))
	}

	other := signIn(t, base, otherNurse)
	if code := other.do("GET", "/api/v1/patients", nil, &snap); code != http.StatusOK || len(snap.Patients) != 0 {
		t.Errorf("nurse of w2 listing patients: status %d, %d patients, want 200 and none", code, len(snap.Patients))
	}
	for _, path := range []string{"/api/v1/patients/p1", "/api/v1/patients/p1/readings"} {
		if code := other.do("GET", path, nil, nil); code != http.StatusNotFound {
			t.Errorf("nurse of w2 GET %s: %d, want 404", path, code)
		}
	}
	if m := readBoard(t, other.dialBoard()); m.Type != "snapshot" || len(m.Patients) != 0 {
		t.Errorf("nurse of w2 stream snapshot: %+v, want no patients", m)
	}

	// Sign-out ends the session.
	if code := nurseSession.do("POST", "/api/v1/logout", nil, nil); code != http.StatusNoContent {
		t.Errorf("logout: %d, want 204", code)
	}
	if code := nurseSession.do("GET", "/api/v1/patients", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("after logout: %d, want 401", code)
	}
}

// Repeated wrong passwords slow further tries for that account, checked
// one at a time, without locking the clinician out: once the delay has
// passed, the right password signs in.
func TestLoginRateLimit(t *testing.T) {
	s := start(t)
	try := func(pw string) (int, string) {
		resp, err := http.Post(s.node.URL()+"/api/v1/login", "application/json",
			strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, nurse, pw)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	for i := range 3 {
		if code, _ := try("wrong"); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d, want 401", i+1, code)
		}
	}
	code, after := try(password)
	if code != http.StatusTooManyRequests || after == "" {
		t.Fatalf("right password at once after 3 failures: %d (Retry-After %q), want 429", code, after)
	}
	wait, _ := strconv.Atoi(after)
	time.Sleep(time.Duration(wait) * time.Second)
	if code, _ := try(password); code != http.StatusOK {
		t.Fatalf("right password after Retry-After: %d, want 200: a backoff, not a lock", code)
	}

	// Fifty concurrent guesses: the attempts are reserved before the
	// password is checked, so only the free ones reach it.
	var wg sync.WaitGroup
	var tried atomic.Int32
	for range 50 {
		wg.Go(func() {
			if code, _ := try("wrong"); code == http.StatusUnauthorized {
				tried.Add(1)
			}
		})
	}
	wg.Wait()
	if n := tried.Load(); n > 3 {
		t.Errorf("%d of 50 concurrent wrong passwords were checked, want at most 3", n)
	}
}
