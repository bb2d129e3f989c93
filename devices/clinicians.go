package devices

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
)

var clinicianMigrations = []string{
	`CREATE TABLE clinicians (
		username TEXT PRIMARY KEY,
		password_bcrypt TEXT NOT NULL,
		role TEXT NOT NULL CHECK (role IN ('admin', 'clinician', 'viewer')),
		wards TEXT NOT NULL DEFAULT '[]'
	);`,
	// generation counts changes of the account: a session signed in under
	// an older one has ended (web.Auth).
	`ALTER TABLE clinicians ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;`,
}

// Clinician is a person who signs in to the board.
type Clinician struct {
	Username string         `json:"username"`
	Role     string         `json:"role"`
	Wards    []vward.WardID `json:"wards"`
	// Generation changes with every change of the password, role or
	// wards: sessions signed in under another have ended.
	Generation int64 `json:"-"`
}

// validRole checks a role's name.
func validRole(username, role string) error {
	switch role {
	case "admin", "clinician", "viewer":
		return nil
	}
	return invalidf("clinician %s: role %q is not admin, clinician or viewer", username, role)
}

// ErrBadLogin is returned for an unknown user or a wrong password alike, so
// that a caller cannot tell which usernames exist.
var ErrBadLogin = errors.New("wrong username or password")

func (r *Registry) migrateClinicians(ctx context.Context) error {
	return sqlitedb.Migrate(ctx, r.db, "clinicians", clinicianMigrations)
}

// AddClinician creates or replaces a clinician's account. The password is
// kept only as a bcrypt hash.
func (r *Registry) AddClinician(ctx context.Context, c Clinician, password string) error {
	if c.Username == "" {
		return invalidf("add clinician: username is empty")
	}
	if len(password) < 8 {
		return invalidf("add clinician %s: the password must have at least 8 characters", c.Username)
	}
	if err := validRole(c.Username, c.Role); err != nil {
		return fmt.Errorf("add clinician: %w", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("add clinician %s: %w", c.Username, err)
	}
	wards := c.Wards
	if wards == nil {
		wards = []vward.WardID{}
	}
	w, _ := json.Marshal(wards)
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add clinician %s: %w", c.Username, err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, `INSERT INTO clinicians (username, password_bcrypt, role, wards) VALUES (?, ?, ?, ?)
		ON CONFLICT(username) DO UPDATE SET password_bcrypt = excluded.password_bcrypt, role = excluded.role, wards = excluded.wards,
			generation = generation + 1`,
		c.Username, string(hash), c.Role, string(w))
	if err != nil {
		return fmt.Errorf("add clinician %s: %w", c.Username, err)
	}
	if err := audit(ctx, tx, "user.add", userSubject(c.Username), fmt.Sprintf("role %s, wards %s", c.Role, w), ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add clinician %s: %w", c.Username, err)
	}
	return nil
}

// SetPassword replaces a clinician's password, keeping their role and
// wards. Their sessions end, board streams included.
func (r *Registry) SetPassword(ctx context.Context, username, password string) error {
	if len(password) < 8 {
		return invalidf("set password of %s: the password must have at least 8 characters", username)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", username, err)
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", username, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE clinicians SET password_bcrypt = ?, generation = generation + 1 WHERE username = ?`, string(hash), username)
	if err != nil {
		return fmt.Errorf("set password of %s: %w", username, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("clinician %s: %w", username, vward.ErrNotFound)
	}
	if err := audit(ctx, tx, "user.passwd", userSubject(username), "", ""); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("set password of %s: %w", username, err)
	}
	return nil
}

// UpdateClinician changes a clinician's role and wards. Their sessions
// end, board streams included: they sign in again with the new rights.
func (r *Registry) UpdateClinician(ctx context.Context, username, role string, wards []vward.WardID, reason string) error {
	if err := validRole(username, role); err != nil {
		return fmt.Errorf("update clinician: %w", err)
	}
	if wards == nil {
		wards = []vward.WardID{}
	}
	w, _ := json.Marshal(wards)
	return r.changeClinician(ctx, username, "user.update", fmt.Sprintf("role %s, wards %s", role, w), reason,
		`UPDATE clinicians SET role = ?, wards = ?, generation = generation + 1 WHERE username = ?`, role, string(w), username)
}

// RemoveClinician deletes a clinician's account. Their sessions end.
func (r *Registry) RemoveClinician(ctx context.Context, username, reason string) error {
	return r.changeClinician(ctx, username, "user.remove", "", reason, `DELETE FROM clinicians WHERE username = ?`, username)
}

// changeClinician runs one statement on a clinician's row with its audit
// entry, in one transaction.
func (r *Registry) changeClinician(ctx context.Context, username, action, detail, reason, query string, args ...any) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, username, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s %s: %w", action, username, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("clinician %s: %w", username, vward.ErrNotFound)
	}
	if err := audit(ctx, tx, action, userSubject(username), detail, reason); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s %s: %w", action, username, err)
	}
	return nil
}

// Clinicians lists the accounts by username.
func (r *Registry) Clinicians(ctx context.Context) ([]Clinician, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT username, role, wards FROM clinicians ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("list clinicians: %w", err)
	}
	defer rows.Close()
	out := []Clinician{}
	for rows.Next() {
		var c Clinician
		var wards string
		if err := rows.Scan(&c.Username, &c.Role, &wards); err != nil {
			return nil, fmt.Errorf("list clinicians: %w", err)
		}
		if err := json.Unmarshal([]byte(wards), &c.Wards); err != nil || c.Wards == nil {
			c.Wards = []vward.WardID{}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Clinician returns a clinician's account.
func (r *Registry) Clinician(ctx context.Context, username string) (Clinician, error) {
	c, _, err := r.clinician(ctx, username)
	return c, err
}

func (r *Registry) clinician(ctx context.Context, username string) (Clinician, string, error) {
	var c Clinician
	var hash, wards string
	err := r.db.QueryRowContext(ctx, `SELECT username, password_bcrypt, role, wards, generation FROM clinicians WHERE username = ?`, username).
		Scan(&c.Username, &hash, &c.Role, &wards, &c.Generation)
	if errors.Is(err, sql.ErrNoRows) {
		return Clinician{}, "", fmt.Errorf("clinician %s: %w", username, vward.ErrNotFound)
	}
	if err != nil {
		return Clinician{}, "", fmt.Errorf("clinician %s: %w", username, err)
	}
	if err := json.Unmarshal([]byte(wards), &c.Wards); err != nil {
		return Clinician{}, "", fmt.Errorf("clinician %s: wards: %w", username, err)
	}
	return c, hash, nil
}

// dummyHash makes a login for an unknown user cost as much as a real one.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)

// Login checks a clinician's password.
func (r *Registry) Login(ctx context.Context, username, password string) (Clinician, error) {
	c, hash, err := r.clinician(ctx, username)
	if errors.Is(err, vward.ErrNotFound) {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		return Clinician{}, ErrBadLogin
	}
	if err != nil {
		return Clinician{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return Clinician{}, ErrBadLogin
	}
	return c, nil
}
