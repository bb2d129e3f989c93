package main

// `vward alerts handover` and `vward alerts outcome`: hand a patient over
// from an alert to another service with an SBARD summary, and record what
// came of it, from the command line. Both write the SQL store directly,
// audited as --actor (docs/alerts.md, "Handing over (SBARD)").

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/handover"
	"github.com/vward/vward/notes"
	"github.com/vward/vward/observations"
)

func newAlertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "Hand patients over from alerts with an SBARD summary, and record the outcomes",
	}
	cmd.AddCommand(newAlertsHandoverCmd(), newAlertsOutcomeCmd())
	return cmd
}

// openHandovers opens the handovers in the data dir, reading alerts, the
// registry, observation entries and notes from the same store, with a context
// naming the actor. Without the running node's monitor, the SBARD assesses
// the observation set behind the alert's latest change.
func (o *registryOpts) openHandovers(ctx context.Context) (*handover.Service, context.Context, func(), error) {
	db, err := openStore(o.dataDir, false)
	if err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*handover.Service, context.Context, func(), error) {
		db.Close()
		return nil, nil, nil, err
	}
	reg, err := devices.Open(ctx, db)
	if err != nil {
		return fail(err)
	}
	alerts, err := alerting.OpenStore(ctx, db)
	if err != nil {
		return fail(err)
	}
	entries, err := observations.Open(ctx, db, reg)
	if err != nil {
		return fail(err)
	}
	ns, err := notes.Open(ctx, db, reg)
	if err != nil {
		return fail(err)
	}
	store, err := handover.Open(ctx, db)
	if err != nil {
		return fail(err)
	}
	svc := handover.NewService(handover.Deps{Store: store, Alerts: handover.StoredAlerts(alerts), Registry: reg,
		Sets: handover.NewAlertEvidence(entries, alerts), Notes: handover.NotesOf(ns)})
	actor := strings.TrimSpace(o.actor)
	if actor == "" {
		actor = defaultActor()
	}
	return svc, devices.WithActor(ctx, actor), func() { db.Close() }, nil
}

// parseID reads an alert's or a handover's number.
func parseID(what, s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, vward.Errorf(vward.ErrNotFound, "no %s %q: give its number, e.g. 12", what, s)
	}
	return n, nil
}

func destinationIDs() string {
	names := make([]string, len(handover.Destinations))
	for i, d := range handover.Destinations {
		names[i] = string(d)
	}
	return strings.Join(names, ", ")
}

func outcomeIDs() string {
	names := make([]string, len(handover.Outcomes))
	for i, o := range handover.Outcomes {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

func newAlertsHandoverCmd() *cobra.Command {
	var (
		o        registryOpts
		to, note string
	)
	cmd := &cobra.Command{
		Use:   "handover ALERT_ID --to DESTINATION [--note TEXT]",
		Short: "Hand the patient of an alert over to another service; prints the SBARD; audited",
		Long: `Hand the patient of a clinical alert over to another service, and print the
SBARD summary (situation, background, assessment, recommendation, decision) to
copy or read over the telephone. The handover is recorded in the alert's audit
and the patient's. From the command line the assessment is of the observation
set behind the alert's latest change; the board and the REST API assess the
patient's set as it is now.

Destinations: gp, single_point_of_access, urgent_community_response (the
2-hour urgent community response) and 999.`,
		Example: `  vward alerts handover 12 --to urgent_community_response --actor nurse.khan
  vward alerts handover 12 --to 999 --note "daughter with her, door unlocked" --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("alert", args[0])
			if err != nil {
				return err
			}
			svc, ctx, done, err := o.openHandovers(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			h, err := svc.Handover(ctx, id, to, note)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), h)
			}
			if err := printOut(cmd, "%s\n", h.Text); err != nil {
				return err
			}
			return printOut(cmd, "handover %d recorded; when you know what came of it: vward alerts outcome %d --outcome %s\n",
				h.ID, h.ID, strings.Join(strings.Split(outcomeIDs(), ", "), "|"))
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, true)
	fs.StringVar(&to, "to", "", "where to hand over: "+destinationIDs()+" (required)")
	fs.StringVar(&note, "note", "", "free text for the receiving service (kept in the audit)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func newAlertsOutcomeCmd() *cobra.Command {
	var (
		o             registryOpts
		outcome, note string
	)
	cmd := &cobra.Command{
		Use:     "outcome HANDOVER_ID --outcome OUTCOME [--note TEXT]",
		Short:   "Record what came of a handover, once; audited",
		Example: `  vward alerts outcome 3 --outcome admitted --note "admitted to QEQM, chest sepsis"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID("handover", args[0])
			if err != nil {
				return err
			}
			svc, ctx, done, err := o.openHandovers(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			h, err := svc.RecordOutcome(ctx, id, outcome, note)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), h)
			}
			return printOut(cmd, "handover %d (alert %d, %s, to %s): %s, recorded by %s\n",
				h.ID, h.AlertID, h.Patient, h.Destination.Title(), h.Outcome.Words(), h.OutcomeBy)
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, true)
	fs.StringVar(&outcome, "outcome", "", "what came of it: "+outcomeIDs()+" (required)")
	fs.StringVar(&note, "note", "", "free text, kept in the audit")
	_ = cmd.MarkFlagRequired("outcome")
	return cmd
}
