package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/sqlitedb"
)

// SessionCookie names the session cookie.
const SessionCookie = "vward_session"

// CSRFHeader carries the session's CSRF token on every state-changing request.
const CSRFHeader = "X-CSRF-Token"

var sessionMigrations = []string{
	`CREATE TABLE sessions (
		token_sha256 TEXT PRIMARY KEY,
		username TEXT NOT NULL,
		csrf TEXT NOT NULL,
		expires_at TEXT NOT NULL
	);`,
	// The account's generation at sign-in (devices.Clinician.Generation):
	// a change of password, role or wards ends the session.
	`ALTER TABLE sessions ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;`,
}

// ErrSessionEnded ends a board stream whose session was signed out, or
// whose account changed or was removed.
var ErrSessionEnded = errors.New("session ended: sign in again")

// SessionCheckEvery is how often an open board stream checks that its
// session still stands (besides at once on sign-out), so that a password,
// role or ward change made from the command line ends it within this long.
const SessionCheckEvery = pingEvery

// Clinicians is what sign-in needs of the registry.
type Clinicians interface {
	Login(ctx context.Context, username, password string) (devices.Clinician, error)
	Clinician(ctx context.Context, username string) (devices.Clinician, error)
}

// Auth signs clinicians in and out and guards every other route. Sessions
// are kept in the embedded store, so a restart of vward does not sign out a
// ward team in the middle of a night shift.
type Auth struct {
	db         *sql.DB
	clinicians Clinicians
	log        *slog.Logger
	lifetime   time.Duration
	limiter    *loginLimiter
	cfg        AuthConfig

	mu      sync.Mutex
	streams map[string]map[*streamWatch]struct{} // by session token hash
}

// streamWatch is one open board stream of a session.
type streamWatch struct{ end context.CancelCauseFunc }

// AuthConfig says what sign-in may trust.
type AuthConfig struct {
	// TrustedProxies are the reverse proxies in front of vward: from one
	// of them, a request's client is taken from X-Forwarded-For, for the
	// sign-in limits, and X-Forwarded-Proto says whether the browser came
	// over TLS, for the session cookie's Secure flag. Empty: the
	// connection's own address, and only a TLS connection to vward is TLS.
	TrustedProxies []netip.Prefix
}

// NewAuth migrates the session table in db.
func NewAuth(ctx context.Context, db *sql.DB, c Clinicians, cfg AuthConfig, log *slog.Logger) (*Auth, error) {
	if err := sqlitedb.Migrate(ctx, db, "web", sessionMigrations); err != nil {
		return nil, err
	}
	return &Auth{
		db: db, clinicians: c, log: log.With("component", "auth"),
		lifetime: 12 * time.Hour, // one shift
		limiter:  newLoginLimiter(),
		cfg:      cfg,
		streams:  make(map[string]map[*streamWatch]struct{}),
	}, nil
}

type session struct {
	User User   `json:"user"`
	CSRF string `json:"csrf_token"`
}

func newToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make session token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func userOf(c devices.Clinician) User {
	wards := c.Wards
	if wards == nil {
		wards = []vward.WardID{}
	}
	return User{Username: c.Username, Role: c.Role, Wards: wards}
}

// login handles POST /api/v1/login {"username","password"}.
func (a *Auth) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Password string }
	if !isJSON(r) {
		// A cross-site form can post text/plain without a preflight; the
		// board always sends JSON.
		writeError(w, http.StatusUnsupportedMediaType, `sign in with Content-Type: application/json and {"username": "...", "password": "..."}`)
		return
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil || in.Username == "" {
		writeError(w, http.StatusBadRequest, `send {"username": "...", "password": "..."}`)
		return
	}
	// The attempt is reserved before the password is checked, so that
	// concurrent guesses cannot all slip in before the first is counted.
	client := a.clientOf(r)
	attempt, wait := a.limiter.reserve(client, in.Username, time.Now())
	if attempt == nil {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many sign-in attempts; try again in %d s", int(wait.Seconds())+1))
		return
	}
	c, err := a.clinicians.Login(r.Context(), in.Username, in.Password)
	attempt.done(err == nil, !errors.Is(err, devices.ErrBadLogin) && err != nil, time.Now())
	if err != nil {
		if errors.Is(err, devices.ErrBadLogin) {
			a.log.Info("sign-in refused", "username", in.Username, "client", client)
			writeError(w, http.StatusUnauthorized, "wrong username or password")
			return
		}
		a.log.Error("sign-in", "err", err)
		writeError(w, http.StatusInternalServerError, "sign-in is unavailable")
		return
	}
	tok, err := newToken()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "sign-in is unavailable")
		return
	}
	csrf, err := newToken()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "sign-in is unavailable")
		return
	}
	now := time.Now()
	expires := now.Add(a.lifetime)
	// Expired sessions are of no use to anyone: forget them.
	if _, err := a.db.ExecContext(r.Context(), `DELETE FROM sessions WHERE expires_at < ?`, now.UTC().Format(time.RFC3339Nano)); err != nil {
		a.log.Warn("purge expired sessions", "err", err)
	}
	if _, err := a.db.ExecContext(r.Context(), `INSERT INTO sessions (token_sha256, username, csrf, expires_at, generation) VALUES (?, ?, ?, ?, ?)`,
		tokenHash(tok), c.Username, csrf, expires.UTC().Format(time.RFC3339Nano), c.Generation); err != nil {
		a.log.Error("store session", "err", err)
		writeError(w, http.StatusInternalServerError, "sign-in is unavailable")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: tok, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: a.isTLS(r),
	})
	a.log.Info("signed in", "username", c.Username)
	writeJSON(w, http.StatusOK, session{User: userOf(c), CSRF: csrf})
}

