package main

// The registry commands: `vward wards|patients|users …` and the registry
// subcommands of `vward devices …`. Each opens the SQLite file in --data-dir
// directly; SQLite in WAL mode lets them run beside `vward serve`, which
// notices their changes within seconds (docs/registry.md).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/internal/sqlitedb"
)

// registryOpts are the flags every registry command shares.
type registryOpts struct {
	dataDir string
	actor   string
	asJSON  bool
}

func (o *registryOpts) register(fs *pflag.FlagSet, changes, lists bool) {
	fs.StringVar(&o.dataDir, "data-dir", "vward-data", "directory of vward's SQL store, as for serve (env VWARD_DATA_DIR)")
	if changes {
		fs.StringVar(&o.actor, "actor", defaultActor(), "who makes the change, for the audit trail (env VWARD_ACTOR)")
	}
	if lists {
		fs.BoolVar(&o.asJSON, "json", false, "print JSON for scripts")
	}
}

// defaultActor names the person at the terminal: "cli:<login>".
func defaultActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}

// open opens the registry in the data dir. create allows a fresh data dir
// (the first ward or user of an installation); otherwise a missing store is
// an error, not a silently created empty one.
func (o *registryOpts) open(ctx context.Context, create bool) (*devices.Registry, context.Context, func(), error) {
	path := filepath.Join(o.dataDir, "vward.db")
	if _, err := os.Stat(path); err != nil {
		if !create || !errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil, fmt.Errorf("no vward data in %s (%w); pass --data-dir or set VWARD_DATA_DIR", o.dataDir, err)
		}
		if err := os.MkdirAll(o.dataDir, 0o750); err != nil {
			return nil, nil, nil, fmt.Errorf("create data dir: %w", err)
		}
	}
	db, err := sqlitedb.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	reg, err := devices.Open(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	actor := strings.TrimSpace(o.actor)
	if actor == "" {
		actor = defaultActor()
	}
	return reg, devices.WithActor(ctx, actor), func() { db.Close() }, nil
}

