package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Sign-in is limited in two ways (docs/security.md):
//
//   - per account, a backoff rather than a lock: after accountFreeFailures
//     consecutive failures from anywhere, each further attempt waits twice
//     as long as the one before, up to accountMaxDelay, and only one
//     attempt at a time is checked. Guessing is slowed to a crawl, while
//     the clinician whose name an attacker uses can still sign in once
//     the current delay has passed;
//   - per client address (the real client behind a trusted proxy): at most
//     clientMaxFailures failures in clientWindow, and clientMaxInFlight
//     attempts at once, which stops one machine trying many accounts.
const (
	accountFreeFailures = 3
	accountMaxDelay     = 30 * time.Second
	accountForget       = 15 * time.Minute // failures this old are forgotten
	clientMaxFailures   = 30
	clientWindow        = 5 * time.Minute
	clientMaxInFlight   = 8
	// limiterEntries bounds each table. When one is full the entry with
	// the fewest failures goes first, so a flood of one-off names cannot
	// push out an account's running backoff.
	limiterEntries = 10000
)

type limitEntry struct {
	failures int
	last     time.Time // of the last failure
	inFlight int
}

type loginLimiter struct {
	mu       sync.Mutex
	accounts map[string]*limitEntry
	clients  map[string]*limitEntry
	entries  int // limiterEntries; tests lower it
}

func newLoginLimiter() *loginLimiter {
	return &loginLimiter{accounts: make(map[string]*limitEntry), clients: make(map[string]*limitEntry), entries: limiterEntries}
}

// loginAttempt is a reserved sign-in attempt; done records how it went.
type loginAttempt struct {
	l               *loginLimiter
	client, account string
}

// accountDelay is how long after its last failure an account may try
// again.
func accountDelay(failures int) time.Duration {
	if failures < accountFreeFailures {
		return 0
	}
	d := time.Second << min(failures-accountFreeFailures, 10)
	return min(d, accountMaxDelay)
}

// reserve reserves an attempt for account from client, or says how long
// to wait (attempt nil).
func (l *loginLimiter) reserve(client, account string, now time.Time) (*loginAttempt, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.entry(l.accounts, account, now, accountForget)
	c := l.entry(l.clients, client, now, clientWindow)
	if a.inFlight > 0 {
		return nil, time.Second
	}
	if wait := a.last.Add(accountDelay(a.failures)).Sub(now); a.failures > 0 && wait > 0 {
		return nil, wait
	}
	if c.inFlight >= clientMaxInFlight {
		return nil, time.Second
	}
	if c.failures >= clientMaxFailures {
		return nil, c.last.Add(clientWindow).Sub(now)
	}
	a.inFlight++
	c.inFlight++
	return &loginAttempt{l: l, client: client, account: account}, 0
}

// done ends the attempt: a success clears the account's failures; a
// wrong password counts against the account and the client; an error of
// vward's own (broken, not wrong) counts against neither.
func (at *loginAttempt) done(ok, broken bool, now time.Time) {
	l := at.l
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.entry(l.accounts, at.account, now, accountForget)
	c := l.entry(l.clients, at.client, now, clientWindow)
	a.inFlight--
	c.inFlight--
	switch {
	case ok:
		a.failures = 0
	case !broken:
		a.failures++
		a.last = now
		c.failures++
		c.last = now
	}
}

// entry returns key's entry in m, forgetting failures older than forget
// and making room if m is full.
func (l *loginLimiter) entry(m map[string]*limitEntry, key string, now time.Time, forget time.Duration) *limitEntry {
	e := m[key]
	if e == nil {
		if len(m) >= l.entries {
			evict(m, now, forget)
		}
		e = &limitEntry{}
		m[key] = e
	}
	if e.failures > 0 && now.Sub(e.last) > forget {
		e.failures = 0
	}
	return e
}

// evict removes every forgotten idle entry, or if there is none, the idle
// entry with the fewest failures (the oldest of those).
func evict(m map[string]*limitEntry, now time.Time, forget time.Duration) {
	var victim string
	var best *limitEntry
	removed := false
	for k, e := range m {
		if e.inFlight > 0 {
			continue
		}
		if e.failures == 0 || now.Sub(e.last) > forget {
			delete(m, k)
			removed = true
			continue
		}
		if best == nil || e.failures < best.failures || e.failures == best.failures && e.last.Before(best.last) {
			victim, best = k, e
		}
	}
	if !removed && best != nil {
		delete(m, victim)
	}
}

// clientOf is the address a request came from: the connection's, or,
// when that is a trusted proxy, the nearest address in X-Forwarded-For
// that is not one.
func (a *Auth) clientOf(r *http.Request) string {
	addr := remoteAddr(r)
	if !a.trusted(addr) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a garbled hop: trust nothing before it
		}
		hop = hop.Unmap()
		if !a.trusted(hop) {
			return hop.String()
		}
		addr = hop
	}
	return addr.String()
}

func (a *Auth) trusted(addr netip.Addr) bool {
	for _, p := range a.cfg.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
}
