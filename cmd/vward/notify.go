package main

// `vward notify …`: the channels, routes, contacts and rotas that decide who
// is told of an alert, and a test-send (docs/operator.md, "Configuring
// notification channels").

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/notify"
)

func newNotifyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Configure who is told of alerts, and how: channels, routes, contacts, rotas",
		Long: `Configure how alerts reach people (docs/alerts.md, "Who is told when").

A channel is a way to send: a signed webhook or an SMTP relay. A route says
that a ward's escalation tier (0 = ward clinician) of a queue (clinical or
technical) tells a user, everyone of a role on the ward, or whoever a rota has
on call, over a channel. A contact is where an email channel reaches a user.

Secrets (the webhook key, the SMTP password) are read from standard input and
never printed back. Every change is recorded in the notify audit trail. A
running vward uses a change at the next notification.`,
	}
	cmd.AddCommand(newNotifyChannelsCmd(), newNotifyRoutesCmd(), newNotifyContactsCmd(), newNotifyRotasCmd(), newNotifyTestSendCmd())
	return cmd
}

// notifyDo runs f with the notify store and the registry of the data dir,
// and a context naming the actor.
func notifyDo(cmd *cobra.Command, o *registryOpts, f func(ctx context.Context, st *notify.Store, reg *devices.Registry) error) error {
	st, reg, ctx, done, err := openOnRegistry(cmd.Context(), o, func(ctx context.Context, db *sql.DB, _ *devices.Registry) (*notify.Store, error) {
		return notify.OpenStore(ctx, db)
	})
	if err != nil {
		return err
	}
	defer done()
	return f(ctx, st, reg)
}

func newNotifyChannelsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "channels", Short: "List, set and remove notification channels"}
	cmd.AddCommand(newNotifyChannelsListCmd(), newNotifyChannelsSetCmd(), newNotifyChannelsRemoveCmd())
	return cmd
}

func newNotifyChannelsListCmd() *cobra.Command {
	var o registryOpts
	cmd := &cobra.Command{
		Use: "list", Short: "List the channels (secrets are shown only as set or not)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notifyDo(cmd, &o, func(ctx context.Context, st *notify.Store, _ *devices.Registry) error {
				cs, err := st.Channels(ctx)
				if err != nil {
					return err
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), cs)
				}
				return writeTable(cmd.OutOrStdout(), cs, "no channels; add one with vward notify channels set", "NAME\tKIND\tDETAIL\tWHERE\tSECRET", func(c notify.ChannelView) []string {
					where, secret := c.URL, c.HasSecret
					if c.Kind == notify.KindEmail {
						where = fmt.Sprintf("%s:%d from %s", c.Host, c.Port, c.From)
						secret = c.HasPassword
					}
					s := "not set"
					if secret {
						s = "set"
					}
					return []string{cell(c.Name), c.Kind, string(c.Detail), cell(where), s}
				})
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	return cmd
}