// do runs one registry command: it opens the store in the data dir, runs f
// with the registry and a context that names the actor, and closes it.
func (o *registryOpts) do(cmd *cobra.Command, create bool, f func(ctx context.Context, reg *devices.Registry) error) error {
	reg, ctx, done, err := o.open(cmd.Context(), create)
	if err != nil {
		return err
	}
	defer done()
	return f(ctx, reg)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// cell makes a value safe for a table row: no tabs or control characters,
// "-" for empty.
func cell(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	return s
}

// parseWhen reads a time flag: RFC 3339 ("2026-11-24T09:00:00Z"), a local
// "2026-11-24 09:00", or a negative duration back from now ("-2h").
func parseWhen(flag, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "now" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d <= 0 {
		return time.Now().Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: give a time like 2026-11-24T09:00:00Z, \"2026-11-24 09:00\" (local) or -2h", flag, s)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// formatNHS writes stored digits as people read them: 943 476 5919.
func formatNHS(s string) string {
	if len(s) != 10 {
		return s
	}
	return s[:3] + " " + s[3:6] + " " + s[6:]
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// ---- wards ----

func newWardsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wards",
		Short: "Add and list virtual wards, and report their capacity and flow",
	}
	cmd.AddCommand(newWardsAddCmd(), newWardsListCmd(), newWardsReportCmd())
	return cmd
}

func newWardsAddCmd() *cobra.Command {
	var (
		o registryOpts
		w devices.Ward
	)
	cmd := &cobra.Command{
		Use:   "add ID --name NAME [--pathway P] [--place P] [--capacity N]",
		Short: "Add a ward, or update one with the same id",
		Example: `  vward wards add resp-east --name "East Kent respiratory VW" --pathway respiratory \
    --place "East Kent" --capacity 40`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, true, func(ctx context.Context, reg *devices.Registry) error {
				w.ID = vward.WardID(args[0])
				if err := reg.AddWard(ctx, w); err != nil {
					return err
				}
				got, err := reg.Ward(ctx, w.ID)
				if err != nil {
					return err
				}
				if o.asJSON {
					return printJSON(cmd.OutOrStdout(), got)
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "ward %s saved: %s, %s, capacity %d\n", got.ID, got.Name, cell(got.Pathway), got.Capacity)
				return err
			})
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, true)
	fs.StringVar(&w.Name, "name", "", "the ward's name (required)")
	fs.StringVar(&w.Pathway, "pathway", "", "clinical pathway: "+strings.Join(devices.Pathways, ", "))
	fs.StringVar(&w.Place, "place", "", "where it serves, e.g. a place or system")
	fs.IntVar(&w.Capacity, "capacity", 0, "number of virtual beds")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// listing is a registry list command: it fetches the rows, then prints them
// as JSON for scripts or as an aligned table for people.
type listing[T any] struct {
	use, short string
	empty      string // what to say when there is nothing to list
	header     string // tab-separated column names
	fetch      func(ctx context.Context, reg *devices.Registry) ([]T, error)
	row        func(T) []string
}

func (l listing[T]) command(o *registryOpts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   l.use,
		Short: l.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				rows, err := l.fetch(ctx, reg)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if o.asJSON {
					return printJSON(out, rows)
				}
				if len(rows) == 0 {
					_, err := fmt.Fprintln(out, l.empty)
					return err
				}
				tw := newTable(out)
				fmt.Fprintln(tw, l.header)
				for _, r := range rows {
					fmt.Fprintln(tw, strings.Join(l.row(r), "\t"))
				}
				return tw.Flush()
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	return cmd
}

func newWardsListCmd() *cobra.Command {
	return listing[devices.Ward]{
		use: "list", short: "List the wards with how many patients each has now",
		empty:  "no wards; add one with vward wards add",
		header: "ID\tNAME\tPATHWAY\tPLACE\tCAPACITY\tPATIENTS",
		fetch:  func(ctx context.Context, reg *devices.Registry) ([]devices.Ward, error) { return reg.Wards(ctx) },
		row: func(w devices.Ward) []string {
			capacity := "-"
			if w.Capacity > 0 {
				capacity = fmt.Sprint(w.Capacity)
			}
			return []string{string(w.ID), cell(w.Name), cell(w.Pathway), cell(w.Place), capacity, fmt.Sprint(w.Managed)}
		},
	}.command(&registryOpts{})
}

func newWardsReportCmd() *cobra.Command {
	var (
		o    registryOpts
		days int
	)
	cmd := &cobra.Command{
		Use:   "report [WARD]",
		Short: "Report capacity and flow: patients now, admissions and discharges per day, length of stay, outcomes",
		Long: `Report, for one ward or every ward: the patients on it now against its
capacity, admissions and discharges per day over the last --days days
(today included, days in local time), the length of the stays that ended
in that window, how long current patients have been on the ward, and the
outcomes of the window's discharges.`,
		Example: `  vward wards report resp-east --days 14
  vward wards report --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				var ids []vward.WardID
				if len(args) == 1 {
					ids = []vward.WardID{vward.WardID(args[0])}
				} else {
					ws, err := reg.Wards(ctx)
					if err != nil {
						return err
					}
					for _, w := range ws {
						ids = append(ids, w.ID)
					}
				}
				now := time.Now()
				reps := []devices.WardReport{}
				for _, id := range ids {
					rep, err := reg.WardReport(ctx, id, days, now, time.Local)
					if err != nil {
						return err
					}
					reps = append(reps, rep)
				}
				out := cmd.OutOrStdout()
				if o.asJSON {
					if len(args) == 1 {
						return printJSON(out, reps[0])
					}
					return printJSON(out, reps)
				}
				if len(reps) == 0 {
					_, err := fmt.Fprintln(out, "no wards; add one with vward wards add")
					return err
				}
				for i, rep := range reps {
					if i > 0 {
						fmt.Fprintln(out)
					}
					if err := writeWardReport(out, rep); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	cmd.Flags().IntVar(&days, "days", 30, "days to report on, today included")
	return cmd
}

func writeWardReport(w io.Writer, rep devices.WardReport) error {
	wd := rep.Ward
	fmt.Fprintf(w, "Ward %s: %s", wd.ID, wd.Name)
	if wd.Pathway != "" || wd.Place != "" {
		fmt.Fprintf(w, " (%s)", strings.Trim(wd.Pathway+", "+wd.Place, ", "))
	}
	fmt.Fprintln(w)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-18s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	now := fmt.Sprintf("%d", rep.Managed)
	if rep.Capacity > 0 && rep.Occupancy != nil {
		now = fmt.Sprintf("%d of %d beds (%.0f%%)", rep.Managed, rep.Capacity, *rep.Occupancy*100)
	}
	extra := ""
	if rep.PastExpectedEnd > 0 {
		extra = fmt.Sprintf("; %d past their expected end", rep.PastExpectedEnd)
	}
	line("On the ward now", "%s: %d at home, %d paused in hospital%s", now, rep.Admitted, rep.Paused, extra)
	line(fmt.Sprintf("Last %d days", rep.Days), "%s, %s (since %s)", plural(rep.Admissions, "admission"), plural(rep.Discharges, "discharge"), rep.From.Format(devices.DateLayout))
	stay := func(s devices.StayStats) string {
		if s.Count == 0 {
			return "none"
		}
		return fmt.Sprintf("mean %.1f days, median %.1f, longest %.1f (%s)", s.MeanDays, s.MedianDays, s.MaxDays, plural(s.Count, "stay"))
	}
	line("Length of stay", "%s", stay(rep.LengthOfStay))
	line("Current stays", "%s", stay(rep.CurrentStay))
	outcomes := "none"
	if len(rep.Outcomes) > 0 {
		var parts []string
		for _, o := range devices.Outcomes {
			if n := rep.Outcomes[o]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", o, n))
			}
		}
		outcomes = strings.Join(parts, ", ")
	}
	line("Outcomes", "%s", outcomes)
	tw := newTable(w)
	fmt.Fprintln(tw, "  DATE\tADMISSIONS\tDISCHARGES")
	for _, f := range rep.Flow {
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", f.Date, f.Admissions, f.Discharges)
	}
	return tw.Flush()
}

// ---- patients ----

func newPatientsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "patients",
		Short: "Admit, pause, resume and discharge patients; prescribe their SpO2 scale",
	}
	cmd.AddCommand(newPatientsAdmitCmd(), newPatientsStatusCmd("pause"), newPatientsStatusCmd("resume"),
		newPatientsDischargeCmd(), newPatientsListCmd(), newPatientsSetScaleCmd(), newPatientsAuditCmd())
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
		o                   registryOpts
		p                   devices.Patient
		contacts            []string
		scale               int
		scaleReason, admits string
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
			at, err := parseWhen("admitted", admits)
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
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "admitted %s to ward %s (SpO2 scale %d)\n", got.ID, got.Ward, got.SpO2Scale)
				return err
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
	fs.StringVar(&admits, "admitted", "", "when admitted, if not now (RFC 3339, \"2006-01-02 15:04\" local, or -2h)")
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
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %sd\n", id, verb)
				return err
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit trail")
	return cmd
}

func newPatientsDischargeCmd() *cobra.Command {
	var (
		o                   registryOpts
		outcome, reason, at string
	)
	cmd := &cobra.Command{
		Use:     "discharge ID --outcome OUTCOME [--reason R] [--at TIME]",
		Short:   "End a patient's stay with its outcome; their devices are unbound",
		Example: `  vward patients discharge p-0042 --outcome recovered --reason "stable for 72h"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := parseWhen("at", at)
			if err != nil {
				return err
			}
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				id := vward.PatientID(args[0])
				if err := reg.Discharge(ctx, id, outcome, reason, when); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: discharged (%s); devices unbound\n", id, outcome)
				return err
			})
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, false)
	fs.StringVar(&outcome, "outcome", "", "outcome: "+strings.Join(devices.Outcomes, ", ")+" (required)")
	fs.StringVar(&reason, "reason", "", "why, for the audit trail")
	fs.StringVar(&at, "at", "", "when, if not now (RFC 3339, \"2006-01-02 15:04\" local, or -2h)")
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
				var err error
				id := vward.PatientID(args[0])
				if err := reg.SetSpO2Scale(ctx, id, scale, reason); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: SpO2 scale %d\n", id, scale)
				return err
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
	if len(es) == 0 {
		_, err := fmt.Fprintln(w, "no changes recorded")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "WHEN\tWHO\tWHAT\tDETAIL\tWHY")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", localTime(e.At), cell(e.Actor), e.Action, cell(e.Detail), cell(e.Reason))
	}
	return tw.Flush()
}

