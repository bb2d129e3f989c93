package main

// `vward wards …`: add and list wards, and report their capacity and flow.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/handover"
)

func newWardsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wards",
		Short: "Add and list virtual wards, and report their capacity, flow and alarm burden",
	}
	cmd.AddCommand(newWardsAddCmd(), newWardsListCmd(), newWardsReportCmd(), newWardsAlarmBurdenCmd())
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
				return printOut(cmd, "ward %s saved: %s, %s, capacity %d\n", got.ID, got.Name, cell(got.Pathway), got.Capacity)
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
		Short: "Report capacity and flow: patients now, admissions and discharges per day, length of stay, outcomes, step-up",
		Long: `Report, for one ward or every ward: the patients on it now against its
capacity, admissions and discharges per day over the last --days days
(today included, days in local time), the length of the stays that ended
in that window, how long current patients have been on the ward, and the
outcomes of the window's discharges, and the step-up figures: the
window's handovers from alerts by destination, and what came of them.`,
		Example: `  vward wards report resp-east --days 14
  vward wards report --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.doWithHandovers(cmd, func(ctx context.Context, reg *devices.Registry, hs *handover.Store) error {
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
					su, err := hs.StepUp(ctx, id, rep.From, rep.At)
					if err != nil {
						return err
					}
					rep.StepUp = &su
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
	if su := rep.StepUp; su != nil {
		line("Step-up", "%s", stepUpWords(*su))
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "  DATE\tADMISSIONS\tDISCHARGES")
	for _, f := range rep.Flow {
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", f.Date, f.Admissions, f.Discharges)
	}
	return tw.Flush()
}

// stepUpWords says a window's handovers and what came of them:
// "3 handovers: 999 1, gp 2; conveyed 1, seen at home 1, awaiting outcome 1".
func stepUpWords(su devices.StepUp) string {
	if su.Handovers == 0 {
		return "no handovers"
	}
	var to, came []string
	for _, d := range handover.Destinations {
		if n := su.ByDestination[string(d)]; n > 0 {
			to = append(to, fmt.Sprintf("%s %d", d, n))
		}
	}
	for _, o := range handover.Outcomes {
		if n := su.Outcomes[string(o)]; n > 0 {
			came = append(came, fmt.Sprintf("%s %d", o.Words(), n))
		}
	}
	if su.Awaiting > 0 {
		came = append(came, fmt.Sprintf("awaiting outcome %d", su.Awaiting))
	}
	return fmt.Sprintf("%s: %s; %s", plural(su.Handovers, "handover"), strings.Join(to, ", "), strings.Join(came, ", "))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
