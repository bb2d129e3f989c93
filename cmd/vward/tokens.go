package main

// `vward tokens …`: machine clients' API tokens for FHIR (docs/fhir.md,
// "Machine clients").

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/tokens"
)

func newTokensCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Create, list and revoke the API tokens machine clients read FHIR with",
		Long: `A machine client (a shared care record, a GP system) reads /fhir/R4 with
Authorization: Bearer <token>, as a viewer of the token's wards. The secret is
printed once, at its creation, and kept only as its SHA-256. Every creation,
revocation and use is audited.`,
	}
	cmd.AddCommand(newTokensAddCmd(), newTokensListCmd(), newTokensRevokeCmd(), newTokensAuditCmd())
	return cmd
}

// doTokens runs f with the tokens' store and the registry of the data
// dir, and a context naming the actor.
func (o *registryOpts) doTokens(cmd *cobra.Command, f func(ctx context.Context, reg *devices.Registry, ts *tokens.Store) error) error {
	ts, reg, ctx, done, err := openOnRegistry(cmd.Context(), o, func(ctx context.Context, db *sql.DB, _ *devices.Registry) (*tokens.Store, error) {
		return tokens.Open(ctx, db)
	})
	if err != nil {
		return err
	}
	defer done()
	return f(ctx, reg, ts)
}

func newTokensAddCmd() *cobra.Command {
	var (
		o     registryOpts
		wards []string
		days  int
	)
	cmd := &cobra.Command{
		Use:     "add NAME --ward WARD...",
		Short:   "Create a token for wards; its secret is printed this once",
		Example: `  vward tokens add gp-system --ward resp-east --valid-days 180`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.doTokens(cmd, func(ctx context.Context, reg *devices.Registry, ts *tokens.Store) error {
				ws := make([]vward.WardID, len(wards))
				for i, w := range wards {
					if _, err := reg.Ward(ctx, vward.WardID(w)); err != nil {
						return err
					}
					ws[i] = vward.WardID(w)
				}
				secret, t, err := ts.Create(ctx, args[0], ws, time.Duration(days)*24*time.Hour, devices.ActorOf(ctx))
				if err != nil {
					return err
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), map[string]any{"token": t, "secret": secret})
				}
				return printOut(cmd, "token %s for %s, valid until %s; its secret, shown this once:\n%s\n",
					t.Name, strings.Join(wards, ", "), t.ExpiresAt.Format(time.RFC3339), secret)
			})
		},
	}
	o.register(cmd.Flags(), true, true)
	cmd.Flags().StringArrayVar(&wards, "ward", nil, "a ward it may read (repeatable, at least one)")
	cmd.Flags().IntVar(&days, "valid-days", int(tokens.DefaultValidity/(24*time.Hour)), "days it is valid for, at most 366")
	return cmd
}

func newTokensListCmd() *cobra.Command {
	var o registryOpts
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens, revoked ones too",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.doTokens(cmd, func(ctx context.Context, _ *devices.Registry, ts *tokens.Store) error {
				list, err := ts.List(ctx)
				if err != nil {
					return err
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), list)
				}
				return writeTable(cmd.OutOrStdout(), list, "no tokens; create one with vward tokens add", "NAME\tWARDS\tCREATED\tBY\tEXPIRES\tREVOKED",
					func(t tokens.Token) []string {
						ws := make([]string, len(t.Wards))
						for i, w := range t.Wards {
							ws[i] = string(w)
						}
						revoked := ""
						if t.Revoked() {
							revoked = t.RevokedAt.Format(time.RFC3339) + " by " + t.RevokedBy
						}
						expires := "never"
						if !t.ExpiresAt.IsZero() {
							expires = t.ExpiresAt.Format(time.RFC3339)
							if t.Expired(time.Now()) {
								expires += " (expired)"
							}
						}
						return []string{cell(t.Name), cell(strings.Join(ws, ", ")), t.CreatedAt.Format(time.RFC3339), cell(t.CreatedBy), expires, cell(revoked)}
					})
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	return cmd
}

func newTokensRevokeCmd() *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:     "revoke NAME --reason TEXT",
		Short:   "Revoke a token: it is refused from now on",
		Example: `  vward tokens revoke gp-system --reason "contract ended"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError{errors.New("--reason is required: it is kept in the token's audit")}
			}
			return o.doTokens(cmd, func(ctx context.Context, _ *devices.Registry, ts *tokens.Store) error {
				if err := ts.Revoke(ctx, args[0], devices.ActorOf(ctx), reason); err != nil {
					return err
				}
				return printOut(cmd, "token %s revoked\n", args[0])
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit (required)")
	return cmd
}

func newTokensAuditCmd() *cobra.Command {
	var (
		o     registryOpts
		limit int
	)
	cmd := &cobra.Command{
		Use:   "audit NAME",
		Short: "A token's creation, revocation and uses, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.doTokens(cmd, func(ctx context.Context, _ *devices.Registry, ts *tokens.Store) error {
				uses, err := ts.Audit(ctx, args[0], limit)
				if err != nil {
					return err
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), uses)
				}
				return writeTable(cmd.OutOrStdout(), uses, fmt.Sprintf("nothing audited for token %s", args[0]), "AT\tACTOR\tACTION\tDETAIL",
					func(u tokens.Use) []string {
						return []string{u.At.Format(time.RFC3339), cell(u.Actor), u.Action, cell(u.Detail)}
					})
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many, 1 to 1000")
	return cmd
}
