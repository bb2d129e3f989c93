package main

// `vward patients …`: admit, pause, resume and discharge patients, prescribe
// their SpO2 scale, show their audit trail, and enter observations people
// took (observe.go).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
)

func newPatientsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "patients",
		Short: "Admit, pause, resume and discharge patients; prescribe their SpO2 scale",
	}
	cmd.AddCommand(newPatientsAdmitCmd(), newPatientsStatusCmd("pause"), newPatientsStatusCmd("resume"),
		newPatientsDischargeCmd(), newPatientsListCmd(), newPatientsSetScaleCmd(), newPatientsAuditCmd(),
		newPatientsObserveCmd(), newPatientsEnteredInErrorCmd())
	cmd.AddCommand(newPatientsNoteCmd(), newPatientsNotesCmd(), newPatientsAddendumCmd()) // notes.go
	cmd.AddCommand(newPatientsCarePlanCmd())                                              // careplan.go
	return cmd
}

// parseContact reads "Name|role|phone" (role and phone optional).
func parseContact(s string) (devices.Contact, error) {
	parts := strings.Split(s, "|")
	if len(parts) > 3 || strings.TrimSpace(parts[0]) == "" {
		return devices.Contact{}, fmt.Errorf("--contact %q: write it as \"Name|role|phone\"", s)
	}
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return devices.Contact{Name: strings.TrimSpace(parts[0]), Role: strings.TrimSpace(parts[1]), Phone: strings.TrimSpace(parts[2])}, nil
}

func newPatientsAdmitCmd() *cobra.Command {
	var (
		o           registryOpts
		p           devices.Patient
		contacts    []string
		scale       int
		scaleReason string
		admitted    timeFlag
	)
	cmd := &cobra.Command{
		Use:   "admit [ID] --ward WARD --nhs NUMBER --name NAME",
		Short: "Admit a patient to a ward (an id is made up when none is given)",
		Example: `  vward patients admit --ward resp-east --nhs "943 476 5919" --name "Ada Whitfield" \
    --born 1941-03-02 --expected-end 2026-12-05 --contact "Jo Whitfield|daughter|07700 900123"
  vward patients admit p-0042 --ward resp-east --nhs 9434765919 --name "Ada Whitfield" \
    --scale 2 --scale-reason "COPD with type 2 respiratory failure"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if scale == 2 && strings.TrimSpace(scaleReason) == "" {
				return errors.New("--scale 2 needs --scale-reason; it is kept in the audit")
			}
			if scale != 1 && scale != 2 {
				return errors.New("--scale must be 1 or 2")
			}
			for _, c := range contacts {
				ct, err := parseContact(c)
				if err != nil {
					return err
				}
				p.Contacts = append(p.Contacts, ct)
			}
			at, err := admitted.parse()
			if err != nil {
				return err
			}
			p.Admitted = at
			if len(args) == 1 {
				p.ID = vward.PatientID(args[0])
			} else if p.ID, err = devices.NewPatientID(); err != nil {
				return err
			}
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if err := reg.Admit(ctx, p); err != nil {
					return err
				}
				if scale == 2 {
					if err := reg.SetSpO2Scale(ctx, p.ID, 2, scaleReason); err != nil {
						return fmt.Errorf("admitted %s, but setting SpO2 scale 2 failed: %w", p.ID, err)
					}
				}
				got, err := reg.Patient(ctx, p.ID)
				if err != nil {
					return err
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), got)
				}
				return printOut(cmd, "admitted %s to ward %s (SpO2 scale %d)\n", got.ID, got.Ward, got.SpO2Scale)
			})
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, true)
	fs.StringVar((*string)(&p.Ward), "ward", "", "ward id (required)")
	fs.StringVar(&p.NHSNumber, "nhs", "", "NHS number: 10 digits, or 3-3-4 with spaces or hyphens (required)")
	fs.StringVar(&p.Name, "name", "", "the patient's name (required)")
	fs.StringVar(&p.Born, "born", "", "date of birth, YYYY-MM-DD")
	fs.StringVar(&p.ExpectedEnd, "expected-end", "", "expected end of the stay, YYYY-MM-DD")
	fs.StringArrayVar(&contacts, "contact", nil, "escalation contact \"Name|role|phone\" (repeatable)")
	fs.IntVar(&scale, "scale", 1, "NEWS2 SpO2 scale, 1 or 2")
	fs.StringVar(&scaleReason, "scale-reason", "", "clinical reason for SpO2 scale 2 (required with --scale 2)")
	admitted.register(fs, "admitted", "when admitted")
	for _, f := range []string{"ward", "nhs", "name"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newPatientsStatusCmd(verb string) *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	short := map[string]string{
		"pause":  "Pause a patient's stay while they are in hospital (devices stay bound)",
		"resume": "Resume a paused patient's stay",
	}[verb]
	cmd := &cobra.Command{
		Use:     verb + " ID [--reason R]",
		Short:   short,
		Example: fmt.Sprintf("  vward patients %s p-0042 --reason %q", verb, map[string]string{"pause": "admitted to QEQM with a fall", "resume": "home from QEQM"}[verb]),
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				var err error
				id := vward.PatientID(args[0])
				if verb == "pause" {
					err = reg.Pause(ctx, id, reason)
				} else {
					err = reg.Resume(ctx, id, reason)
				}
				if err != nil {
					return err
				}
				return printOut(cmd, "%s: %sd\n", id, verb)
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	addReasonFlag(cmd, &reason, false)
	return cmd
}

func newPatientsDischargeCmd() *cobra.Command {
	var (
		o               registryOpts
		outcome, reason string
		at              timeFlag
	)
	cmd := &cobra.Command{
		Use:     "discharge ID --outcome OUTCOME [--reason R] [--at TIME]",
		Short:   "End a patient's stay with its outcome; their devices are unbound",
		Example: `  vward patients discharge p-0042 --outcome recovered --reason "stable for 72h"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := at.parse()
			if err != nil {
				return err
			}
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				id := vward.PatientID(args[0])
				if err := reg.Discharge(ctx, id, outcome, reason, when); err != nil {
					return err
				}
				return printOut(cmd, "%s: discharged (%s); devices unbound\n", id, outcome)
			})
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, false)
	fs.StringVar(&outcome, "outcome", "", "outcome: "+strings.Join(devices.Outcomes, ", ")+" (required)")
	addReasonFlag(cmd, &reason, false)
	at.register(fs, "at", "when")
	_ = cmd.MarkFlagRequired("outcome")
	return cmd
}

