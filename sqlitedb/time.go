package sqlitedb

import "time"

// timeLayout has a fixed width, so that times compare as text in SQL.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime writes t in UTC at a fixed width, so that stored times sort
// and compare as text in SQL (WHERE at >= ?).
func FormatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// ParseTime reads a time FormatTime wrote (any RFC 3339 time); the zero
// time for one that does not parse.
func ParseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
