package main

// Flag, argument and output helpers the commands share.

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vward/vward/sqlitedb"
)

// openStore opens the SQL store in the data dir given by --data-dir. create
// allows a fresh data dir; otherwise a missing store is an error that says
// where it was looked for, where sqlitedb.Open would silently create an
// empty one.
func openStore(dataDir string, create bool) (*sql.DB, error) {
	path := filepath.Join(dataDir, dbFile)
	if _, err := os.Stat(path); err != nil {
		if !create || !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no vward data in %s (%w); pass --data-dir or set VWARD_DATA_DIR", dataDir, err)
		}
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	return sqlitedb.Open(path)
}

// printOut prints what a command did on its standard output.
func printOut(cmd *cobra.Command, format string, args ...any) error {
	_, err := fmt.Fprintf(cmd.OutOrStdout(), format, args...)
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// writeTable prints rows for people: the empty message when there are none,
// else aligned columns under the tab-separated header, a row's cells made
// by row.
func writeTable[T any](w io.Writer, rows []T, empty, header string, row func(T) []string) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, empty)
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(row(r), "\t"))
	}
	return tw.Flush()
}

// cell makes a value safe for a table row: no tabs or control characters,
// "-" for empty.
func cell(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	return s
}

// addReasonFlag adds --reason: why a change is made, kept with it in the
// audit trail. A required reason makes the command refuse to run without.
func addReasonFlag(cmd *cobra.Command, reason *string, required bool) {
	usage := "why, for the audit trail"
	if required {
		usage += " (required)"
	}
	cmd.Flags().StringVar(reason, "reason", "", usage)
	if required {
		_ = cmd.MarkFlagRequired("reason")
	}
}

// timeFlag is a flag for a moment that is now unless given, read by
// parseWhen when the command runs.
type timeFlag struct{ name, value string }

// register adds --name; what says what the moment is ("when admitted").
func (f *timeFlag) register(fs *pflag.FlagSet, name, what string) {
	f.name = name
	fs.StringVar(&f.value, name, "", what+", if not now (RFC 3339, \"2006-01-02 15:04\" local, or -2h)")
}

// parse returns the moment given, or the zero time for now.
func (f *timeFlag) parse() (time.Time, error) { return parseWhen(f.name, f.value) }

// parseWhen reads a time flag: RFC 3339 ("2026-11-24T09:00:00Z"), a local
// "2026-11-24 09:00", or a negative duration back from now ("-2h").
func parseWhen(flag, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "now" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d <= 0 {
		return time.Now().Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: give a time like 2026-11-24T09:00:00Z, \"2026-11-24 09:00\" (local) or -2h", flag, s)
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}
