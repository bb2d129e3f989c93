package testenv

import "testing"

// Promtool returns the path of promtool, Prometheus's checker for its
// configuration, rules and metrics (Debian's prometheus package, which
// scripts/test installs), or skips/fails like a missing service.
func Promtool(t testing.TB) string {
	t.Helper()
	return need(t, "promtool")
}
