// Package tokens keeps the API tokens of machine clients (a shared care
// record, a GP system) that read FHIR for some wards without a person
// signing in. An admin creates a token for named wards; its secret is
// shown once and kept only as its SHA-256; a token can be revoked; every
// creation, revocation and use is audited. docs/fhir.md, "Machine
// clients", is the integrator's side.
package tokens

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
)

var migrations = []string{
	`CREATE TABLE api_tokens (
		name TEXT PRIMARY KEY,
		token_sha256 TEXT NOT NULL UNIQUE,
		scope TEXT NOT NULL,
		wards TEXT NOT NULL,
		created_at TEXT NOT NULL,
		created_by TEXT NOT NULL,
		revoked_at TEXT NOT NULL DEFAULT '',
		revoked_by TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE api_token_audit (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		token TEXT NOT NULL,
		at TEXT NOT NULL,
		actor TEXT NOT NULL,
		action TEXT NOT NULL,
		detail TEXT NOT NULL
	);
	CREATE INDEX api_token_audit_token ON api_token_audit (token, id);`,
	// '' for a token made before tokens expired: it never does.
	`ALTER TABLE api_tokens ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';`,
}

// DefaultValidity is how long a token is valid when its creator does not
// say, and MaxValidity the longest it may be: a token that never expires
// is one forgotten in a system nobody maintains any more.
const (
	DefaultValidity = 90 * 24 * time.Hour
	MaxValidity     = 366 * 24 * time.Hour
)

// ScopeFHIRRead is the only scope there is: read FHIR for the wards.
const ScopeFHIRRead = "fhir:read"

// Prefix begins every secret, so that a leaked one is recognised in logs
// and by secret scanners.
const Prefix = "vwt_"

// Token is a machine client's token, never its secret.
type Token struct {
	Name      string         `json:"name"`
	Scope     string         `json:"scope"`
	Wards     []vward.WardID `json:"wards"`
	CreatedAt time.Time      `json:"created_at"`
	CreatedBy string         `json:"created_by"`
	RevokedAt time.Time      `json:"revoked_at,omitzero"`
	RevokedBy string         `json:"revoked_by,omitempty"`
	// ExpiresAt is when it stops being accepted; zero for a token made
	// before tokens expired, which never does.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool { return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) }

// Use is one audited event of a token: its creation, revocation or a use.
type Use struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // "token.create", "token.revoke", "token.use", "token.refused"
	Detail string    `json:"detail"`
}

// Store keeps the tokens in the node's SQLite database.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

// Open migrates the tokens' tables in db.
func Open(ctx context.Context, db *sql.DB) (*Store, error) {
	if err := sqlitedb.Migrate(ctx, db, "tokens", migrations); err != nil {
		return nil, err
	}
	return &Store{db: db, now: func() time.Time { return time.Now().UTC() }}, nil
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ErrRefused is a secret that is unknown, revoked or expired: a caller
// cannot tell which.
var ErrRefused = errors.New("unknown, revoked or expired API token")

func sum(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create makes a token for wards, valid for valid (0: DefaultValidity; a
// day to MaxValidity), created by actor, and returns its secret, which is
// shown this once.
func (s *Store) Create(ctx context.Context, name string, wards []vward.WardID, valid time.Duration, actor string) (string, Token, error) {
	if valid == 0 {
		valid = DefaultValidity
	}
	if valid < 24*time.Hour || valid > MaxValidity {
		return "", Token{}, vward.Errorf(vward.ErrInvalid, "token %s: valid for %s: want from a day to %d days", name, valid, int(MaxValidity/(24*time.Hour)))
	}
	if !namePattern.MatchString(name) {
		return "", Token{}, vward.Errorf(vward.ErrInvalid, "token name %q: 1–64 lower-case letters, digits, '.', '_' or '-'", name)
	}
	if len(wards) == 0 {
		return "", Token{}, vward.Errorf(vward.ErrInvalid, "token %s: name at least one ward it may read", name)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, fmt.Errorf("make token %s: %w", name, err)
	}
	secret := Prefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	t := Token{Name: name, Scope: ScopeFHIRRead, Wards: wards, CreatedAt: now, CreatedBy: actor, ExpiresAt: now.Add(valid)}
	wj, _ := json.Marshal(wards)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens WHERE name = ?`, name).Scan(&n); err != nil {
		return "", Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	if n > 0 {
		return "", Token{}, vward.Errorf(vward.ErrConflict, "token %s exists; revoke it and choose another name", name)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (name, token_sha256, scope, wards, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		name, sum(secret), t.Scope, string(wj), formatTime(t.CreatedAt), actor, formatTime(t.ExpiresAt)); err != nil {
		return "", Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	if err := s.audit(ctx, tx, name, actor, "token.create", "scope "+t.Scope+", wards "+joinWards(wards)+", expires "+formatTime(t.ExpiresAt)); err != nil {
		return "", Token{}, err
	}
	if err := tx.Commit(); err != nil {
		return "", Token{}, fmt.Errorf("create token %s: %w", name, err)
	}
	return secret, t, nil
}

// Revoke ends a token: its secret is refused from now on.
func (s *Store) Revoke(ctx context.Context, name, actor, reason string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", name, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE name = ? AND revoked_at = ''`,
		formatTime(s.now()), actor, name)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.token(ctx, tx, `name = ?`, name); err != nil {
			return err
		}
		return vward.Errorf(vward.ErrConflict, "token %s is already revoked", name)
	}
	if err := s.audit(ctx, tx, name, actor, "token.revoke", reason); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke token %s: %w", name, err)
	}
	return nil
}

