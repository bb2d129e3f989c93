package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/ingest"
	"github.com/vward/vward/sqlitedb"
)

// runCLI runs vward with args and returns its output and error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestDevicesRejected(t *testing.T) {
	dir := t.TempDir()
	db, err := sqlitedb.Open(filepath.Join(dir, "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	dead, err := ingest.OpenDeadLetters(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	err = dead.Keep(context.Background(), []ingest.Rejection{
		{Device: "ox-1", Topic: "vward/v1/devices/ox-1/readings", MsgID: "m1", Code: ingest.RejectJSON, Reason: "JSON is truncated", Payload: []byte(`{"msg_id":"m1"`), Received: at},
		{Device: "ox-2", Topic: "vward/v1/devices/ox-2/readings", MsgID: "m2", Code: ingest.RejectReadings, Reason: "readings[0] (spo2): value \"\x1b[31m\" is not a number", Payload: []byte{0xff}, Received: at.Add(time.Minute)},
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "devices", "rejected", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "ox-2") || !strings.Contains(lines[2], "2026-11-23 10:15:00") {
		t.Errorf("table, newest first:\n%s", out)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("table passes a control character from a device to the terminal:\n%q", out)
	}

	out, err = runCLI(t, "devices", "rejected", "--data-dir", dir, "--device", "ox-1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rs []map[string]any
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(rs) != 1 || rs[0]["msg_id"] != "m1" || rs[0]["payload"] != `{"msg_id":"m1"` || rs[0]["code"] != "bad_json" {
		t.Errorf("--json --device ox-1 = %v", rs)
	}

	out, err = runCLI(t, "devices", "rejected", "--data-dir", dir, "--device", "ox-9")
	if err != nil || strings.TrimSpace(out) != "no rejected messages from ox-9" {
		t.Errorf("no rejections: %q, %v", out, err)
	}
	if _, err := runCLI(t, "devices", "rejected", "--data-dir", filepath.Join(dir, "nowhere")); err == nil || !strings.Contains(err.Error(), "no vward data") {
		t.Errorf("missing data dir: %v", err)
	}
	if _, err := runCLI(t, "devices", "rejected", "--data-dir", dir, "--limit", "0"); err == nil {
		t.Error("--limit 0 accepted")
	}
}