func newPatientsListCmd() *cobra.Command {
	var (
		ward string
		all  bool
	)
	cmd := listing[devices.Patient]{
		use: "list [--ward WARD] [--all]", short: "List the patients on the wards (with --all, discharged ones too)",
		empty:  "no patients",
		header: "ID\tNAME\tNHS NUMBER\tBORN\tWARD\tSTATUS\tSPO2 SCALE\tADMITTED\tEXPECTED END",
		fetch: func(ctx context.Context, reg *devices.Registry) ([]devices.Patient, error) {
			return reg.ListPatients(ctx, devices.PatientQuery{Ward: vward.WardID(ward), Discharged: all})
		},
		row: func(p devices.Patient) []string {
			status := p.Status
			if p.Status == devices.StatusDischarged {
				status += " (" + p.Outcome + ")"
			}
			return []string{string(p.ID), cell(p.Name), cell(formatNHS(p.NHSNumber)), cell(p.Born),
				string(p.Ward), status, fmt.Sprint(p.SpO2Scale), localTime(p.Admitted), cell(p.ExpectedEnd)}
		},
	}.command(&registryOpts{})
	cmd.Flags().StringVar(&ward, "ward", "", "only this ward")
	cmd.Flags().BoolVar(&all, "all", false, "include discharged patients")
	return cmd
}

func newPatientsSetScaleCmd() *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:   "set-scale ID 1|2 --reason R",
		Short: "Prescribe a patient's NEWS2 SpO2 scale; audited with who and why",
		Long: `Prescribe the NEWS2 SpO2 scale a patient's oxygen saturation is scored on.
Scale 2 (target 88–92%) is for patients with hypercapnic respiratory failure,
on a clinician's decision. The change is kept in the audit with --actor and
--reason, and a running vward scores with it within seconds.`,
		Example: `  vward patients set-scale p-0042 2 --reason "COPD, hypercapnic on ABG 21/11; target 88-92%" --actor dr.patel`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var scale int
			switch args[1] {
			case "1":
				scale = 1
			case "2":
				scale = 2
			default:
				return fmt.Errorf("scale %q: give 1 or 2", args[1])
			}
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				id := vward.PatientID(args[0])
				if err := reg.SetSpO2Scale(ctx, id, scale, reason); err != nil {
					return err
				}
				return printOut(cmd, "%s: SpO2 scale %d\n", id, scale)
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&reason, "reason", "", "the clinical reason (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newPatientsAuditCmd() *cobra.Command {
	var (
		o     registryOpts
		limit int
	)
	cmd := &cobra.Command{
		Use:   "audit ID",
		Short: "Show who changed a patient's stay, when, what and why (newest first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				es, err := reg.PatientAudit(ctx, vward.PatientID(args[0]), limit)
				if err != nil {
					return err
				}
				return writeAudit(cmd.OutOrStdout(), es, o.asJSON)
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many entries")
	return cmd
}

func writeAudit(w io.Writer, es []devices.AuditEntry, asJSON bool) error {
	if asJSON {
		return printJSON(w, es)
	}
	return writeTable(w, es, "no changes recorded", "WHEN\tWHO\tWHAT\tDETAIL\tWHY", func(e devices.AuditEntry) []string {
		return []string{localTime(e.At), cell(e.Actor), e.Action, cell(e.Detail), cell(e.Reason)}
	})
}

// formatNHS writes stored digits as people read them: 943 476 5919.
func formatNHS(s string) string {
	if len(s) != 10 {
		return s
	}
	return s[:3] + " " + s[3:6] + " " + s[6:]
}