// ---- devices ----

// addDeviceRegistryCmds adds the registry's subcommands to `vward devices`
// (whose parent lives in devices.go).
func addDeviceRegistryCmds(cmd *cobra.Command) {
	cmd.AddCommand(newDevicesAddCmd(), newDevicesAssignCmd(), newDevicesUnassignCmd(),
		newDevicesRotateSecretCmd(), newDevicesListCmd(), newDevicesExportMosquittoCmd())
}

// writeSecret shows a new secret once, with what to do with it.
func writeSecret(w io.Writer, id vward.DeviceID, secret string, asJSON bool, d devices.Device) error {
	if asJSON {
		return printJSON(w, map[string]any{"device": d, "secret": secret})
	}
	_, err := fmt.Fprintf(w, `device %s
secret %s

The secret is shown this once and vward keeps only hashes of it. Configure the
device now: MQTT username %q, password the secret, publishing to
%s. With Mosquitto, run vward devices export-mosquitto
again and reload the broker.
`, id, secret, id, vward.ReadingsTopic(id))
	return err
}

func newDevicesAddCmd() *cobra.Command {
	var (
		o            registryOpts
		kind, serial string
	)
	cmd := &cobra.Command{
		Use:     "add ID [--kind K] [--serial S]",
		Short:   "Register a device and show its new secret, once",
		Example: `  vward devices add ox-0042 --kind "pulse oximeter" --serial NONIN-3230-118273`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, true, func(ctx context.Context, reg *devices.Registry) error {
				id := vward.DeviceID(args[0])
				secret, err := reg.RegisterDevice(ctx, devices.Device{ID: id, Kind: kind, Serial: serial})
				if err != nil {
					return err
				}
				d, err := reg.Device(ctx, id)
				if err != nil {
					return err
				}
				return writeSecret(cmd.OutOrStdout(), id, secret, o.asJSON, d)
			})
		},
	}
	o.register(cmd.Flags(), true, true)
	cmd.Flags().StringVar(&kind, "kind", "", "what it is: pulse oximeter, BP cuff, hub, …")
	cmd.Flags().StringVar(&serial, "serial", "", "the maker's serial number")
	return cmd
}