func newNotifyChannelsSetCmd() *cobra.Command {
	var (
		o          registryOpts
		c          notify.ChannelConfig
		detail     string
		timeout    int
		keepSecret bool
	)
	cmd := &cobra.Command{
		Use:   "set NAME --kind webhook|email ...",
		Short: "Add or change a channel; its secret is read from standard input",
		Long: `Add or change a channel. A webhook's signing key (at least 16 characters), or
an email relay's password when --username is given, is read from the first
line of standard input; --keep-secret keeps the one stored.

Email is sent with STARTTLS and AUTH PLAIN; --plaintext (no TLS) is allowed
only for a relay on the loopback.`,
		Example: `  openssl rand -hex 32 | vward notify channels set pager --kind webhook --url https://pager.example.nhs.uk/vward
  vward notify channels set mail --kind email --host smtp.example.nhs.uk --port 587 \
      --username vward --from vward@example.nhs.uk --detail initials`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return notifyDo(cmd, &o, func(ctx context.Context, st *notify.Store, _ *devices.Registry) error {
				c.Name, c.Detail, c.Timeout = args[0], notify.Detail(detail), notify.Seconds(timeout)
				needs := c.Kind == notify.KindWebhook || c.Kind == notify.KindEmail && c.Username != ""
				if needs && !keepSecret {
					what := "Webhook signing key for " + c.Name + ": "
					if c.Kind == notify.KindEmail {
						what = "SMTP password of " + c.Username + ": "
					}
					s, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), what)
					if err != nil {
						return fmt.Errorf("channel %s: %w (or pass --keep-secret)", c.Name, err)
					}
					if c.Kind == notify.KindWebhook {
						c.Secret = s
					} else {
						c.Password = s
					}
				}
				if err := st.PutChannel(ctx, c); err != nil {
					return err
				}
				return printOut(cmd, "channel %s set (%s)\n", c.Name, c.Kind)
			})
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, false)
	fs.StringVar(&c.Kind, "kind", "", "webhook or email (required)")
	fs.StringVar(&detail, "detail", "initials", "patient detail in notifications: none, id, initials or name")
	fs.IntVar(&timeout, "timeout", 0, "seconds one attempt may take (default 10 for a webhook, 20 for email)")
	fs.StringVar(&c.URL, "url", "", "webhook: the endpoint")
	fs.StringVar(&c.Host, "host", "", "email: the SMTP relay's host")
	fs.IntVar(&c.Port, "port", 587, "email: the SMTP relay's port")
	fs.StringVar(&c.Username, "username", "", "email: the relay account (its password is read from standard input)")
	fs.StringVar(&c.From, "from", "", "email: the sender address")
	fs.StringVar(&c.CAFile, "ca-file", "", "email: CA certificate(s) to verify the relay with, instead of the system's")
	fs.BoolVar(&c.Plaintext, "plaintext", false, "email: no STARTTLS (a relay on the loopback only)")
	fs.BoolVar(&keepSecret, "keep-secret", false, "keep the stored key or password")
	_ = cmd.MarkFlagRequired("kind")
	return cmd
}

func newNotifyChannelsRemoveCmd() *cobra.Command {
	var o registryOpts
	cmd := &cobra.Command{
		Use: "remove NAME", Short: "Remove a channel, with its routes and contacts", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return notifyDo(cmd, &o, func(ctx context.Context, st *notify.Store, _ *devices.Registry) error {
				if err := st.RemoveChannel(ctx, args[0]); err != nil {
					return err
				}
				return printOut(cmd, "channel %s removed\n", args[0])
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	return cmd
}

func newNotifyRoutesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "routes", Short: "List, add and remove who each ward's tiers tell"}
	cmd.AddCommand(newNotifyRoutesListCmd(), newNotifyRoutesAddCmd(), newNotifyRoutesRemoveCmd())
	return cmd
}

func newNotifyRoutesListCmd() *cobra.Command {
	var (
		o    registryOpts
		ward string
	)
	cmd := &cobra.Command{
		Use: "list [--ward WARD]", Short: "List the routes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notifyDo(cmd, &o, func(ctx context.Context, st *notify.Store, _ *devices.Registry) error {
				rs, err := st.Routes(ctx, vward.WardID(ward))
				if err != nil {
					return err
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), rs)
				}
				return writeTable(cmd.OutOrStdout(), rs, "no routes; add one with vward notify routes add", "ID\tWARD\tQUEUE\tTIER\tTELLS\tCHANNEL\tAT NIGHT", func(r notify.Route) []string {
					night := "yes"
					if r.Queue == alerting.Technical && !r.AtNight {
						night = "no"
					}
					return []string{strconv.FormatInt(r.ID, 10), cell(string(r.Ward)), string(r.Queue), strconv.Itoa(r.Tier), cell(r.TargetKind + " " + r.Target), cell(r.Channel), night}
				})
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	cmd.Flags().StringVar(&ward, "ward", "", "only this ward's routes")
	return cmd
}

