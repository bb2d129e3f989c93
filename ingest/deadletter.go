package ingest

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/internal/sqlitedb"
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
}

// DeadLetterStore keeps rejected messages in the embedded SQL store.
type DeadLetterStore struct{ db *sql.DB }

// OpenDeadLetters migrates the dead-letter table in db.
func OpenDeadLetters(ctx context.Context, db *sql.DB) (*DeadLetterStore, error) {
	if err := sqlitedb.Migrate(ctx, db, "ingest", deadLetterMigrations); err != nil {
		return nil, err
	}
	return &DeadLetterStore{db: db}, nil
}

// Keep implements DeadLetters in one transaction.
func (s *DeadLetterStore) Keep(ctx context.Context, rs []Rejection) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keep %d rejections: %w", len(rs), err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO rejected_messages (device_id, topic, msg_id, code, reason, payload, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("keep %d rejections: %w", len(rs), err)
	}
	defer stmt.Close()
	for _, r := range rs {
		payload := r.Payload
		if payload == nil {
			payload = []byte{}
		}
		if _, err := stmt.ExecContext(ctx, string(r.Device), r.Topic, r.MsgID, r.Code, r.Reason, payload, r.Received.UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("keep rejection of %s: %w", r.Device, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keep %d rejections: %w", len(rs), err)
	}
	return nil
}

// List returns the newest rejections first, of one device when device is
// not empty, at most limit of them.
func (s *DeadLetterStore) List(ctx context.Context, device vward.DeviceID, limit int) ([]Rejection, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, device_id, topic, msg_id, code, reason, payload, received_at FROM rejected_messages
		WHERE (? = '' OR device_id = ?) ORDER BY id DESC LIMIT ?`, string(device), string(device), limit)
	if err != nil {
		return nil, fmt.Errorf("list rejections: %w", err)
	}
	defer rows.Close()
	var out []Rejection
	for rows.Next() {
		var r Rejection
		var dev, at string
		if err := rows.Scan(&r.ID, &dev, &r.Topic, &r.MsgID, &r.Code, &r.Reason, &r.Payload, &at); err != nil {
			return nil, fmt.Errorf("list rejections: %w", err)
		}
		r.Device = vward.DeviceID(dev)
		r.Received, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, r)
	}
	return out, rows.Err()
}