func newDevicesAssignCmd() *cobra.Command {
	var (
		o    registryOpts
		from string
	)
	cmd := &cobra.Command{
		Use:   "assign DEVICE PATIENT [--from TIME]",
		Short: "Bind a device to a patient; readings measured from then on are theirs",
		Long: `Bind a device to a patient from --from (default now), ending its current
binding then. Readings are attributed by when they were measured, so --from
may lie in the past to take in readings the device buffered.`,
		Example: `  vward devices assign ox-0042 p-0042
  vward devices assign ox-0042 p-0042 --from -2h`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := parseWhen("from", from)
			if err != nil {
				return err
			}
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if err := reg.Assign(ctx, vward.DeviceID(args[0]), vward.PatientID(args[1]), when); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: bound to patient %s\n", args[0], args[1])
				return err
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&from, "from", "", "when the binding starts, if not now (RFC 3339, \"2006-01-02 15:04\" local, or -2h)")
	return cmd
}

func newDevicesUnassignCmd() *cobra.Command {
	var (
		o  registryOpts
		at string
	)
	cmd := &cobra.Command{
		Use:     "unassign DEVICE [--at TIME]",
		Short:   "End a device's binding; its later readings go to the dead letter",
		Example: `  vward devices unassign ox-0042`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := parseWhen("at", at)
			if err != nil {
				return err
			}
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if err := reg.Unassign(ctx, vward.DeviceID(args[0]), when); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: unbound\n", args[0])
				return err
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&at, "at", "", "when the binding ends, if not now (RFC 3339, \"2006-01-02 15:04\" local, or -2h)")
	return cmd
}

