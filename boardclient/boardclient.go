// Package boardclient signs a clinician in to a running vward and reads the
// board's live stream (docs/websocket.md) as the board page does: a
// snapshot of every patient the clinician sees, then each change. The
// bench measures publish→board latency with it; the simulator checks a
// scenario's expectations against what the board showed.
package boardclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Login is a clinician's sign-in to a running vward's board.
type Login struct {
	URL      string // http://host:8080
	Username string
	Password string
}

// Options say how a Stream reads.
type Options struct {
	// Reconnect reopens a dropped stream every 500 ms until it is open
	// again, as the board page does, signing in again if the session has
	// ended. Without it, Run returns when the stream drops.
	Reconnect bool
	// IdleTimeout drops the stream when no message has arrived for that
	// long (0: never).
	IdleTimeout time.Duration
	// Log receives the reconnections (default slog.Default()).
	Log *slog.Logger
}

// Handler is handed each message of the stream and the time it arrived.
// msg is valid only during the call: the stream reads every message into
// one buffer, as the bench's client shares the machine with what it
// measures.
type Handler func(arrived time.Time, msg []byte)

// Stream is a signed-in clinician's board stream.
type Stream struct {
	login  Login
	handle Handler
	opts   Options
	client *http.Client
	log    *slog.Logger

	// The snapshot Open read, handed to the handler first by Run.
	first   []byte
	firstAt time.Time
	buf     bytes.Buffer

	mu     sync.Mutex
	ws     *websocket.Conn
	closed bool
	// csrf is the session's token, which every state-changing request
	// must carry (docs/websocket.md's sign-in).
	csrf string

	reconnects atomic.Int64
}

// snapshotTimeout bounds the wait for a stream's first message.
const snapshotTimeout = 15 * time.Second

// dialer reads with a buffer large enough for most patient rows in one
// read.
var dialer = websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 30 * time.Second, ReadBufferSize: 64 << 10}

// Open signs in, opens the stream, and returns once its first message, the
// snapshot, has arrived, so that nothing the board shows afterwards is
// missed. Run hands h the stream's messages.
func Open(ctx context.Context, login Login, h Handler, opts Options) (*Stream, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("board session: %w", err)
	}
	s := &Stream{login: login, handle: h, opts: opts, client: &http.Client{Jar: jar, Timeout: 30 * time.Second}, log: opts.Log}
	if err := s.signIn(ctx); err != nil {
		return nil, err
	}
	ws, first, at, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.ws, s.first, s.firstAt = ws, first, at
	return s, nil
}

// Run reads the stream until ctx ends or Close, handing the handler every
// message, the snapshot Open read first. It returns nil then, and the error
// that dropped the stream when it does not reconnect.
func (s *Stream) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stop()
	if s.first != nil {
		s.handle(s.firstAt, s.first)
		s.first = nil
	}
	for {
		err := s.read()
		if ctx.Err() != nil || s.isClosed() {
			return nil
		}
		if !s.opts.Reconnect {
			return fmt.Errorf("board stream: %w", err)
		}
		s.log.Warn("board stream dropped; reconnecting", "err", err)
		if !s.reopen(ctx) {
			return nil
		}
	}
}

// Reconnects is how often the stream dropped and was reopened.
func (s *Stream) Reconnects() int { return int(s.reconnects.Load()) }

// Close closes the stream; a Run reading it returns.
func (s *Stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.ws == nil {
		return nil
	}
	return s.ws.Close()
}

func (s *Stream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// read hands the handler each message of the open stream until it drops.
func (s *Stream) read() error {
	s.mu.Lock()
	ws := s.ws
	s.mu.Unlock()
	for {
		if s.opts.IdleTimeout > 0 {
			_ = ws.SetReadDeadline(time.Now().Add(s.opts.IdleTimeout))
		}
		_, r, err := ws.NextReader()
		if err == nil {
			s.buf.Reset()
			_, err = s.buf.ReadFrom(r)
		}
		if err != nil {
			return err
		}
		s.handle(time.Now(), s.buf.Bytes())
	}
}

// reopen opens the stream again, every 500 ms until it is open or ctx
// ends, and hands the handler the fresh snapshot: what the board shows now.
// It reports false if ctx ended first.
func (s *Stream) reopen(ctx context.Context) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(500 * time.Millisecond):
		}
		if s.isClosed() {
			return false
		}
		ws, snap, at, err := s.dial(ctx)
		var he *handshakeError
		if errors.As(err, &he) && he.status == http.StatusUnauthorized {
			if err = s.signIn(ctx); err == nil {
				ws, snap, at, err = s.dial(ctx)
			}
		}
		if err == nil {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				ws.Close()
				return false
			}
			s.ws = ws
			s.mu.Unlock()
			s.reconnects.Add(1)
			s.handle(at, snap)
			return true
		}
		s.log.Warn("board stream: reconnect failed", "err", err)
	}
}

