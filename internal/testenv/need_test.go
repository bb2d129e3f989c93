package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// recorder stands in for *testing.T so need's skip/fail choice can be
// observed without ending the real test. The embedded TB supplies the
// unexported method; only the methods need calls are overridden.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skip(args ...any)               { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestNeedSkipsOrFails(t *testing.T) {
	const missing = "vward-testenv-no-such-binary"

	t.Setenv("VWARD_REQUIRE_SERVICES", "")
	r := &recorder{TB: t}
	need(r, missing)
	if !strings.Contains(r.skipped, missing) || r.failed != "" {
		t.Errorf("locally: skipped %q, failed %q; want a skip naming the binary", r.skipped, r.failed)
	}

	t.Setenv("VWARD_REQUIRE_SERVICES", "1")
	r = &recorder{TB: t}
	need(r, missing)
	if !strings.Contains(r.failed, "VWARD_REQUIRE_SERVICES=1") || r.skipped != "" {
		t.Errorf("in CI: skipped %q, failed %q; want a failure", r.skipped, r.failed)
	}
}

func TestNeedFindsToolsBin(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VWARD_TOOLS_BIN", dir)
	t.Setenv("PATH", "")
	if _, err := lookBinary("influxd-test-fake"); err == nil {
		t.Fatal("found a binary that does not exist")
	}
	writeExecutable(t, dir+"/influxd-test-fake")
	got, err := lookBinary("influxd-test-fake")
	if err != nil || got != dir+"/influxd-test-fake" {
		t.Fatalf("lookBinary = %q, %v; want it from $VWARD_TOOLS_BIN", got, err)
	}
}

func writeExecutable(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}
