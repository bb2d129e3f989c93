package tokens

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
)

// A token is accepted until it expires and refused from then on, the
// refusal audited with when it expired; its validity is bounded, 90 days
// unless said; one made before tokens expired never does.
func TestTokenExpires(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }

	secret, tok, err := s.Create(ctx, "gp-system", []vward.WardID{"w1"}, 30*24*time.Hour, "root")
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.Equal(now.Add(30 * 24 * time.Hour)) {
		t.Fatalf("expires %v", tok.ExpiresAt)
	}
	now = tok.ExpiresAt.Add(-time.Second)
	if _, err := s.Authenticate(ctx, secret, "GET /fhir/R4/Patient/p1"); err != nil {
		t.Fatalf("a second before it expires: %v", err)
	}
	now = tok.ExpiresAt
	if _, err := s.Authenticate(ctx, secret, "GET /fhir/R4/Patient/p1"); !errors.Is(err, ErrRefused) {
		t.Fatalf("when it expires: %v, want refused", err)
	}
	uses, err := s.Audit(ctx, "gp-system", 1)
	if err != nil || len(uses) != 1 || uses[0].Action != "token.refused" || uses[0].Detail != "expired 2026-12-31T09:00:00Z: GET /fhir/R4/Patient/p1" {
		t.Errorf("audit %+v %v", uses, err)
	}
	if l, err := s.List(ctx); err != nil || len(l) != 1 || !l[0].Expired(now) || !l[0].ExpiresAt.Equal(tok.ExpiresAt) {
		t.Errorf("list %+v %v", l, err)
	}

	_, dflt, err := s.Create(ctx, "analytics", []vward.WardID{"w1"}, 0, "root")
	if err != nil || !dflt.ExpiresAt.Equal(now.Add(DefaultValidity)) {
		t.Errorf("default validity: %+v %v", dflt, err)
	}
	for _, d := range []time.Duration{time.Hour, MaxValidity + 24*time.Hour, -24 * time.Hour} {
		if _, _, err := s.Create(ctx, "bad", []vward.WardID{"w1"}, d, "root"); !errors.Is(err, vward.ErrInvalid) {
			t.Errorf("valid for %s: %v, want invalid", d, err)
		}
	}

	// Made before tokens expired: no expiry, accepted.
	if _, err := db.Exec(`INSERT INTO api_tokens (name, token_sha256, scope, wards, created_at, created_by) VALUES ('old', ?, ?, '["w1"]', ?, 'root')`,
		sum(Prefix+"old-secret"), ScopeFHIRRead, formatTime(now)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * MaxValidity)
	if old, err := s.Authenticate(ctx, Prefix+"old-secret", "GET /fhir/R4/metadata"); err != nil || !old.ExpiresAt.IsZero() {
		t.Errorf("a token from before expiry: %+v %v", old, err)
	}
}