func (s *Stream) signIn(ctx context.Context) error {
	body, err := json.Marshal(map[string]string{"username": s.login.Username, "password": s.login.Password})
	if err != nil {
		return fmt.Errorf("sign in to the board: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(s.login.URL, "/")+"/api/v1/login", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sign in to the board: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("sign in to the board at %s: %w", s.login.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("sign in to the board as %q: status %d: %s", s.login.Username, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	var sess struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&sess); err != nil {
		return fmt.Errorf("sign in to the board as %q: read the session: %w", s.login.Username, err)
	}
	s.mu.Lock()
	s.csrf = sess.CSRF
	s.mu.Unlock()
	return nil
}

// handshakeError is a stream the server refused to open, with its status.
type handshakeError struct {
	status int
	err    error
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("open the board stream: %v (status %d)", e.err, e.status)
}

func (e *handshakeError) Unwrap() error { return e.err }

// dial opens the stream with the session's cookies and reads its first
// message, which must be the snapshot.
func (s *Stream) dial(ctx context.Context) (*websocket.Conn, []byte, time.Time, error) {
	base, err := url.Parse(strings.TrimRight(s.login.URL, "/"))
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("board url: %w", err)
	}
	hdr := http.Header{}
	for _, c := range s.client.Jar.Cookies(base) {
		hdr.Add("Cookie", c.String())
	}
	wsURL := *base
	wsURL.Scheme = map[string]string{"https": "wss"}[base.Scheme]
	if wsURL.Scheme == "" {
		wsURL.Scheme = "ws"
	}
	wsURL.Path += "/api/v1/stream"
	ws, resp, err := dialer.DialContext(ctx, wsURL.String(), hdr)
	if err != nil {
		if resp != nil {
			return nil, nil, time.Time{}, &handshakeError{status: resp.StatusCode, err: err}
		}
		return nil, nil, time.Time{}, fmt.Errorf("open the board stream: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(snapshotTimeout))
	_, first, err := ws.ReadMessage()
	at := time.Now()
	var head struct {
		Type string `json:"type"`
	}
	if err == nil {
		err = json.Unmarshal(first, &head)
	}
	if err != nil || head.Type != "snapshot" {
		ws.Close()
		return nil, nil, time.Time{}, fmt.Errorf("the board stream did not start with a snapshot (type %q): %v", head.Type, err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws, first, at, nil
}

// Get reads a JSON answer of the board's REST API (path such as
// /api/v1/alerts) into v, with the stream's session, signing in again if
// it has ended.
func (s *Stream) Get(ctx context.Context, path string, v any) error {
	return s.do(ctx, http.MethodGet, path, nil, v)
}

// Put sends body as JSON to the board's REST API with the stream's
// session, as Get does, and reads the answer into v unless v is nil.
func (s *Stream) Put(ctx context.Context, path string, body, v any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("put %s: %w", path, err)
	}
	return s.do(ctx, http.MethodPut, path, b, v)
}

func (s *Stream) do(ctx context.Context, method, path string, body []byte, v any) error {
	verb := strings.ToLower(method)
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(s.login.URL, "/")+path, rd)
		if err != nil {
			return fmt.Errorf("%s %s: %w", verb, path, err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if method != http.MethodGet {
			s.mu.Lock()
			req.Header.Set("X-CSRF-Token", s.csrf)
			s.mu.Unlock()
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", verb, path, err)
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %w", verb, path, err)
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && attempt == 0:
			if err := s.signIn(ctx); err != nil {
				return err
			}
			continue
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("%s %s: status %d: %s", verb, path, resp.StatusCode, strings.TrimSpace(string(answer[:min(len(answer), 512)])))
		}
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(answer, v); err != nil {
			return fmt.Errorf("%s %s: decode: %w", verb, path, err)
		}
		return nil
	}
}
