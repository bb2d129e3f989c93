package main

// `vward patients careplan show|set|history|end|templates`: a patient's care
// plan from the command line. Like the notes commands they write the SQL
// store in --data-dir directly; a running vward shows the change on its
// next read (docs/careplans.md).

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/careplan"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/planstore"
)

func newPatientsCarePlanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "careplan",
		Short: "Show, set, end and list the versions of a patient's care plan; audited",
	}
	cmd.AddCommand(newCarePlanShowCmd(), newCarePlanSetCmd(), newCarePlanHistoryCmd(), newCarePlanEndCmd(), newCarePlanTemplatesCmd())
	return cmd
}

// openCarePlans opens the care plans in the data dir, with a context
// naming the actor.
func (o *registryOpts) openCarePlans(ctx context.Context) (*planstore.Store, *devices.Registry, context.Context, func(), error) {
	return openOnRegistry(ctx, o, func(ctx context.Context, db *sql.DB, reg *devices.Registry) (*planstore.Store, error) {
		return planstore.Open(ctx, db, reg)
	})
}

func newCarePlanShowCmd() *cobra.Command {
	var o registryOpts
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a patient's current care plan in words, with who changed it last and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, _, ctx, done, err := o.openCarePlans(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			v, err := store.Current(ctx, vward.PatientID(args[0]))
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), planstore.Present(v))
			}
			return writeCarePlan(cmd.OutOrStdout(), v)
		},
	}
	o.register(cmd.Flags(), false, true)
	return cmd
}

// writeCarePlan shows a version in words, the ceiling of care first.
func writeCarePlan(w io.Writer, v planstore.Version) error {
	p, words := v.Plan, planstore.Present(v).Words
	fmt.Fprintf(w, "%s: %s", v.Patient, p.Name)
	if p.Template != "" {
		fmt.Fprintf(w, " (from template %s)", p.Template)
	}
	fmt.Fprintf(w, "\nversion %d by %s at %s: %s\n", v.Number, v.Author, localTime(v.At), cell(v.Reason))
	if e := p.Escalation; e != nil {
		fmt.Fprintf(w, "\nTreatment escalation plan: %s\n  %s\n  decided by %s at %s", ceilingWords[e.Ceiling], cell(e.Text), e.DecidedBy, localTime(e.DecidedAt))
		if !e.ReviewBy.IsZero() {
			fmt.Fprintf(w, "; review by %s", localTime(e.ReviewBy))
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "\nTreatment escalation plan: none recorded")
	}
	if p.Note != "" {
		fmt.Fprintf(w, "\nNote: %s\n", cell(p.Note))
	}
	fmt.Fprintln(w, "\nExpected:")
	if len(words.Expected) == 0 {
		fmt.Fprintln(w, "  nothing beyond NEWS2's monitoring")
	}
	for _, e := range words.Expected {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintln(w, "\nRules:")
	if len(p.Rules) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for i, r := range p.Rules {
		fmt.Fprintf(w, "  %s (%s risk): %s\n    when %s\n", r.ID, r.Risk, cell(r.Name), words.Rules[i])
	}
	return nil
}

// ceilingWords says what each ceiling of care means, as docs/careplans.md
// does.
var ceilingWords = map[careplan.Ceiling]string{
	careplan.FullEscalation:     "full escalation: every appropriate treatment, critical care included",
	careplan.NoCriticalCare:     "no critical care: for admission to hospital, not intensive care",
	careplan.NoHospitalTransfer: "no hospital transfer: treatment where they live, not admission",
	careplan.ComfortCare:        "comfort care: symptom control and comfort only",
}

func newCarePlanSetCmd() *cobra.Command {
	var (
		o                      registryOpts
		file, template, reason string
		base                   int
	)
	cmd := &cobra.Command{
		Use:   "set ID (--file PLAN.json | --template NAME) --reason TEXT",
		Short: "Make a plan, or a copy of a pathway template, a patient's care plan: a new version; audited",
		Long: `Make a care plan the patient's current one, as a new version with the reason
kept beside it and in the patient's audit. The plan is JSON in the format of
docs/careplans.md ("-" reads it from standard input); a plan that does not
validate is refused, naming every field at fault. Start from a template:
"vward patients careplan templates heart_failure > plan.json".`,
		Example: `  vward patients careplan set p-0042 --template heart_failure --reason "Admitted with decompensated heart failure" --actor dr.patel
  vward patients careplan set p-0042 --file plan.json --base 1 --reason "HF team: diuretic plan at 1.5 kg" --actor dr.patel`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (file == "") == (template == "") {
				return vward.Errorf(vward.ErrInvalid, "give one of --file or --template")
			}
			var plan []byte
			if file != "" {
				var err error
				if plan, err = readPlanFile(cmd, file); err != nil {
					return err
				}
			}
			store, _, ctx, done, err := o.openCarePlans(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			v, err := store.Set(ctx, vward.PatientID(args[0]), planstore.Change{Plan: plan, Template: template, Reason: reason, Base: base})
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), planstore.Present(v))
			}
			return printOut(cmd, "care plan version %d set for %s: %s (by %s)\n", v.Number, v.Patient, v.Plan.Name, v.Author)
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, true)
	fs.StringVar(&file, "file", "", `the plan as JSON ("-" for standard input)`)
	fs.StringVar(&template, "template", "", "a pathway template instead: "+strings.Join(careplan.TemplateNames(), ", "))
	fs.StringVar(&reason, "reason", "", "why the plan changes, kept in the audit (required)")
	fs.IntVar(&base, "base", 0, "the version the plan was made from: refused if another was written since (0: any)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

// maxPlanFile bounds what is read of a plan file: a little over the
// format's own 64 KiB, so that careplan.Parse says what is too large.
const maxPlanFile = 128 << 10

func readPlanFile(cmd *cobra.Command, file string) ([]byte, error) {
	var r io.Reader
	if file == "-" {
		r = cmd.InOrStdin()
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read the care plan: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPlanFile))
	if err != nil {
		return nil, fmt.Errorf("read the care plan %s: %w", file, err)
	}
	return b, nil
}

