package tokens_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vward/vward"
	"github.com/vward/vward/sqlitedb"
	"github.com/vward/vward/tokens"
)

func open(t *testing.T) (*tokens.Store, func(q string) int) {
	t.Helper()
	db, err := sqlitedb.Open(filepath.Join(t.TempDir(), "vward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := tokens.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return s, count
}

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	s, count := open(t)
	secret, tok, err := s.Create(ctx, "gp-connect", []vward.WardID{"w1"}, 0, "root")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, tokens.Prefix) || len(secret) < 40 || tok.Scope != tokens.ScopeFHIRRead {
		t.Errorf("secret %q, token %+v", secret, tok)
	}
	// Only the hash is kept.
	if n := count(`SELECT COUNT(*) FROM api_tokens WHERE token_sha256 = '` + secret + `' OR name = '` + secret + `'`); n != 0 {
		t.Error("the secret itself is stored")
	}
	got, err := s.Authenticate(ctx, secret, "GET /fhir/R4/Patient/p1")
	if err != nil || got.Name != "gp-connect" || len(got.Wards) != 1 || got.Wards[0] != "w1" {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	for _, bad := range []string{"", "vwt_", secret + "x", strings.TrimPrefix(secret, tokens.Prefix)} {
		if _, err := s.Authenticate(ctx, bad, "GET /"); !errors.Is(err, tokens.ErrRefused) {
			t.Errorf("authenticate %q: %v, want refused", bad, err)
		}
	}
	if _, _, err := s.Create(ctx, "gp-connect", []vward.WardID{"w2"}, 0, "root"); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("a second gp-connect: %v, want a conflict", err)
	}
	for _, c := range []struct {
		name  string
		wards []vward.WardID
	}{{"", []vward.WardID{"w1"}}, {"GP Connect", []vward.WardID{"w1"}}, {"no-wards", nil}} {
		if _, _, err := s.Create(ctx, c.name, c.wards, 0, "root"); !errors.Is(err, vward.ErrInvalid) {
			t.Errorf("create %q %v: %v, want invalid", c.name, c.wards, err)
		}
	}

	if err := s.Revoke(ctx, "gp-connect", "root", "contract ended"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret, "GET /fhir/R4/Patient/p1"); !errors.Is(err, tokens.ErrRefused) {
		t.Errorf("a revoked token: %v, want refused", err)
	}
	if err := s.Revoke(ctx, "gp-connect", "root", ""); !errors.Is(err, vward.ErrConflict) {
		t.Errorf("revoke twice: %v, want a conflict", err)
	}
	if err := s.Revoke(ctx, "nobody", "root", ""); !errors.Is(err, vward.ErrNotFound) {
		t.Errorf("revoke an unknown token: %v, want not found", err)
	}
	ts, err := s.List(ctx)
	if err != nil || len(ts) != 1 || !ts[0].Revoked() || ts[0].RevokedBy != "root" {
		t.Errorf("list: %+v %v", ts, err)
	}
	uses, err := s.Audit(ctx, "gp-connect", 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, u := range uses {
		// The creation says when it expires, 90 days on: not this test's.
		detail, _, _ := strings.Cut(u.Detail, ", expires ")
		actions = append(actions, u.Action+" "+detail)
	}
	want := []string{"token.refused GET /fhir/R4/Patient/p1", "token.revoke contract ended",
		"token.use GET /fhir/R4/Patient/p1", "token.create scope fhir:read, wards w1"}
	if strings.Join(actions, "; ") != strings.Join(want, "; ") {
		t.Errorf("audit:\n%s\nwant\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
}