func newDevicesRotateSecretCmd() *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:   "rotate-secret DEVICE [--reason R]",
		Short: "Give a device a new secret, shown once; the old one stops working",
		Long: `Give a device a new secret, shown once. The old secret stops working for the
embedded broker of a running vward within seconds; for Mosquitto, run
export-mosquitto again and reload the broker.`,
		Example: `  vward devices rotate-secret ox-0042 --reason "hub replaced"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				id := vward.DeviceID(args[0])
				secret, err := reg.RotateSecret(ctx, id, reason)
				if err != nil {
					return err
				}
				d, err := reg.Device(ctx, id)
				if err != nil {
					return err
				}
				return writeSecret(cmd.OutOrStdout(), id, secret, o.asJSON, d)
			})
		},
	}
	o.register(cmd.Flags(), true, true)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit trail")
	return cmd
}

func newDevicesListCmd() *cobra.Command {
	return listing[devices.Device]{
		use: "list", short: "List registered devices and whom each is bound to",
		empty:  "no devices; add one with vward devices add",
		header: "ID\tKIND\tSERIAL\tPATIENT\tWARD\tBOUND FROM\tMOSQUITTO",
		fetch:  func(ctx context.Context, reg *devices.Registry) ([]devices.Device, error) { return reg.Devices(ctx) },
		row: func(d devices.Device) []string {
			from := "-"
			if d.BoundFrom != nil {
				from = localTime(*d.BoundFrom)
			}
			mq := "ready"
			if !d.MosquittoReady {
				mq = "rotate secret"
			}
			return []string{string(d.ID), cell(d.Kind), cell(d.Serial), cell(string(d.Patient)), cell(string(d.Ward)), from, mq}
		},
	}.command(&registryOpts{})
}

func newDevicesExportMosquittoCmd() *cobra.Command {
	var (
		o                        registryOpts
		passwd, servicePasswd    string
		acl                      string
		serviceUser, servicePass string
	)
	cmd := &cobra.Command{
		Use:   "export-mosquitto --passwd FILE --service-passwd FILE --acl FILE",
		Short: "Write Mosquitto 2's password and ACL files for vward and every device",
		Long: `Write Mosquitto 2 password files (PBKDF2-SHA512, "$7$", as mosquitto_passwd
writes) for the two listeners of deploy/mosquitto/mosquitto.conf: --passwd with
every registered device, for the devices' listener, and --service-passwd with
vward's service account alone, for vward's. Write an ACL file letting each
device publish only under its own id and read only its own rejected topic, and
the service account read every device's messages.

The service account is kept out of the devices' file, and devices out of
vward's, so that a device can never connect where client ids are not bound
to accounts (docs/security.md).

vward keeps, for each device secret, a salted Mosquitto hash made when the
secret was issued (devices add, rotate-secret); the secret itself is never
stored. Devices registered before vward kept that hash are left out, with a
warning: rotate their secret to include them.