func newCarePlanHistoryCmd() *cobra.Command {
	var o registryOpts
	cmd := &cobra.Command{
		Use:   "history ID",
		Short: "List every version of a patient's care plan, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := vward.PatientID(args[0])
			store, reg, ctx, done, err := o.openCarePlans(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := reg.Patient(ctx, id); err != nil {
				return err
			}
			vs, err := store.History(ctx, id)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), planstore.PresentAll(vs))
			}
			return writeTable(cmd.OutOrStdout(), vs, "no care plan for "+string(id), "VERSION\tWHEN\tWHO\tPLAN\tREASON", func(v planstore.Version) []string {
				plan := "(ended)"
				if v.Plan != nil {
					plan = cell(v.Plan.Name)
				}
				return []string{fmt.Sprint(v.Number), localTime(v.At), cell(v.Author), plan, cell(v.Reason)}
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	return cmd
}

func newCarePlanEndCmd() *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:     "end ID --reason TEXT",
		Short:   "End a patient's care plan: a new version, the earlier ones kept; audited",
		Example: `  vward patients careplan end p-0042 --reason "Back to the heart failure clinic's care" --actor dr.patel`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, _, ctx, done, err := o.openCarePlans(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			v, err := store.End(ctx, vward.PatientID(args[0]), reason)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), planstore.Present(v))
			}
			return printOut(cmd, "care plan of %s ended: version %d (by %s)\n", v.Patient, v.Number, v.Author)
		},
	}
	o.register(cmd.Flags(), true, true)
	cmd.Flags().StringVar(&reason, "reason", "", "why the plan ends, kept in the audit (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newCarePlanTemplatesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "templates [NAME]",
		Short: "List the pathway templates, or print one as JSON to start a plan from",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				p, err := careplan.Template(args[0])
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), p)
			}
			names := careplan.TemplateNames()
			return writeTable(cmd.OutOrStdout(), names, "no templates", "TEMPLATE\tNAME\tEXPECTED\tRULES", func(name string) []string {
				p, err := careplan.Template(name)
				if err != nil {
					return []string{name, "(" + err.Error() + ")", "", ""}
				}
				return []string{name, p.Name, fmt.Sprint(len(p.Expected)), fmt.Sprint(len(p.Rules))}
			})
		},
	}
	return cmd
}
