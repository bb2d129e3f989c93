package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vward/vward/sqlitedb"
)

// dbFile is the SQLite store's name in the data dir (internal/node).
const dbFile = "vward.db"

func newBackupCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "backup OUT",
		Short: "Copy the SQL store (registry, alert state, audit, sessions) to a file, while vward runs",
		Long: `Copy vward's SQL store, <data-dir>/vward.db, to the file OUT: a consistent
snapshot of one moment, taken while vward serve keeps running and writing,
in one file with no -wal or -shm beside it.

OUT must not exist: backup never overwrites a file. The copy is written to
a temporary file beside OUT, checked with SQLite's integrity_check, and
only then given its name, so OUT is either a whole, checked copy or absent.
It holds patients' details and the audit trail, so it is readable by its
owner alone; keep it as carefully as the store itself.

To restore, see "Backup and restore" in docs/operator.md: stop vward, move
vward.db and its -wal and -shm files away, copy the backup in as vward.db,
start vward.

Readings are not in this file: they are in InfluxDB, backed up with its own
tools.`,
		Example: `  vward backup --data-dir /var/lib/vward /backups/vward-$(date +%Y%m%dT%H%M).db
  docker compose run --rm --no-deps -v "$PWD/backups:/backups" vward backup /backups/vward.db`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("backup takes one argument, OUT, the file to write; got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			out := args[0]
			src := filepath.Join(dataDir, dbFile)
			if st, err := os.Stat(dataDir); err != nil {
				return fmt.Errorf("no vward data in %s (%w); pass --data-dir or set VWARD_DATA_DIR", dataDir, err)
			} else if !st.IsDir() {
				return fmt.Errorf("--data-dir %s is not a directory", dataDir)
			}
			if _, err := os.Stat(src); err != nil {
				return fmt.Errorf("no vward data in %s (%w); pass --data-dir or set VWARD_DATA_DIR", dataDir, err)
			}
			if st, err := os.Stat(out); err == nil && st.IsDir() {
				return fmt.Errorf("backup to %s: that is a directory; name the file to write, e.g. %s", out, filepath.Join(out, "vward-backup.db"))
			}
			db, err := sqlitedb.Open(src)
			if err != nil {
				return fmt.Errorf("%s is not a vward store: %w", src, err)
			}
			defer db.Close()
			if _, err := sqlitedb.SchemaVersions(ctx, db); err != nil {
				if errors.Is(err, sqlitedb.ErrNoSchema) {
					return fmt.Errorf("%s is not a vward store: %w", src, err)
				}
				return fmt.Errorf("%s: %w", src, err)
			}
			info, err := sqlitedb.Backup(ctx, db, out)
			if err != nil {
				return err
			}
			schema := sqlitedb.FormatSchema(info.Schema)
			if schema == "" {
				schema = "(no migrations recorded)"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "backup of %s written to %s\n  size:      %s\n  schema:    %s\n  integrity: ok\n",
				src, info.Path, formatSize(info.Size), schema)
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "vward-data", "directory of the SQL store to copy, as vward serve's (env VWARD_DATA_DIR)")
	return cmd
}

// formatSize is a size in bytes for people, with the exact count.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	v, suffix := float64(n), ""
	for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= unit
		suffix = s
		if v < unit {
			break
		}
	}
	return fmt.Sprintf("%.1f %s (%d bytes)", v, suffix, n)
}
