package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vward/vward/internal/testenv"
)

// syncBuffer is a bytes.Buffer the node's goroutines may log to while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCLI runs the command in the background; wait returns its error.
func startCLI(ctx context.Context, t *testing.T, args ...string) (out *syncBuffer, wait func() error) {
	t.Helper()
	root := newRootCmd()
	out = &syncBuffer{}
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs(args)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	return out, func() error { return <-done }
}

// serveArgs are serve's flags for a node that needs no broker to start.
func serveArgs(t *testing.T, influxURL, bucket string) []string {
	return []string{"serve", "--http-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--mqtt-url", "tcp://127.0.0.1:1", "--influx-url", influxURL, "--influx-bucket", bucket}
}

// An InfluxDB URL without a scheme is a usage error that says how to write it.
func TestServeRefusesInfluxURLWithoutScheme(t *testing.T) {
	_, err := runCLI(t, serveArgs(t, "localhost:8086", "vward")...)
	if err == nil || !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "want http:// or https://") {
		t.Fatalf("err = %v, want a usage error asking for http://", err)
	}
}

// A database or retention policy that does not exist stops serve at once,
// saying which, instead of holding every acknowledgement for ever.
func TestServeStopsOnMissingBucket(t *testing.T) {
	influx := testenv.StartInflux(t)
	for bucket, want := range map[string]string{
		"nosuchdb/autogen":                `database not found: "nosuchdb"`,
		influx.Database + "/nosuchpolicy": "retention policy not found: nosuchpolicy",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, wait := startCLI(ctx, t, serveArgs(t, influx.URL, bucket)...)
		err := wait()
		if err == nil || !strings.Contains(err.Error(), want) || ctx.Err() != nil {
			t.Errorf("serve --influx-bucket %s: %v, want it to stop saying %q\n%s", bucket, err, want, out)
		}
		if strings.Contains(out.String(), "vward board:") {
			t.Errorf("serve --influx-bucket %s announced a board before it stopped:\n%s", bucket, out)
		}
		cancel()
	}
}

// InfluxDB down at start is weather: serve runs, says why it holds
// acknowledgements, and once InfluxDB answers that the database is
// missing, stops saying so.
func TestServeWaitsForInfluxThenChecksIt(t *testing.T) {
	influx := testenv.StartInflux(t)
	influx.Stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, wait := startCLI(ctx, t, serveArgs(t, influx.URL, "nosuchdb/autogen")...)
	for !strings.Contains(out.String(), "history unreachable at start") {
		if ctx.Err() != nil {
			t.Fatalf("no warning that InfluxDB is unreachable:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "connection refused") {
		t.Errorf("the warning does not say why:\n%s", out)
	}
	influx.Start(t)
	if err := wait(); err == nil || !strings.Contains(err.Error(), `database not found: "nosuchdb"`) || ctx.Err() != nil {
		t.Fatalf("serve: %v, want it to stop once InfluxDB says the database is missing\n%s", err, out)
	}
}

// --log-format json writes one JSON object a line, a log shipper's format.
func TestLogFormatJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append(serveArgs(t, "http://127.0.0.1:1", "vward/autogen"), "--log-format", "json")
	out, wait := startCLI(ctx, t, args...)
	for !strings.Contains(out.String(), "history unreachable at start") {
		if ctx.Err() != nil {
			t.Fatalf("no warning that InfluxDB is unreachable:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wait()
	var warned bool
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(line, "vward board: ") {
			continue // the board's address, on stdout
		}
		var e struct{ Level, Msg, Err string }
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("a log line is not JSON: %q: %v", line, err)
		}
		if strings.HasPrefix(e.Msg, "history unreachable at start; running,") {
			warned = e.Level == "WARN" && strings.Contains(e.Err, "connection refused")
		}
	}
	if !warned {
		t.Errorf("no JSON warning with level and reason:\n%s", out)
	}
}