// Authenticate returns the token a secret belongs to, and audits the use
// (what: the request, such as "GET /fhir/R4/Patient/p1"). A revoked
// token's use is audited as refused; an unknown secret names no token
// and is not.
func (s *Store) Authenticate(ctx context.Context, secret, what string) (Token, error) {
	if !strings.HasPrefix(secret, Prefix) {
		return Token{}, ErrRefused
	}
	t, err := s.token(ctx, s.db, `token_sha256 = ?`, sum(secret))
	if errors.Is(err, vward.ErrNotFound) {
		return Token{}, ErrRefused
	}
	if err != nil {
		return Token{}, err
	}
	action, detail := "token.use", what
	refused := t.Revoked() || t.Expired(s.now())
	switch {
	case t.Revoked():
		action = "token.refused"
	case refused:
		action, detail = "token.refused", "expired "+formatTime(t.ExpiresAt)+": "+what
	}
	// No use without its record: a failed audit refuses the request.
	if err := s.audit(ctx, s.db, t.Name, "token:"+t.Name, action, detail); err != nil {
		return Token{}, err
	}
	if refused {
		return Token{}, ErrRefused
	}
	return t, nil
}

// List returns every token, revoked ones too, by name.
func (s *Store) List(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Audit returns a token's audited events, newest first.
func (s *Store) Audit(ctx context.Context, name string, limit int) ([]Use, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, `SELECT at, actor, action, detail FROM api_token_audit WHERE token = ? ORDER BY id DESC LIMIT ?`, name, limit)
	if err != nil {
		return nil, fmt.Errorf("audit of token %s: %w", name, err)
	}
	defer rows.Close()
	out := []Use{}
	for rows.Next() {
		var u Use
		var at string
		if err := rows.Scan(&at, &u.Actor, &u.Action, &u.Detail); err != nil {
			return nil, fmt.Errorf("audit of token %s: %w", name, err)
		}
		u.At = parseTime(at)
		out = append(out, u)
	}
	return out, rows.Err()
}

const tokenColumns = `name, scope, wards, created_at, created_by, revoked_at, revoked_by, expires_at`

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) token(ctx context.Context, q querier, where string, arg any) (Token, error) {
	t, err := scanToken(q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Token{}, vward.Errorf(vward.ErrNotFound, "no such token")
	}
	if err != nil {
		return Token{}, fmt.Errorf("read token: %w", err)
	}
	return t, nil
}

func scanToken(row interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var wards, created, revoked, expires string
	if err := row.Scan(&t.Name, &t.Scope, &wards, &created, &t.CreatedBy, &revoked, &t.RevokedBy, &expires); err != nil {
		return Token{}, err
	}
	if expires != "" {
		t.ExpiresAt = parseTime(expires)
	}
	if err := json.Unmarshal([]byte(wards), &t.Wards); err != nil {
		return Token{}, fmt.Errorf("token %s: wards %q: %w", t.Name, wards, err)
	}
	t.CreatedAt = parseTime(created)
	if revoked != "" {
		t.RevokedAt = parseTime(revoked)
	}
	return t, nil
}

func (s *Store) audit(ctx context.Context, q querier, token, actor, action, detail string) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO api_token_audit (token, at, actor, action, detail) VALUES (?, ?, ?, ?, ?)`,
		token, formatTime(s.now()), actor, action, detail); err != nil {
		return fmt.Errorf("audit %s of token %s: %w", action, token, err)
	}
	return nil
}

func joinWards(ws []vward.WardID) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = string(w)
	}
	return strings.Join(s, ",")
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
