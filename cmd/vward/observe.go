package main

// `vward patients observe` and `vward patients entered-in-error`:
// observations people took (by telephone, at a visit, by a carer), entered
// from the command line. The entry is kept in the SQL store at once; a
// running vward scores it and writes it to the history within seconds, as
// it takes any change the CLI makes (docs/observations.md).

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/observations"
)

// openEntries opens the observation entries in the data dir, with a
// context naming the actor.
func (o *registryOpts) openEntries(ctx context.Context) (*observations.Store, context.Context, func(), error) {
	store, _, actx, done, err := openOnRegistry(ctx, o, func(ctx context.Context, db *sql.DB, reg *devices.Registry) (*observations.Store, error) {
		return observations.Open(ctx, db, reg)
	})
	return store, actx, done, err
}

// kindFlag is a reading kind's flag name: respiratory_rate is
// --respiratory-rate.
func kindFlag(k vward.ReadingKind) string { return strings.ReplaceAll(string(k), "_", "-") }

func newPatientsObserveCmd() *cobra.Command {
	var (
		o      registryOpts
		source string
		at     timeFlag
	)
	values := make(map[vward.ReadingKind]*string, vward.NumReadingKinds)
	cmd := &cobra.Command{
		Use:   "observe ID --source SOURCE [--respiratory-rate N] [--spo2 N] [--consciousness A|C|V|P|U] …",
		Short: "Enter observations taken by telephone, at a visit or by a carer; audited",
		Long: `Enter observations a person took for a patient: by telephone, at a home visit,
by a carer or care-home staff, or reported by the patient. They are checked as a
device's readings are (kinds, units, possible ranges, a time not in the future),
merged with the devices' readings by measurement time, and scored as NEWS2.
A running vward scores them and stores them in the history within seconds.`,
		Example: `  vward patients observe p-0042 --source telephone --respiratory-rate 22 \
    --consciousness A --supplemental-oxygen false --actor nurse.khan
  vward patients observe p-0042 --source home_visit --at "2026-03-01 14:05" --temperature 38.2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := at.parse()
			if err != nil {
				return err
			}
			in := observations.Input{Source: source, Readings: map[string]json.RawMessage{}}
			if !when.IsZero() {
				in.MeasuredAt = when.UTC().Format(time.RFC3339Nano)
			}
			for _, k := range vward.ReadingKinds {
				if !cmd.Flags().Changed(kindFlag(k)) {
					continue
				}
				v := strings.TrimSpace(*values[k])
				if k == vward.Consciousness {
					// A letter, as a JSON string, the way a device sends it.
					b, _ := json.Marshal(strings.ToUpper(v))
					v = string(b)
				}
				in.Readings[string(k)] = json.RawMessage(v)
			}
			store, ctx, done, err := o.openEntries(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			e, err := store.Enter(ctx, vward.PatientID(args[0]), in)
			if err != nil {
				return err
			}
			v := observations.Present(e, time.Now(), news2.DefaultFreshness())
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			if err := printOut(cmd, "%s entered for %s (%s, by %s, measured %s)\n", v.ID, e.Patient, e.Source, e.Author, localTime(e.MeasuredAt)); err != nil {
				return err
			}
			if v.Note != "" {
				if err := printOut(cmd, "note: %s\n", v.Note); err != nil {
					return err
				}
			}
			return printOut(cmd, "a running vward scores it and stores it in the history within seconds\n")
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, true)
	fs.StringVar(&source, "source", "", "how the observations were taken: telephone, home_visit, carer, care_home_staff or patient_self_report (required)")
	at.register(fs, "at", "when measured")
	for _, k := range vward.ReadingKinds {
		what := map[vward.ReadingKind]string{
			vward.SupplementalOxygen: "on supplemental oxygen: true or false",
			vward.Consciousness:      "ACVPU: A, C, V, P or U",
			vward.PainScore:          "pain score, 0 (none) to 10 (worst imaginable)",
			vward.FallEvent:          "a fall, seen or reported: true",
		}[k]
		if what == "" {
			what = strings.ReplaceAll(string(k), "_", " ") + " in " + k.Unit()
		}
		values[k] = fs.String(kindFlag(k), "", what)
	}
	_ = cmd.MarkFlagRequired("source")
	return cmd
}

func newPatientsEnteredInErrorCmd() *cobra.Command {
	var (
		o      registryOpts
		reason string
	)
	cmd := &cobra.Command{
		Use:     "entered-in-error OBS-ID --reason R",
		Short:   "Mark an observation entry entered in error; the patient is rescored without it",
		Example: `  vward patients entered-in-error obs-12 --reason "entered against the wrong patient"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := observations.ParseName(args[0])
			if err != nil {
				return err
			}
			store, ctx, done, err := o.openEntries(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			e, err := store.MarkEnteredInError(ctx, id, reason)
			if err != nil {
				return err
			}
			return printOut(cmd, "%s marked entered in error; a running vward rescores %s without it within seconds\n", e.Name(), e.Patient)
		},
	}
	o.register(cmd.Flags(), true, false)
	cmd.Flags().StringVar(&reason, "reason", "", "why it was entered in error (required; kept in the audit)")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}
