package main

// `vward wards alarm-burden`: a ward's alarm burden over the last days,
// read from the SQL store (docs/alerts.md, "Alarm burden report").

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/alerting"
	"github.com/vward/vward/burden"
	"github.com/vward/vward/devices"
)

func newWardsAlarmBurdenCmd() *cobra.Command {
	var (
		o         registryOpts
		days, top int
	)
	cmd := &cobra.Command{
		Use:   "alarm-burden WARD [--days N] [--top N]",
		Short: "Report a ward's alarm burden: alerts per patient-day, time to acknowledge, escalations, shelves, who raises most",
		Long: `Report a ward's alarm burden over the last --days days (today included,
days in local time): the alerts raised per patient-day by condition, queue and
NEWS2 risk; time to acknowledge by risk; escalations by tier, reminders,
shelves and their reasons; alerts that returned to normal before anyone
acknowledged them; and the --top patients who raised most.`,
		Example: `  vward wards alarm-burden resp-east
  vward wards alarm-burden resp-east --days 30 --top 5 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := openStore(o.dataDir, false)
			if err != nil {
				return err
			}
			defer db.Close()
			ctx := cmd.Context()
			reg, err := devices.Open(ctx, db)
			if err != nil {
				return err
			}
			alerts, err := alerting.OpenStore(ctx, db)
			if err != nil {
				return err
			}
			rep, err := burden.Build(ctx, alerts, reg, vward.WardID(args[0]), days, top, time.Now(), time.Local)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return writeAlarmBurden(cmd.OutOrStdout(), rep)
		},
	}
	o.register(cmd.Flags(), false, true)
	cmd.Flags().IntVar(&days, "days", burden.DefaultDays, fmt.Sprintf("days to report on, today included (1–%d)", burden.MaxDays))
	cmd.Flags().IntVar(&top, "top", burden.DefaultTop, fmt.Sprintf("how many of the patients who raised most to list (1–%d)", burden.MaxTop))
	return cmd
}

func writeAlarmBurden(w io.Writer, rep burden.Report) error {
	fmt.Fprintf(w, "Alarm burden, ward %s: %s, last %d days (since %s)\n", rep.Ward, rep.WardName, rep.Days, rep.From.Format(devices.DateLayout))
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-24s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	line("Patients", "%s, %.2f patient-days monitored (%.2f paused, not counted)", plural(rep.Patients, "stay"), rep.PatientDays, rep.PausedDays)
	queues := make([]string, len(rep.ByQueue))
	for i, q := range rep.ByQueue {
		queues[i] = fmt.Sprintf("%s %d%s", q.Queue, q.Alerts, perDay(q.PerPatientDay))
	}
	line("Alerts raised", "%d%s: %s", rep.Alerts, perDay(rep.PerPatientDay), strings.Join(queues, ", "))
	risks := make([]string, len(rep.News2ByRisk))
	for i, r := range rep.News2ByRisk {
		risks[i] = fmt.Sprintf("%s %d%s", r.Risk, r.Alerts, perDay(r.PerPatientDay))
	}
	line("NEWS2 by risk", "%s", strings.Join(risks, ", "))
	line("Cleared unacknowledged", "%d", rep.ClearedUnacknowledged)
	tiers := make([]string, len(rep.Escalations))
	for i, e := range rep.Escalations {
		tiers[i] = fmt.Sprintf("tier %d (%s) %d", e.Tier, cell(e.Name), e.Alerts)
	}
	line("Escalated", "%s", strings.Join(tiers, ", "))
	line("Reminders", "%d; %s, %d re-raised", rep.Reminders, plural(rep.Upgrades, "upgrade"), rep.Reraised)
	line("Shelved", "%s, %s in all", plural(rep.Shelves.Count, "time"), seconds(rep.Shelves.ShelvedSeconds))

	tw := newTable(w)
	fmt.Fprintln(tw, "\n  CONDITION\tQUEUE\tALERTS\tPER PATIENT-DAY\tCLEARED UNACKNOWLEDGED")
	for _, c := range rep.ByCondition {
		cleared := 0
		if c.ClearedUnacknowledged != nil {
			cleared = *c.ClearedUnacknowledged
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%d\n", c.Condition, c.Queue, c.Alerts, rateCell(c.PerPatientDay), cleared)
	}
	fmt.Fprintln(tw, "\n  TIME TO ACKNOWLEDGE\tACKNOWLEDGED\tMEDIAN\t90TH PERCENTILE\tMAX")
	if len(rep.TimeToAcknowledge) == 0 {
		fmt.Fprintln(tw, "  none\t\t\t\t")
	}
	for _, r := range rep.TimeToAcknowledge {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", r.Risk, r.Count, seconds(r.MedianSeconds), seconds(r.P90Seconds), seconds(r.MaxSeconds))
	}
	if len(rep.Shelves.Reasons) > 0 {
		fmt.Fprintln(tw, "\n  SHELVE REASON\tSHELVES\tSHELVED\t\t")
		for _, r := range rep.Shelves.Reasons {
			fmt.Fprintf(tw, "  %s\t%d\t%s\t\t\n", cell(r.Reason), r.Count, seconds(r.ShelvedSeconds))
		}
		if rep.Shelves.OtherShelves > 0 {
			fmt.Fprintf(tw, "  (other reasons)\t%d\t\t\t\n", rep.Shelves.OtherShelves)
		}
	}
	fmt.Fprintln(tw, "\n  RAISED MOST\tNAME\tALERTS\tBY CONDITION\tPATIENT-DAYS")
	if len(rep.TopPatients) == 0 {
		fmt.Fprintln(tw, "  none\t\t\t\t")
	}
	for _, p := range rep.TopPatients {
		var by []string
		for _, c := range alerting.Conditions {
			if n := p.ByCondition[c]; n > 0 {
				by = append(by, fmt.Sprintf("%s %d", c, n))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%.2f\n", p.Patient, cell(p.Name), p.Alerts, strings.Join(by, ", "), p.PatientDays)
	}
	return tw.Flush()
}

// perDay says a rate beside a count: " (0.25 per patient-day)".
func perDay(r *float64) string {
	if r == nil {
		return ""
	}
	return " (" + strconv.FormatFloat(*r, 'f', -1, 64) + " per patient-day)"
}

func rateCell(r *float64) string {
	if r == nil {
		return "-"
	}
	return strconv.FormatFloat(*r, 'f', -1, 64)
}

// seconds says a duration to the second: "1h2m3s".
func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}
