package web

import (
	"mime"
	"net/http"
	"strings"
	"time"
)

// Limits of an HTTP request: a board's requests are small JSON bodies, and
// a client that sends slowly must not hold a connection (docs/security.md).
const (
	// RequestReadTimeout bounds reading a request's headers and body.
	RequestReadTimeout = 15 * time.Second
	// IdleTimeout closes a kept-alive connection with no request.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 64 << 10
	// MaxBodyBytes bounds a request's body.
	MaxBodyBytes = 1 << 20
)

// contentSecurityPolicy lets the board load only its own files and talk
// only to its own origin (its websocket included), and never be framed.
// The board's script builds the page with textContent alone, so it needs
// no inline script or style.
const contentSecurityPolicy = "default-src 'self'; base-uri 'none'; object-src 'none'; form-action 'self'; frame-ancestors 'none'"

// secure wraps the routes with what every answer needs: security headers,
// no caching of patient data, a bounded body, and refusal of cross-site
// requests that change anything (Go's CrossOriginProtection: a browser
// says where a request came from; a device or script that sends no
// Origin or Sec-Fetch-Site is not a browser and is not affected).
func secure(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-site request refused: sign in and act from the board's own page")
	}))
	h = cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/fhir/") {
			hd.Set("Cache-Control", "no-store")
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		h.ServeHTTP(w, r)
	})
}

// isJSON reports whether the request says its body is JSON.
func isJSON(r *http.Request) bool {
	t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && t == "application/json"
}
