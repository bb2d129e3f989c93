package main

import (
	"errors"
	"strings"
	"testing"
)

// An outage the bench cannot run is a usage error, refused before anything
// is started.
func TestBenchOutageUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "30s", "--history-outage", "30s"}, "ends after --duration"},
		{[]string{"--duration", "2m", "--history-outage", "60s", "--history-outage-after", "61s"}, "ends after --duration"},
		{[]string{"--mqtt-url", "tcp://127.0.0.1:1", "--influx-url", "http://127.0.0.1:1", "--board-url", "http://127.0.0.1:1", "--history-outage", "5s"}, "--mqtt-url"},
		{[]string{"--history-outage-after", "5s"}, "without --history-outage"},
	} {
		_, err := runCLI(t, append([]string{"bench", "--quiet"}, tc.args...)...)
		if err == nil || !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v = %v, want a usage error saying %q", tc.args, err, tc.want)
		}
	}
}
