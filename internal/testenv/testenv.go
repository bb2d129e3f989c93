// Package testenv starts real services for tests: Mosquitto (Debian's
// package) and InfluxDB 1.8.10 (built with go install), each on free loopback
// ports in a t.TempDir, torn down by t.Cleanup. They are not faked
// (docs/architecture.md, "Tests against real things"): zero-loss ingest depends on
// the broker's queueing and the store's acceptance, which fakes get wrong.
//
// A missing binary skips the test locally and fails it when
// VWARD_REQUIRE_SERVICES=1 (CI, scripts/test), so CI can never go green by
// skipping everything.
package testenv

import (
	"fmt"
	"os"
	"testing"

	"github.com/vward/vward/internal/services"
)

// RequireServices reports whether a missing service binary must fail the test
// rather than skip it.
func RequireServices() bool { return os.Getenv("VWARD_REQUIRE_SERVICES") == "1" }

// need returns the path of binary name or ends the test: t.Skip locally,
// t.Fatal when RequireServices().
func need(t testing.TB, name string) string {
	t.Helper()
	path, err := lookBinary(name)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%v; scripts/test installs it", err)
	if RequireServices() {
		t.Fatalf("VWARD_REQUIRE_SERVICES=1: %s", msg)
	} else {
		t.Skip(msg)
	}
	return ""
}

// Chromium returns the path of a Chromium binary for chromedp, or skips/fails
// like a missing service.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := lookBinary(name); err == nil {
			return path
		}
	}
	return need(t, "chromium")
}

// lookBinary is services.LookBinary: $VWARD_TOOLS_BIN, PATH, the Go bin
// directories, then sbin.
var lookBinary = services.LookBinary

// FreePort returns a loopback TCP port that was free a moment ago (see
// services.FreePort).
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := services.FreePort()
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	return port
}
