package sqlitedb_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vward/vward/sqlitedb"
)

// orderMigrations make a store whose consistency can be checked: every
// order has exactly three lines, written in one transaction.
var orderMigrations = []string{`
	CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT NOT NULL);
	CREATE TABLE lines (order_id INTEGER NOT NULL REFERENCES orders (id), k INTEGER NOT NULL, pad BLOB NOT NULL);
	CREATE INDEX lines_order ON lines (order_id);`}

func openOrders(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlitedb.Migrate(context.Background(), db, "orders", orderMigrations); err != nil {
		t.Fatal(err)
	}
	return db
}

// addOrder writes order id and its three lines in one transaction.
func addOrder(ctx context.Context, db *sql.DB, id int64) error { return addOrders(ctx, db, id, id) }

// addOrders writes orders from to last and their lines in one transaction.
func addOrders(ctx context.Context, db *sql.DB, from, last int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for id := from; id <= last; id++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id, note) VALUES (?, 'order')`, id); err != nil {
			return err
		}
		for k := range 3 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO lines (order_id, k, pad) VALUES (?, ?, randomblob(512))`, id, k); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// openCopy opens a backup read-only.
func openCopy(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A backup taken while another connection keeps committing is a snapshot
// of one moment: it holds every transaction committed before it began,
// none in part, and passes integrity_check.
func TestBackupUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "vward.db")
	writer := openOrders(t, src)
	// Enough data that a copy takes a while, so that commits land while
	// it is made.
	const prefilled = 500
	if err := addOrders(ctx, writer, 1, prefilled); err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64
	committed.Store(prefilled)

	wctx, stopWriting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var writeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := int64(prefilled + 1); wctx.Err() == nil; id++ {
			if err := addOrder(wctx, writer, id); err != nil {
				if wctx.Err() == nil {
					writeErr = err
				}
				return
			}
			committed.Store(id)
		}
	}()
	defer func() {
		stopWriting()
		wg.Wait()
	}()

	// The backup's own connection, as `vward backup` in another process
	// has.
	reader, err := sqlitedb.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	backups := t.TempDir()
	var overlapped int64
	for i := range 5 {
		dst := filepath.Join(backups, "copy-"+string(rune('a'+i))+".db")
		before := committed.Load()
		info, err := sqlitedb.Backup(ctx, reader, dst)
		after := committed.Load()
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
		overlapped += after - before
		if info.Path != dst || info.Schema["orders"] != 1 || info.Size == 0 {
			t.Errorf("backup %d: info %+v", i, info)
		}
		if st, err := os.Stat(dst); err != nil || st.Size() != info.Size || st.Mode().Perm() != 0o600 {
			t.Errorf("backup %d: stat %v, %v; want %d bytes, mode 0600", i, st, err, info.Size)
		}
		cp := openCopy(t, dst)
		if err := sqlitedb.IntegrityCheck(ctx, cp); err != nil {
			t.Errorf("backup %d: %v", i, err)
		}
		var orders, maxID, lines, partial int64
		if err := cp.QueryRow(`SELECT COUNT(*), COALESCE(MAX(id), 0) FROM orders`).Scan(&orders, &maxID); err != nil {
			t.Fatal(err)
		}
		if err := cp.QueryRow(`SELECT COUNT(*) FROM lines`).Scan(&lines); err != nil {
			t.Fatal(err)
		}
		if err := cp.QueryRow(`SELECT COUNT(*) FROM (SELECT order_id FROM lines GROUP BY order_id HAVING COUNT(*) != 3)`).Scan(&partial); err != nil {
			t.Fatal(err)
		}
		if orders < before || orders > after {
			t.Errorf("backup %d holds %d orders; %d were committed before it began and %d when it ended", i, orders, before, after)
		}
		if maxID != orders || lines != 3*orders || partial != 0 {
			t.Errorf("backup %d is not one moment's snapshot: %d orders, highest id %d, %d lines, %d orders with a part of their lines", i, orders, maxID, lines, partial)
		}
	}
	stopWriting()
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("the writer failed while backups were taken: %v", writeErr)
	}
	t.Logf("%d commits landed while the 5 backups were made", overlapped)
	// Nothing but the copies: no temporary file is left beside them.
	ents, err := os.ReadDir(backups)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 5 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("backup directory holds %v, want the 5 copies only", names)
	}
}

// What Backup refuses, and that a refused or cancelled backup leaves
// nothing behind.
func TestBackupRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openOrders(t, filepath.Join(dir, "vward.db"))
	if err := addOrder(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()

	existing := filepath.Join(out, "existing.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlitedb.Backup(ctx, db, existing)
	if err == nil || !strings.Contains(err.Error(), existing) || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("backup over an existing file: %v, want a refusal naming it", err)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("the existing file was changed: %q", b)
	}

	missing := filepath.Join(out, "no-such-dir", "copy.db")
	if _, err := sqlitedb.Backup(ctx, db, missing); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("backup into a missing directory: %v", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sqlitedb.Backup(cancelled, db, filepath.Join(out, "cancelled.db")); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled backup: %v, want context.Canceled", err)
	}

	other := filepath.Join(dir, "other.db")
	odb, err := sqlitedb.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer odb.Close()
	if _, err := odb.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlitedb.Backup(ctx, odb, filepath.Join(out, "other.db")); !errors.Is(err, sqlitedb.ErrNoSchema) {
		t.Errorf("a backup of a database vward did not make: %v, want ErrNoSchema", err)
	}

	ents, _ := os.ReadDir(out)
	if len(ents) != 1 || ents[0].Name() != "existing.db" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("after refused backups the directory holds %v, want existing.db only", names)
	}
}

// IntegrityCheck fails on a damaged database, so a damaged copy is never
// kept as a backup.
func TestIntegrityCheckFindsDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := openOrders(t, filepath.Join(dir, "vward.db"))
	if err := addOrders(ctx, db, 1, 200); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.db")
	if _, err := sqlitedb.Backup(ctx, db, good); err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.IntegrityCheck(ctx, openCopy(t, good)); err != nil {
		t.Fatalf("an undamaged copy: %v", err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite the second half of the file, past the schema's pages.
	for i := len(b) / 2; i < len(b); i++ {
		b[i] = 0x5a
	}
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.IntegrityCheck(ctx, openCopy(t, bad)); err == nil {
		t.Error("IntegrityCheck passed a database whose second half was overwritten")
	} else {
		t.Logf("damaged copy: %v", err)
	}
}
