// Package questionnaires keeps the questionnaires patients and carers
// answered (device protocol v1's questionnaire topic), per patient, in the
// SQL store the registry shares, for the patient view and its timeline.
// Ingest keeps each one here before the broker's message is acknowledged.
package questionnaires

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
)

// A questionnaire is kept once per device and msg_id, so a redelivery
// changes nothing; the triggers keep the record as answered.
var migrations = []string{
	`CREATE TABLE questionnaire_answers (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		patient_id TEXT NOT NULL,
		ward_id TEXT NOT NULL,
		device_id TEXT NOT NULL,
		msg_id TEXT NOT NULL,
		questionnaire TEXT NOT NULL,
		version INTEGER NOT NULL,
		answered_by TEXT NOT NULL,
		answered_at INTEGER NOT NULL,
		answers TEXT NOT NULL,
		UNIQUE (device_id, msg_id)
	);
	CREATE INDEX questionnaire_answers_patient ON questionnaire_answers(patient_id, answered_at);
	CREATE TRIGGER questionnaire_answers_never_changed BEFORE UPDATE ON questionnaire_answers
		BEGIN SELECT RAISE(ABORT, 'an answered questionnaire is never changed'); END;`,
}

// Store keeps answered questionnaires.
type Store struct {
	db *sql.DB
}

// Open migrates the questionnaires' table in db.
func Open(ctx context.Context, db *sql.DB) (*Store, error) {
	if err := sqlitedb.Migrate(ctx, db, "questionnaires", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Keep stores answered questionnaires in one transaction; one already kept
// (the same device and msg_id) is left as it was.
func (s *Store) Keep(ctx context.Context, qs []vward.Answered) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("keep %d questionnaires: %w", len(qs), err)
	}
	defer tx.Rollback()
	for _, q := range qs {
		answers, err := json.Marshal(q.Answers)
		if err != nil {
			return fmt.Errorf("encode the answers of %s %s: %w", q.Device, q.MsgID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO questionnaire_answers
			(patient_id, ward_id, device_id, msg_id, questionnaire, version, answered_by, answered_at, answers)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, msg_id) DO NOTHING`,
			q.Patient, q.Ward, q.Device, q.MsgID, q.Questionnaire, q.Version, q.AnsweredBy, q.At.UnixNano(), answers); err != nil {
			return fmt.Errorf("keep questionnaire %s from %s: %w", q.MsgID, q.Device, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("keep %d questionnaires: %w", len(qs), err)
	}
	return nil
}

// List returns a patient's questionnaires answered from since, newest
// first, at most limit of them.
func (s *Store) List(ctx context.Context, patient vward.PatientID, since time.Time, limit int) ([]vward.Answered, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT patient_id, ward_id, device_id, msg_id, questionnaire, version, answered_by, answered_at, answers
		FROM questionnaire_answers WHERE patient_id = ? AND answered_at >= ? ORDER BY answered_at DESC, id DESC LIMIT ?`, patient, since.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("list questionnaires of %s: %w", patient, err)
	}
	return scan(rows, "questionnaires of "+string(patient))
}

// scan reads answered questionnaires from rows, and closes them.
func scan(rows *sql.Rows, what string) ([]vward.Answered, error) {
	defer rows.Close()
	out := []vward.Answered{}
	for rows.Next() {
		var q vward.Answered
		var at int64
		var answers string
		if err := rows.Scan(&q.Patient, &q.Ward, &q.Device, &q.MsgID, &q.Questionnaire, &q.Version, &q.AnsweredBy, &at, &answers); err != nil {
			return nil, fmt.Errorf("read %s: %w", what, err)
		}
		q.At = time.Unix(0, at).UTC()
		if err := json.Unmarshal([]byte(answers), &q.Answers); err != nil {
			return nil, fmt.Errorf("read the answers of %s %s: %w", q.Device, q.MsgID, err)
		}
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return out, nil
}

// Latest returns each patient's newest questionnaire answered from since:
// what a starting node assesses again, so that a questionnaire kept and
// acknowledged just before a crash still raises its concern.
func (s *Store) Latest(ctx context.Context, since time.Time) ([]vward.Answered, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT patient_id, ward_id, device_id, msg_id, questionnaire, version, answered_by, answered_at, answers
		FROM questionnaire_answers q WHERE answered_at >= ? AND id = (SELECT id FROM questionnaire_answers
			WHERE patient_id = q.patient_id ORDER BY answered_at DESC, id DESC LIMIT 1)
		ORDER BY patient_id`, since.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read the latest questionnaires: %w", err)
	}
	return scan(rows, "the latest questionnaires")
}