The files are replaced whole (written aside, then renamed). Tell Mosquitto to
reload them: kill -HUP its process, or docker compose kill -s HUP mosquitto.`,
		Example: `  VWARD_MQTT_PASSWORD=... vward devices export-mosquitto \
    --passwd deploy/mosquitto/passwd --service-passwd deploy/mosquitto/passwd.service \
    --acl deploy/mosquitto/acl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if passwd == "" && servicePasswd == "" && acl == "" {
				return errors.New("give --passwd FILE, --service-passwd FILE, --acl FILE, or any of them")
			}
			var aclText []byte
			var err error
			if aclText, err = devices.MosquittoACL(serviceUser); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if passwd != "" || servicePasswd != "" {
				reg, ctx, done, err := o.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				defer done()
				exp, err := reg.ExportMosquittoPasswd(ctx, serviceUser, servicePass)
				if err != nil {
					return err
				}
				if servicePasswd != "" {
					if err := writeFileAtomic(servicePasswd, exp.ServicePasswd, 0o600); err != nil {
						return err
					}
					fmt.Fprintf(out, "wrote %s: service account %s\n", servicePasswd, exp.ServiceUser)
				}
				if passwd != "" {
					if err := writeFileAtomic(passwd, exp.Passwd, 0o600); err != nil {
						return err
					}
					fmt.Fprintf(out, "wrote %s: %d devices\n", passwd, exp.Devices)
				}
				if len(exp.Skipped) > 0 {
					ids := make([]string, len(exp.Skipped))
					for i, d := range exp.Skipped {
						ids[i] = string(d)
					}
					sort.Strings(ids)
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d devices left out, registered before vward kept Mosquitto hashes: %s\n  run vward devices rotate-secret for each, then export again\n",
						len(ids), strings.Join(ids, ", "))
				}
			}
			if acl != "" {
				if err := writeFileAtomic(acl, aclText, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote %s\n", acl)
			}
			fmt.Fprintln(out, "reload Mosquitto to apply: kill -HUP <pid>, or docker compose kill -s HUP mosquitto")
			return nil
		},
	}
	fs := cmd.Flags()
	o.register(fs, false, false)
	fs.StringVar(&passwd, "passwd", "", "the devices' password file to write (mode 0600)")
	fs.StringVar(&servicePasswd, "service-passwd", "", "vward's password file to write (mode 0600): the service account alone")
	fs.StringVar(&acl, "acl", "", "ACL file to write")
	fs.StringVar(&serviceUser, "service-user", "vward", "vward's own MQTT account (env VWARD_MQTT_USERNAME)")
	fs.StringVar(&servicePass, "service-password", "", "its password, needed with --passwd or --service-passwd (env VWARD_MQTT_PASSWORD)")
	return cmd
}

// writeFileAtomic replaces path with data so that a reader (Mosquitto on
// HUP) sees the old file or the new one, never half of one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ---- users ----

func newUsersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Add, change, remove and list the clinicians who sign in to the board",
		Long: `Add and list the clinicians who sign in to the board. Roles: admin (every
ward; manages the registry), clinician (their wards; acts on alerts, sets the
SpO2 scale), viewer (their wards; reads only).

Passwords are read from standard input (the first line), so that they never
appear on a command line: type one at the prompt, or pipe it in.

A change of a user's password, role or wards, and their removal, ends every
session they have, open board streams included (within 20 seconds), and is
recorded in the registry's audit trail.`,
	}
	cmd.AddCommand(newUsersAddCmd(), newUsersListCmd(), newUsersPasswdCmd(), newUsersUpdateCmd(), newUsersRemoveCmd())
	return cmd
}

// readPassword reads one line from in; at a terminal it prompts on errOut
// and turns echo off while the password is typed.
func readPassword(in io.Reader, errOut io.Writer, prompt string) (string, error) {
	if f, ok := in.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(errOut, prompt)
			if echoOff(f) == nil {
				defer func() {
					echoOn(f)
					fmt.Fprintln(errOut)
				}()
			}
		}
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func echoOff(f *os.File) error {
	c := exec.Command("stty", "-echo")
	c.Stdin = f
	return c.Run()
}

func echoOn(f *os.File) {
	c := exec.Command("stty", "echo")
	c.Stdin = f
	_ = c.Run()
}

