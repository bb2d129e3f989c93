package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vward/vward/internal/testenv"
)

// vward healthcheck against a real vward serve: ready, then not ready once
// the broker is gone (saying so, on one line), then nothing listening.
func TestHealthcheck(t *testing.T) {
	broker, influx := testenv.StartMosquitto(t), testenv.StartInflux(t)
	srv := startServe(t, t.TempDir(), broker, influx)
	readyz := srv.url + "/readyz"

	out, err := runCLI(t, "healthcheck", "--url", readyz)
	if err != nil || strings.TrimSpace(out) != "ready: broker: ok; history: ok; journal: ok" {
		t.Fatalf("healthcheck of a ready vward = %q, %v", out, err)
	}
	// In the image VWARD_HTTP_ADDR=0.0.0.0:8080 tells serve where to
	// listen; the healthcheck asks the same port on loopback.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.url, "http://"))
	t.Setenv("VWARD_HTTP_ADDR", "0.0.0.0:"+port)
	if out, err := runCLI(t, "healthcheck"); err != nil || !strings.HasPrefix(out, "ready: ") {
		t.Errorf("healthcheck with VWARD_HTTP_ADDR=0.0.0.0:%s = %q, %v", port, out, err)
	}

	broker.Kill(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = runCLI(t, "healthcheck", "--url", readyz)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("healthcheck still says ready 30s after the broker was killed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	msg := err.Error()
	for _, want := range []string{"not ready: " + readyz + " answered 503 Service Unavailable: broker: ", "; history: ok"} {
		if !strings.Contains(msg, want) {
			t.Errorf("healthcheck with the broker down = %q, want it to say %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") || errors.As(err, new(usageError)) {
		t.Errorf("healthcheck with the broker down: %q (usage error %v), want one line and exit 1", msg, errors.As(err, new(usageError)))
	}
	t.Logf("broker down: %s", msg)

	srv.stop(t)
	_, err = runCLI(t, "healthcheck", "--url", readyz)
	if err == nil || !strings.Contains(err.Error(), "not ready: "+readyz+": ") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("healthcheck with nothing listening: %v, want connection refused", err)
	}
}

// A server that accepts the connection and never answers fails the check
// within --timeout; what a server answers is shown on one line, without
// its control characters; a wrong command line is a usage error.
func TestHealthcheckTimeoutBodyAndUsage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	silent := "http://" + ln.Addr().String() + "/readyz"
	_, err = runCLI(t, "healthcheck", "--url", silent, "--timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), "not ready: "+silent+" did not answer within 300ms") {
		t.Errorf("healthcheck of a server that never answers: %v", err)
	}

	odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("upstream\r\nfailed\x1b[31m  badly\n"))
	}))
	defer odd.Close()
	_, err = runCLI(t, "healthcheck", "--url", odd.URL+"/readyz")
	if want := "not ready: " + odd.URL + "/readyz answered 500 Internal Server Error: upstream failed [31m badly"; err == nil || err.Error() != want {
		t.Errorf("healthcheck of a plain-text 500:\n got %v\nwant %s", err, want)
	}

	for _, args := range [][]string{
		{"healthcheck", "--timeout", "0s"},
		{"healthcheck", "--url", "ftp://127.0.0.1/readyz"},
		{"healthcheck", "--url", "127.0.0.1:8080/readyz"},
		{"healthcheck", "--http-addr", "8080"},
		{"healthcheck", "extra"},
	} {
		if _, err := runCLI(t, args...); !errors.As(err, new(usageError)) {
			t.Errorf("vward %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
}

func TestReadyzURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080":  "http://127.0.0.1:8080/readyz",
		"0.0.0.0:8080":    "http://127.0.0.1:8080/readyz",
		":9000":           "http://127.0.0.1:9000/readyz",
		"[::]:8080":       "http://[::1]:8080/readyz",
		"10.1.2.3:8080":   "http://10.1.2.3:8080/readyz",
		"vward.local:443": "http://vward.local:443/readyz",
	} {
		if got, err := readyzURL(addr); err != nil || got != want {
			t.Errorf("readyzURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
}
