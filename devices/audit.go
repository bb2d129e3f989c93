package devices

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/vward/vward"
)

// The audit trail records every change to the registry: who, when, what and
// why. It is written in the same transaction as the change, so there is no
// change without its record.

type actorKey struct{}

// WithActor returns ctx naming who makes the registry changes done with
// it: a clinician's username on the board, "cli:<os user>" from the
// command line. Changes made without one are recorded as "system".
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorOf returns who ctx acts for.
func ActorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}

// AuditEntry is one recorded change.
type AuditEntry struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`  // e.g. "patient.spo2_scale"
	Subject string    `json:"subject"` // e.g. "patient:p-001"
	Detail  string    `json:"detail,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// Subjects of audit entries.
func wardSubject(id string) string    { return "ward:" + id }
func patientSubject(id string) string { return "patient:" + id }
func deviceSubject(id string) string  { return "device:" + id }
func userSubject(id string) string    { return "user:" + id }

// execer is a transaction or the database.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func audit(ctx context.Context, tx execer, action, subject, detail, reason string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO registry_audit (at, actor, action, subject, detail, reason) VALUES (?, ?, ?, ?, ?, ?)`,
		formatTime(now()), ActorOf(ctx), action, subject, detail, strings.TrimSpace(reason))
	if err != nil {
		return fmt.Errorf("record %s of %s: %w", action, subject, err)
	}
	return nil
}

// Execer is a transaction or a database, for RecordPatientAudit.
type Execer = execer

// RecordPatientAudit records a change to a patient's record made by another
// package in tx, the change's own transaction in the same SQL store (an
// observation entered by a clinician), in the registry's audit, so that the
// patient's audit trail (PatientAudit) holds every change made to them.
func RecordPatientAudit(ctx context.Context, tx Execer, action string, patient vward.PatientID, detail, reason string) error {
	return audit(ctx, tx, action, patientSubject(string(patient)), detail, reason)
}

// AuditQuery selects audit entries.
type AuditQuery struct {
	Subject string // "patient:p-001"; empty for every subject
	Limit   int    // newest first; 0 means 100
}

// Audit returns recorded changes, newest first.
func (r *Registry) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	rows, err := r.db.QueryContext(ctx, `SELECT id, at, actor, action, subject, detail, reason FROM registry_audit
		WHERE (? = '' OR subject = ?) ORDER BY id DESC LIMIT ?`, q.Subject, q.Subject, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Detail, &e.Reason); err != nil {
			return nil, fmt.Errorf("read audit: %w", err)
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
