package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// BackupInfo describes a verified copy of the store.
type BackupInfo struct {
	Path string // where the copy is
	Size int64  // its size in bytes
	// Schema is each owner's latest migration in the copy
	// (schema_migrations), e.g. "devices": 9.
	Schema map[string]int
}

// ErrNoSchema says a database has no schema_migrations table: vward did not
// make it.
var ErrNoSchema = errors.New("no schema_migrations table, so not a store vward made")

// Backup writes a consistent copy of the database db is open on to dst, a
// file that must not exist yet, and verifies it before it appears under
// that name.
//
// The copy is SQLite's VACUUM INTO: it reads the database in one read
// transaction, so it is a snapshot as of one moment even while other
// connections (another process's included) keep writing, and WAL lets
// those writers go on meanwhile. It is written to a temporary file beside
// dst (readable by its owner alone, as the store is), flushed to disk,
// checked with PRAGMA integrity_check, and only then linked to dst; a
// failed or cancelled backup leaves nothing behind. The copy is in
// rollback-journal mode, one file with no -wal or -shm beside it; Open
// turns it back to WAL when vward starts on it.
//
// db should be a connection of its own: with Open's single connection,
// the copy holds it, and so every other statement on db, until it ends.
func Backup(ctx context.Context, db *sql.DB, dst string) (BackupInfo, error) {
	if _, err := os.Lstat(dst); err == nil {
		return BackupInfo{}, fmt.Errorf("backup to %s: the file already exists; refusing to overwrite it", dst)
	} else if !errors.Is(err, os.ErrNotExist) {
		return BackupInfo{}, fmt.Errorf("backup to %s: %w", dst, err)
	}
	dir := filepath.Dir(dst)
	if st, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return BackupInfo{}, fmt.Errorf("backup to %s: directory %s does not exist", dst, dir)
		}
		return BackupInfo{}, fmt.Errorf("backup to %s: %w", dst, err)
	} else if !st.IsDir() {
		return BackupInfo{}, fmt.Errorf("backup to %s: %s is not a directory", dst, dir)
	}

	// VACUUM INTO writes into an empty file as it would into a new one,
	// so the name is reserved, with the store's permissions, first.
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup to %s: create a temporary file beside it: %w", dst, err)
	}
	tmp := f.Name()
	f.Close()
	published := false
	defer func() {
		if !published {
			os.Remove(tmp)
		}
	}()

	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return BackupInfo{}, fmt.Errorf("backup to %s: copy the database: %w", dst, err)
	}
	// SQLite does not sync what VACUUM INTO wrote.
	if err := syncFile(tmp); err != nil {
		return BackupInfo{}, fmt.Errorf("backup to %s: flush the copy to disk: %w", dst, err)
	}
	schema, err := verifyCopy(ctx, tmp)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup to %s: the copy failed its check, so it was not kept: %w", dst, err)
	}
	if err := publish(tmp, dst); err != nil {
		return BackupInfo{}, fmt.Errorf("backup to %s: %w", dst, err)
	}
	published = true
	st, err := os.Stat(dst)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("backup to %s: %w", dst, err)
	}
	return BackupInfo{Path: dst, Size: st.Size(), Schema: schema}, nil
}

// verifyCopy opens the copy read-only (so that nothing is written beside
// it), runs PRAGMA integrity_check and reads its schema versions.
func verifyCopy(ctx context.Context, path string) (map[string]int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	if err := IntegrityCheck(ctx, db); err != nil {
		return nil, err
	}
	return SchemaVersions(ctx, db)
}

// publish gives tmp the name dst without ever replacing a file of that
// name: a hard link fails if dst appeared meanwhile, where a rename would
// overwrite it. On a file system without hard links it renames after a
// last check.
func publish(tmp, dst string) error {
	err := os.Link(tmp, dst)
	switch {
	case err == nil:
		if err := os.Remove(tmp); err != nil {
			return fmt.Errorf("remove the temporary file %s: %w", tmp, err)
		}
	case errors.Is(err, os.ErrExist):
		return errors.New("the file appeared while the copy was made; refusing to overwrite it")
	default:
		if _, serr := os.Lstat(dst); !errors.Is(serr, os.ErrNotExist) {
			return errors.New("the file appeared while the copy was made; refusing to overwrite it")
		}
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("rename the copy into place: %w", err)
		}
	}
	// The new name is durable once the directory is.
	if err := syncFile(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("flush directory %s: %w", filepath.Dir(dst), err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// IntegrityCheck runs PRAGMA integrity_check on db: nil when SQLite
// answers "ok", else an error listing the first problems it found.
func IntegrityCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check(20)`)
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		for line := range strings.Lines(s) {
			if line = strings.TrimSpace(line); line != "" && line != "ok" {
				problems = append(problems, line)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("integrity check found problems: %s", strings.Join(problems, "; "))
	}
	return nil
}

// SchemaVersions returns each owner's latest migration (Migrate), or
// ErrNoSchema for a database vward did not make.
func SchemaVersions(ctx context.Context, db *sql.DB) (map[string]int, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("read schema versions: %w", err)
	}
	if n == 0 {
		return nil, ErrNoSchema
	}
	rows, err := db.QueryContext(ctx, `SELECT owner, MAX(version) FROM schema_migrations GROUP BY owner`)
	if err != nil {
		return nil, fmt.Errorf("read schema versions: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var owner string
		var v int
		if err := rows.Scan(&owner, &v); err != nil {
			return nil, fmt.Errorf("read schema versions: %w", err)
		}
		out[owner] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema versions: %w", err)
	}
	return out, nil
}

// FormatSchema writes schema versions as "alerting 4, devices 9", by
// owner.
func FormatSchema(v map[string]int) string {
	var parts []string
	for _, o := range slices.Sorted(maps.Keys(v)) {
		parts = append(parts, fmt.Sprintf("%s %d", o, v[o]))
	}
	return strings.Join(parts, ", ")
}
