// Package sqlitedb opens the embedded SQL store shared by the registry and
// the alert state, and applies each owner's schema migrations.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

// Open opens (creating if needed) the SQLite file at path with WAL and a busy
// timeout, so that readers never block the writer and a brief lock waits
// rather than fails.
func Open(path string) (*sql.DB, error) {
	// The file holds patients' details, audit trails and session tokens'
	// hashes: readable by vward's user alone. SQLite gives its -wal and
	// -shm files the database file's permissions.
	// A file made before this rule is narrowed too.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	err = f.Chmod(0o600)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: make it readable by its owner alone: %w", path, err)
	}
	for _, side := range []string{path + "-wal", path + "-shm"} {
		if err := os.Chmod(side, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open sqlite %s: %w", side, err)
		}
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(FULL)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One connection serialises writers inside the process; SQLite allows
	// one writer at a time anyway, and this avoids SQLITE_BUSY under load.
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// Migrate applies, in order and once each, the migrations of one owner
// (a package), recording them in schema_migrations.
func Migrate(ctx context.Context, db *sql.DB, owner string, migrations []string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		owner TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (owner, version))`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for i, m := range migrations {
		v := i + 1
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE owner = ? AND version = ?`, owner, v).Scan(&n); err != nil {
			return fmt.Errorf("read migrations of %s: %w", owner, err)
		}
		if n > 0 {
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s to %d: %w", owner, v, err)
		}
		if _, err := tx.ExecContext(ctx, m); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s to %d: %w", owner, v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (owner, version) VALUES (?, ?)`, owner, v); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s to %d: %w", owner, v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s to %d: %w", owner, v, err)
		}
	}
	return nil
}