// logout handles POST /api/v1/logout (behind Require, so CSRF-checked).
func (a *Auth) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		_, _ = a.db.ExecContext(r.Context(), `DELETE FROM sessions WHERE token_sha256 = ?`, tokenHash(c.Value))
		a.endStreams(tokenHash(c.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: a.isTLS(r)})
	w.WriteHeader(http.StatusNoContent)
}

// me handles GET /api/v1/me: who is signed in, and the CSRF token the page
// must send back.
func (a *Auth) me(w http.ResponseWriter, r *http.Request) {
	s, ok := a.session(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "not signed in")
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *Auth) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	return a.sessionOf(r.Context(), tokenHash(c.Value))
}

// sessionOf returns the session of a token's hash if it still stands: not
// expired, and its account unchanged since sign-in.
func (a *Auth) sessionOf(ctx context.Context, hash string) (session, bool) {
	var username, csrf, expires string
	var generation int64
	err := a.db.QueryRowContext(ctx, `SELECT username, csrf, expires_at, generation FROM sessions WHERE token_sha256 = ?`, hash).
		Scan(&username, &csrf, &expires, &generation)
	if err != nil {
		return session{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, expires); err != nil || time.Now().After(t) {
		return session{}, false
	}
	cl, err := a.clinicians.Clinician(ctx, username)
	if err != nil || cl.Generation != generation {
		return session{}, false
	}
	return session{User: userOf(cl), CSRF: csrf}, true
}

// watchStream returns a context for a board stream of the request's
// session, ended with ErrSessionEnded when the session is signed out (at
// once) or stops standing (checked every SessionCheckEvery), and a stop
// to call when the stream ends.
func (a *Auth) watchStream(parent context.Context, r *http.Request) (context.Context, func()) {
	ctx, end := context.WithCancelCause(parent)
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		end(ErrSessionEnded)
		return ctx, func() {}
	}
	hash := tokenHash(c.Value)
	w := &streamWatch{end: end}
	a.mu.Lock()
	if a.streams[hash] == nil {
		a.streams[hash] = make(map[*streamWatch]struct{})
	}
	a.streams[hash][w] = struct{}{}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(SessionCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, ok := a.sessionOf(ctx, hash); !ok && ctx.Err() == nil {
					end(ErrSessionEnded)
					return
				}
			}
		}
	}()
	return ctx, func() {
		end(nil)
		<-done
		a.mu.Lock()
		delete(a.streams[hash], w)
		if len(a.streams[hash]) == 0 {
			delete(a.streams, hash)
		}
		a.mu.Unlock()
	}
}

// endStreams ends every board stream of a session.
func (a *Auth) endStreams(hash string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for w := range a.streams[hash] {
		w.end(ErrSessionEnded)
	}
}

// Require lets a request through only with a live session, and a
// state-changing request only with the session's CSRF token as well.
func (a *Auth) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := a.session(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "sign in first")
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(s.CSRF)) != 1 {
				writeError(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" header")
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), s.User)))
	})
}

// isTLS reports whether the browser reached the board over TLS: the
// connection to vward is TLS, or it comes from a trusted proxy whose
// X-Forwarded-Proto (the last value, the one it added) is https. From
// any other peer the header is the client's own word, and is ignored.
func (a *Auth) isTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !a.trusted(remoteAddr(r)) {
		return false
	}
	protos := strings.Split(strings.Join(r.Header.Values("X-Forwarded-Proto"), ","), ",")
	return strings.EqualFold(strings.TrimSpace(protos[len(protos)-1]), "https")
}