func newUsersAddCmd() *cobra.Command {
	var (
		o     registryOpts
		role  string
		wards []string
	)
	cmd := &cobra.Command{
		Use:   "add USERNAME --role ROLE [--ward WARD]...",
		Short: "Add a clinician; the password is read from standard input",
		Example: `  vward users add sam.jones --role clinician --ward resp-east --ward frailty-west
  printf '%s\n' "$PASSWORD" | vward users add ops --role admin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, true, func(ctx context.Context, reg *devices.Registry) error {
				username := args[0]
				if _, err := reg.Clinician(ctx, username); err == nil {
					return fmt.Errorf("user %s exists; use vward users passwd to change the password", username)
				} else if !errors.Is(err, devices.ErrNotFound) {
					return err
				}
				c := devices.Clinician{Username: username, Role: role}
				known, err := reg.Wards(ctx)
				if err != nil {
					return err
				}
				for _, w := range wards {
					found := false
					for _, k := range known {
						found = found || string(k.ID) == w
					}
					if !found {
						fmt.Fprintf(cmd.ErrOrStderr(), "warning: ward %s does not exist (yet)\n", w)
					}
					c.Wards = append(c.Wards, vward.WardID(w))
				}
				pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "Password for "+username+": ")
				if err != nil {
					return err
				}
				if err := reg.AddClinician(ctx, c, pw); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s)\n", username, role)
				return err
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&role, "role", "", "admin, clinician or viewer (required)")
	cmd.Flags().StringArrayVar(&wards, "ward", nil, "a ward they work on (repeatable; an admin sees every ward)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newUsersListCmd() *cobra.Command {
	return listing[devices.Clinician]{
		use: "list", short: "List the clinicians, their roles and wards",
		empty:  "no users; add one with vward users add",
		header: "USERNAME\tROLE\tWARDS",
		fetch: func(ctx context.Context, reg *devices.Registry) ([]devices.Clinician, error) {
			return reg.Clinicians(ctx)
		},
		row: func(c devices.Clinician) []string {
			ws := make([]string, len(c.Wards))
			for i, w := range c.Wards {
				ws[i] = string(w)
			}
			wards := strings.Join(ws, ", ")
			if c.Role == "admin" {
				wards = "(every ward)"
			}
			return []string{cell(c.Username), c.Role, cell(wards)}
		},
	}.command(&registryOpts{})
}

func newUsersPasswdCmd() *cobra.Command {
	var o registryOpts
	cmd := &cobra.Command{
		Use:     "passwd USERNAME",
		Short:   "Set a clinician's password, read from standard input",
		Example: `  vward users passwd sam.jones`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if _, err := reg.Clinician(ctx, args[0]); err != nil {
					return err
				}
				pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "New password for "+args[0]+": ")
				if err != nil {
					return err
				}
				if err := reg.SetPassword(ctx, args[0], pw); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed; their sessions are signed out\n", args[0])
				return err
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	return cmd
}

func newUsersUpdateCmd() *cobra.Command {
	var (
		o      registryOpts
		role   string
		wards  []string
		reason string
	)
	cmd := &cobra.Command{
		Use:   "update USERNAME --role ROLE [--ward WARD]... --reason TEXT",
		Short: "Change a clinician's role and wards; their sessions are signed out",
		Long: `Change a clinician's role and wards. The wards given replace the ones they
had; give none to leave them with none. Their sessions end, so they sign in
again with the new rights.`,
		Example: `  vward users update sam.jones --role clinician --ward resp-east --reason "moved from frailty-west"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				c, err := reg.Clinician(ctx, args[0])
				if err != nil {
					return err
				}
				if role == "" {
					role = c.Role
				}
				ws := make([]vward.WardID, len(wards))
				for i, w := range wards {
					ws[i] = vward.WardID(w)
				}
				if err := reg.UpdateClinician(ctx, args[0], role, ws, reason); err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s is now %s of %s; their sessions are signed out\n", args[0], role, strings.Join(wards, ", "))
				return err
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&role, "role", "", "admin, clinician or viewer (default: unchanged)")
	cmd.Flags().StringArrayVar(&wards, "ward", nil, "a ward they work on (repeat for several); replaces their wards")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit trail (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}

func newUsersRemoveCmd() *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:     "remove USERNAME --reason TEXT",
		Short:   "Remove a clinician's account; their sessions are signed out",
		Example: `  vward users remove sam.jones --reason "left the trust"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.do(cmd, false, func(ctx context.Context, reg *devices.Registry) error {
				if err := reg.RemoveClinician(ctx, args[0], reason); err != nil {
					return err
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "removed %s; their sessions are signed out\n", args[0])
				return err
			})
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit trail (required)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}
