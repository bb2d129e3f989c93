package ingest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
)

var deadLetterMigrations = []string{
	`CREATE TABLE rejected_messages (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		device_id TEXT NOT NULL,
		topic TEXT NOT NULL,
		msg_id TEXT NOT NULL DEFAULT '',
		code TEXT NOT NULL,
		reason TEXT NOT NULL,
		payload BLOB NOT NULL,
		received_at TEXT NOT NULL
	);
	CREATE INDEX rejected_messages_device ON rejected_messages(device_id, id);`,
	// A kept payload is a bounded prefix of what was sent: its whole size
	// and SHA-256 say what it was.
	`ALTER TABLE rejected_messages ADD COLUMN payload_size INTEGER NOT NULL DEFAULT -1;
	ALTER TABLE rejected_messages ADD COLUMN payload_sha256 TEXT NOT NULL DEFAULT '';`,
}

// What the dead-letter store keeps (docs/operator.md, "Dead letters"): a
// rejected payload's first MaxKeptPayload bytes, and rejections for
// DeadLetterRetention, at most DeadLetterMaxBytes of them, the oldest
// going first.
const (
	MaxKeptPayload      = 4 << 10
	DeadLetterRetention = 30 * 24 * time.Hour
	DeadLetterMaxBytes  = 64 << 20
	// deadLetterSweepEvery is how often Keep applies the retention.
	deadLetterSweepEvery = time.Minute
)

// DeadLetterStore keeps rejected messages in the embedded SQL store.
type DeadLetterStore struct {
	db       *sql.DB
	maxBytes int64 // DeadLetterMaxBytes; tests lower it

	mu        sync.Mutex
	lastSweep time.Time
}

// OpenDeadLetters migrates the dead-letter table in db.
func OpenDeadLetters(ctx context.Context, db *sql.DB) (*DeadLetterStore, error) {
	if err := sqlitedb.Migrate(ctx, db, "ingest", deadLetterMigrations); err != nil {
		return nil, err
	}
	return &DeadLetterStore{db: db, maxBytes: DeadLetterMaxBytes}, nil
}

// Keep implements DeadLetters in one transaction.
func (s *DeadLetterStore) Keep(ctx context.Context, rs []Rejection) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keep %d rejections: %w", len(rs), err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO rejected_messages (device_id, topic, msg_id, code, reason, payload, received_at, payload_size, payload_sha256)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("keep %d rejections: %w", len(rs), err)
	}
	defer stmt.Close()
	for _, r := range rs {
		sum := sha256.Sum256(r.Payload)
		kept := r.Payload[:min(len(r.Payload), MaxKeptPayload)]
		if len(kept) < len(r.Payload) && utf8.Valid(r.Payload) {
			for len(kept) > 0 && !utf8.Valid(kept) {
				kept = kept[:len(kept)-1] // cut between characters, so text stays text
			}
		}
		if kept == nil {
			kept = []byte{}
		}
		if _, err := stmt.ExecContext(ctx, string(r.Device), r.Topic, r.MsgID, r.Code, r.Reason, kept, r.Received.UTC().Format(time.RFC3339Nano),
			len(r.Payload), hex.EncodeToString(sum[:])); err != nil {
			return fmt.Errorf("keep rejection of %s: %w", r.Device, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keep %d rejections: %w", len(rs), err)
	}
	s.mu.Lock()
	due := time.Since(s.lastSweep) >= deadLetterSweepEvery
	if due {
		s.lastSweep = time.Now()
	}
	s.mu.Unlock()
	if due {
		return s.Sweep(ctx, time.Now())
	}
	return nil
}

// Sweep applies the retention: rejections older than DeadLetterRetention
// go, then the oldest until the rest are within the byte bound.
func (s *DeadLetterStore) Sweep(ctx context.Context, now time.Time) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM rejected_messages WHERE received_at < ?`,
		now.Add(-DeadLetterRetention).UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("dead-letter retention by age: %w", err)
	}
	// The newest rows whose running size exceeds the bound, and all older.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM rejected_messages WHERE id <= (
		SELECT id FROM (SELECT id, SUM(length(payload) + length(reason) + length(topic) + 256) OVER (ORDER BY id DESC) AS total FROM rejected_messages)
		WHERE total > ? ORDER BY id DESC LIMIT 1)`, s.maxBytes); err != nil {
		return fmt.Errorf("dead-letter retention by size: %w", err)
	}
	return nil
}

// RejectionQuery selects kept rejections, newest first.
type RejectionQuery struct {
	Device vward.DeviceID // empty for every device
	Before int64          // only rejections with a smaller id (the next page); 0 for the newest
	Limit  int            // 0 means 100
}

// List returns kept rejections, newest first. Payloads are at most
// MaxKeptPayload bytes each, so a page of Limit is bounded too; page on
// with Before set to the last id.
func (s *DeadLetterStore) List(ctx context.Context, q RejectionQuery) ([]Rejection, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, device_id, topic, msg_id, code, reason, payload, received_at, payload_size, payload_sha256 FROM rejected_messages
		WHERE (? = '' OR device_id = ?) AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?`, string(q.Device), string(q.Device), q.Before, q.Before, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("list rejections: %w", err)
	}
	defer rows.Close()
	var out []Rejection
	for rows.Next() {
		var r Rejection
		var dev, at string
		if err := rows.Scan(&r.ID, &dev, &r.Topic, &r.MsgID, &r.Code, &r.Reason, &r.Payload, &at, &r.Size, &r.SHA256); err != nil {
			return nil, fmt.Errorf("list rejections: %w", err)
		}
		if r.Size < 0 { // kept whole, before sizes were recorded
			r.Size = len(r.Payload)
		}
		r.Device = vward.DeviceID(dev)
		r.Received, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, r)
	}
	return out, rows.Err()
}
