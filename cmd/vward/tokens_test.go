package main

import (
	"strings"
	"testing"
)

// An admin creates a token for a ward, lists it without its secret,
// revokes it with a reason; all of it is in the token's audit.
func TestTokensCLI(t *testing.T) {
	dd := "--data-dir=" + t.TempDir()
	mustCLI(t, "wards", "add", "resp", "--name", "Respiratory", dd)
	out := mustCLI(t, "tokens", "add", "gp-system", "--ward", "resp", "--actor", "ops", dd)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "vwt_") || !strings.Contains(lines[0], "token gp-system for resp") {
		t.Fatalf("add printed:\n%s", out)
	}
	secret := lines[1]
	list := mustCLI(t, "tokens", "list", dd)
	if strings.Contains(list, secret) || !strings.Contains(list, "gp-system") || !strings.Contains(list, "ops") {
		t.Errorf("list:\n%s", list)
	}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"add", "gp-system", "--ward", "resp"}, "exists"},
		{[]string{"add", "other", "--ward", "nowhere"}, "not found"},
		{[]string{"add", "other"}, "at least one ward"},
		{[]string{"revoke", "gp-system"}, "--reason is required"},
		{[]string{"revoke", "nobody", "--reason", "x"}, "no such token"},
	} {
		if msg := failCLI(t, "", append(append([]string{"tokens"}, c.args...), dd)...); !strings.Contains(msg, c.says) {
			t.Errorf("%v: %s, want it to say %q", c.args, msg, c.says)
		}
	}
	mustCLI(t, "tokens", "revoke", "gp-system", "--reason", "contract ended", "--actor", "ops", dd)
	if list := mustCLI(t, "tokens", "list", dd); !strings.Contains(list, "by ops") {
		t.Errorf("list after revoke:\n%s", list)
	}
	audit := mustCLI(t, "tokens", "audit", "gp-system", dd)
	if !strings.Contains(audit, "token.revoke") || !strings.Contains(audit, "contract ended") || !strings.Contains(audit, "token.create") {
		t.Errorf("audit:\n%s", audit)
	}
}