func newNotifyRoutesAddCmd() *cobra.Command {
	var (
		o                registryOpts
		r                notify.Route
		ward, queue      string
		user, role, rota string
	)
	cmd := &cobra.Command{
		Use:   "add --ward WARD --tier N (--user U | --role R | --rota NAME) --channel C",
		Short: "Add a route: a ward's tier tells someone over a channel",
		Example: `  vward notify routes add --ward resp-east --tier 0 --rota resp-east-nights --channel pager
  vward notify routes add --ward resp-east --tier 1 --user dr.patel --channel mail
  vward notify routes add --ward resp-east --queue technical --tier 0 --role admin --channel mail`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notifyDo(cmd, &o, func(ctx context.Context, st *notify.Store, reg *devices.Registry) error {
				r.Ward, r.Queue = vward.WardID(ward), alerting.Queue(queue)
				n := 0
				for kind, v := range map[string]string{"user": user, "role": role, "rota": rota} {
					if v != "" {
						r.TargetKind, r.Target = kind, v
						n++
					}
				}
				if n != 1 {
					return usageError{fmt.Errorf("give exactly one of --user, --role and --rota")}
				}
				if _, err := reg.Ward(ctx, r.Ward); err != nil {
					return err
				}
				if r.TargetKind == "user" {
					if _, err := reg.Clinician(ctx, r.Target); err != nil {
						return err
					}
				}
				got, err := st.AddRoute(ctx, r)
				if err != nil {
					return err
				}
				return printOut(cmd, "route %d: ward %s tier %d (%s) tells %s %s over %s\n", got.ID, got.Ward, got.Tier, got.Queue, got.TargetKind, got.Target, got.Channel)
			})
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, false)
	fs.StringVar(&ward, "ward", "", "the ward (required)")
	fs.StringVar(&queue, "queue", "clinical", "clinical or technical")
	fs.IntVar(&r.Tier, "tier", 0, "the escalation tier: 0 ward clinician, 1 senior clinician, 2 single point of access")
	fs.StringVar(&user, "user", "", "tell this user")
	fs.StringVar(&role, "role", "", "tell everyone of this role on the ward (admin, clinician, viewer)")
	fs.StringVar(&rota, "rota", "", "tell whoever this rota has on call")
	fs.StringVar(&r.Channel, "channel", "", "over this channel (required)")
	fs.BoolVar(&r.AtNight, "at-night", false, "technical queue: use the route at night too (clinical routes always are)")
	_ = cmd.MarkFlagRequired("ward")
	_ = cmd.MarkFlagRequired("channel")
	return cmd
}

func newNotifyRoutesRemoveCmd() *cobra.Command {
	var o registryOpts
	cmd := &cobra.Command{
		Use: "remove ID", Short: "Remove a route", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("route id %q is not a number", args[0])}
			}
			return notifyDo(cmd, &o, func(ctx context.Context, st *notify.Store, _ *devices.Registry) error {
				if err := st.RemoveRoute(ctx, id); err != nil {
					return err
				}
				return printOut(cmd, "route %d removed\n", id)
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	return cmd
}

func newNotifyContactsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "contacts", Short: "Set where a channel reaches a user"}
	var o registryOpts
	set := &cobra.Command{
		Use: "set USER CHANNEL ADDRESS", Short: "Set a user's address on a channel; an empty ADDRESS removes it",
		Example: `  vward notify contacts set dr.patel mail dr.patel@example.nhs.uk`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return notifyDo(cmd, &o, func(ctx context.Context, st *notify.Store, reg *devices.Registry) error {
				if _, err := reg.Clinician(ctx, args[0]); err != nil {
					return err
				}
				if err := st.SetContact(ctx, args[0], args[1], args[2]); err != nil {
					return err
				}
				return printOut(cmd, "contact of %s on %s set\n", args[0], args[1])
			})
		},
	}
	o.register(set.Flags(), true, false)
	cmd.AddCommand(set)
	return cmd
}

func newNotifyRotasCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rotas", Short: "List on-call rotas and add or remove shifts"}
	var lo registryOpts
	var rota string
	list := &cobra.Command{
		Use: "list [--rota NAME]", Short: "List the shifts not yet over", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notifyDo(cmd, &lo, func(ctx context.Context, st *notify.Store, _ *devices.Registry) error {
				ss, err := st.Shifts(ctx, rota, time.Now())
				if err != nil {
					return err
				}
				if lo.asJSON {
					return printJSON(cmd.OutOrStdout(), ss)
				}
				return writeTable(cmd.OutOrStdout(), ss, "no shifts to come; add one with vward notify rotas add-shift", "ID\tROTA\tUSER\tFROM\tUNTIL", func(s notify.Shift) []string {
					return []string{strconv.FormatInt(s.ID, 10), cell(s.Rota), cell(s.User), s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339)}
				})
			})
		},
	}
	lo.register(list.Flags(), false, true)
	list.Flags().StringVar(&rota, "rota", "", "only this rota")

	var ao registryOpts
	var from, until string
	add := &cobra.Command{
		Use: "add-shift ROTA USER --from TIME --until TIME", Short: "Put a user on call on a rota (RFC 3339 times; the end is the handover)",
		Example: `  vward notify rotas add-shift resp-east-nights sam.jones --from 2026-12-04T20:00:00Z --until 2026-12-05T08:00:00Z`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			start, err := time.Parse(time.RFC3339, from)
			if err != nil {
				return usageError{fmt.Errorf("--from %q is not an RFC 3339 time such as 2026-12-04T20:00:00Z", from)}
			}
			end, err := time.Parse(time.RFC3339, until)
			if err != nil {
				return usageError{fmt.Errorf("--until %q is not an RFC 3339 time such as 2026-12-05T08:00:00Z", until)}
			}
			return notifyDo(cmd, &ao, func(ctx context.Context, st *notify.Store, reg *devices.Registry) error {
				if _, err := reg.Clinician(ctx, args[1]); err != nil {
					return err
				}
				sh, err := st.AddShift(ctx, notify.Shift{Rota: args[0], User: args[1], Start: start, End: end})
				if err != nil {
					return err
				}
				return printOut(cmd, "shift %d: %s on call on %s from %s until %s\n", sh.ID, sh.User, sh.Rota, sh.Start.Format(time.RFC3339), sh.End.Format(time.RFC3339))
			})
		},
	}
	ao.register(add.Flags(), true, false)
	add.Flags().StringVar(&from, "from", "", "when the shift starts (required)")
	add.Flags().StringVar(&until, "until", "", "when it ends: the handover (required)")
	_ = add.MarkFlagRequired("from")
	_ = add.MarkFlagRequired("until")

	var ro registryOpts
	remove := &cobra.Command{
		Use: "remove-shift ID", Short: "Remove a shift", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("shift id %q is not a number", args[0])}
			}
			return notifyDo(cmd, &ro, func(ctx context.Context, st *notify.Store, _ *devices.Registry) error {
				if err := st.RemoveShift(ctx, id); err != nil {
					return err
				}
				return printOut(cmd, "shift %d removed\n", id)
			})
		},
	}
	ro.register(remove.Flags(), true, false)
	cmd.AddCommand(list, add, remove)
	return cmd
}

func newNotifyTestSendCmd() *cobra.Command {
	var (
		o        registryOpts
		boardURL string
	)
	cmd := &cobra.Command{
		Use:     "test-send CHANNEL USER",
		Short:   "Send one test notification over a channel to a user, now, and say how it went",
		Example: `  vward notify test-send mail dr.patel`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return notifyDo(cmd, &o, func(ctx context.Context, st *notify.Store, reg *devices.Registry) error {
				d := notify.NewDispatcher(notify.Config{BoardURL: strings.TrimRight(boardURL, "/")}, notify.NewInbox(1), st, nil, reg, nil, nil, logger(cmd))
				if err := d.TestSend(ctx, args[0], args[1]); err != nil {
					return fmt.Errorf("test notification over %s to %s not delivered: %w", args[0], args[1], err)
				}
				return printOut(cmd, "test notification sent over %s to %s\n", args[0], args[1])
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&boardURL, "public-url", "", "the board's public address, for the link (env VWARD_PUBLIC_URL)")
	return cmd
}
