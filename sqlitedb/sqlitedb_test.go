package sqlitedb_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vward/vward/sqlitedb"
)

// The store holds patients' details and audit trails: its files are
// readable by their owner alone, and a file made wider before is narrowed.
func TestOpenMakesFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.db")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "new.db"), old} {
		db, err := sqlitedb.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", filepath.Base(f), st.Mode().Perm())
			}
		}
		db.Close()
	}
}
