package web

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)

// try reserves and ends an attempt; it reports whether the attempt was let
// through, and the wait if not.
func try(l *loginLimiter, client, account string, ok bool, at time.Time) (bool, time.Duration) {
	a, wait := l.reserve(client, account, at)
	if a == nil {
		return false, wait
	}
	a.done(ok, false, at)
	return true, 0
}

// An account's failures slow further attempts, doubling from a second to
// at most accountMaxDelay, and never lock it: once the delay has passed
// the right password signs in and clears them.
func TestLoginBackoff(t *testing.T) {
	l := newLoginLimiter()
	at := t0
	for i := range accountFreeFailures {
		if ok, _ := try(l, fmt.Sprint("10.0.0.", i), "sam", false, at); !ok {
			t.Fatalf("failure %d refused, want tried", i+1)
		}
	}
	want := time.Second
	for range 8 {
		ok, wait := try(l, "10.0.1.1", "sam", false, at)
		if ok || wait != want {
			t.Fatalf("at once after %s: tried %v, wait %s; want refused for %s", at.Sub(t0), ok, wait, want)
		}
		at = at.Add(wait)
		if ok, _ := try(l, "10.0.1.1", "sam", false, at); !ok {
			t.Fatalf("after waiting %s: refused", wait)
		}
		want = min(2*want, accountMaxDelay)
	}
	at = at.Add(accountMaxDelay)
	if ok, _ := try(l, "10.0.1.2", "sam", true, at); !ok {
		t.Fatal("the right password after the delay: refused")
	}
	if ok, _ := try(l, "10.0.1.2", "sam", false, at); !ok {
		t.Fatal("after a success the failures should be cleared")
	}
}

// One attempt per account is checked at a time: concurrent guesses cannot
// all reach the password check before the first is counted.
func TestLoginOneAttemptAtATime(t *testing.T) {
	l := newLoginLimiter()
	a, _ := l.reserve("10.0.0.1", "sam", t0)
	if a == nil {
		t.Fatal("first attempt refused")
	}
	if b, _ := l.reserve("10.0.0.2", "sam", t0); b != nil {
		t.Fatal("a second concurrent attempt for the same account was let through")
	}
	a.done(false, false, t0)
	if b, _ := l.reserve("10.0.0.2", "sam", t0); b == nil {
		t.Fatal("after the first ended, the next was refused")
	}
}

// One client cannot try many accounts: after clientMaxFailures failures in
// clientWindow it is refused, whoever it names, until the window passes.
func TestLoginClientLimit(t *testing.T) {
	l := newLoginLimiter()
	for i := range clientMaxFailures {
		if ok, _ := try(l, "203.0.113.9", fmt.Sprint("user", i), false, t0); !ok {
			t.Fatalf("failure %d refused", i+1)
		}
	}
	if ok, _ := try(l, "203.0.113.9", "someone-else", false, t0); ok {
		t.Fatal("the client tried another account after its limit")
	}
	if ok, _ := try(l, "198.51.100.1", "someone-else", false, t0); !ok {
		t.Fatal("another client was refused")
	}
	if ok, _ := try(l, "203.0.113.9", "someone-else", false, t0.Add(clientWindow+time.Second)); !ok {
		t.Fatal("the client still refused after its window")
	}
}

// The tables are bounded, and a flood of one-off names does not push out an
// account's running backoff.
func TestLoginTablesBounded(t *testing.T) {
	l := newLoginLimiter()
	l.entries = 100
	for i := range 6 {
		at := t0.Add(time.Duration(i) * accountMaxDelay)
		if ok, _ := try(l, "10.0.0.1", "sam", false, at); !ok {
			t.Fatalf("sam's failure %d refused", i+1)
		}
	}
	last := t0.Add(5 * accountMaxDelay)
	for i := range 1000 {
		try(l, fmt.Sprint("10.1.", i/250, ".", i%250), fmt.Sprint("flood", i), false, last)
	}
	if len(l.accounts) > l.entries || len(l.clients) > l.entries {
		t.Fatalf("tables hold %d accounts and %d clients, bound %d", len(l.accounts), len(l.clients), l.entries)
	}
	if ok, _ := try(l, "10.0.0.2", "sam", true, last); ok {
		t.Fatal("the flood cleared sam's backoff")
	}
}

func TestClientOf(t *testing.T) {
	a := &Auth{cfg: AuthConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	for _, tc := range []struct {
		remote, xff, want string
	}{
		{"203.0.113.9:5000", "", "203.0.113.9"},
		{"203.0.113.9:5000", "1.2.3.4", "203.0.113.9"},              // not from a proxy: the header is ignored
		{"10.0.0.5:5000", "198.51.100.7", "198.51.100.7"},           // from the proxy
		{"10.0.0.5:5000", "6.6.6.6, 198.51.100.7", "198.51.100.7"},  // the client forged a hop: the proxy's is nearest
		{"10.0.0.5:5000", "198.51.100.7, 10.0.0.9", "198.51.100.7"}, // two proxies
		{"10.0.0.5:5000", "garbage", "10.0.0.5"},
		{"[::1]:5000", "2001:db8::1", "2001:db8::1"},
		{"10.0.0.5:5000", "", "10.0.0.5"},
	} {
		r, _ := http.NewRequest("POST", "http://x/api/v1/login", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := a.clientOf(r); got != tc.want {
			t.Errorf("remote %s, X-Forwarded-For %q: client %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}
