package careplan

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const day = 24 * time.Hour

// parseDuration reads a duration as Go writes one ("90m", "1h30m"), with
// whole days allowed in front ("3d", "1d12h"): care plans speak in days.
func parseDuration(s string) (time.Duration, error) {
	days, rest := int64(0), s
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 32)
		if err != nil || n < 0 || s[0] == '+' {
			return 0, fmt.Errorf("%q is not a duration such as 90m, 4h or 3d", s)
		}
		days, rest = n, s[i+1:]
	}
	var d time.Duration
	if rest != "" || days == 0 {
		var err error
		if d, err = time.ParseDuration(rest); err != nil || strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
			return 0, fmt.Errorf("%q is not a duration such as 90m, 4h or 3d", s)
		}
	}
	return time.Duration(days)*day + d, nil
}

// formatDuration writes a duration as parseDuration reads it, in days
// where it has whole days: "3d", "1d12h", "4h", "1m30s".
func formatDuration(d time.Duration) string {
	if d <= 0 || d%time.Second != 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		size time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.size; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.size
		}
	}
	return b.String()
}
