package main

// `vward patients note`, `notes` and `addendum`: a patient's notes and
// contact log from the command line. Like the other registry commands they
// write the SQL store in --data-dir directly; a running vward shows them
// on its next read, since a note changes no score (docs/notes.md).

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/devices"
	"github.com/vward/vward/notes"
)

// openNotes opens the notes in the data dir, with a context naming the
// actor.
func (o *registryOpts) openNotes(ctx context.Context) (*notes.Store, *devices.Registry, context.Context, func(), error) {
	return openOnRegistry(ctx, o, func(ctx context.Context, db *sql.DB, reg *devices.Registry) (*notes.Store, error) {
		return notes.Open(ctx, db, reg)
	})
}

// openOnRegistry opens the data dir's registry and a store kept beside it
// (notes, observation entries, care plans), with a context naming the
// actor; done closes the database.
func openOnRegistry[S any](ctx context.Context, o *registryOpts, open func(context.Context, *sql.DB, *devices.Registry) (S, error)) (store S, reg *devices.Registry, actx context.Context, done func(), err error) {
	db, err := openStore(o.dataDir, false)
	if err != nil {
		return store, nil, nil, nil, err
	}
	if reg, err = devices.Open(ctx, db); err == nil {
		store, err = open(ctx, db, reg)
	}
	if err != nil {
		db.Close()
		return store, nil, nil, nil, err
	}
	actor := strings.TrimSpace(o.actor)
	if actor == "" {
		actor = defaultActor()
	}
	return store, reg, devices.WithActor(ctx, actor), func() { db.Close() }, nil
}

func kindNames() string {
	names := make([]string, len(notes.Kinds))
	for i, k := range notes.Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

func newPatientsNoteCmd() *cobra.Command {
	var (
		o          registryOpts
		kind, text string
		at         timeFlag
	)
	cmd := &cobra.Command{
		Use:   "note ID --kind KIND --text TEXT [--at TIME]",
		Short: "Write a note or contact (call, visit, MDT review…) in a patient's log; audited",
		Long: `Write a note in a patient's notes and contact log: a telephone call, a visit,
an MDT review, a message left, a call not answered, or a plain note. A note
is never changed afterwards: correct it with "vward patients addendum".`,
		Example: `  vward patients note p-0042 --kind phone_call --text "Spoke to daughter: more breathless since lunch" --actor nurse.khan
  vward patients note p-0042 --kind no_answer --at "2026-03-01 14:05" --text "No answer on the mobile; retry 14:30"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			when, err := at.parse()
			if err != nil {
				return err
			}
			in := notes.Input{Kind: kind, Text: text}
			if !when.IsZero() {
				in.OccurredAt = when.UTC().Format(time.RFC3339Nano)
			}
			store, _, ctx, done, err := o.openNotes(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			n, err := store.Add(ctx, vward.PatientID(args[0]), in)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), notes.Present(n))
			}
			return printOut(cmd, "%s written for %s (%s, by %s, at %s)\n", n.Name(), n.Patient, n.Kind, n.Author, localTime(n.OccurredAt))
		},
	}
	fs := cmd.Flags()
	o.register(fs, true, true)
	fs.StringVar(&kind, "kind", "", "what it records: "+kindNames()+" (required)")
	fs.StringVar(&text, "text", "", fmt.Sprintf("what happened, at most %d characters (required)", notes.MaxText))
	at.register(fs, "at", "when it happened")
	_ = cmd.MarkFlagRequired("kind")
	_ = cmd.MarkFlagRequired("text")
	return cmd
}

func newPatientsAddendumCmd() *cobra.Command {
	var (
		o    registryOpts
		text string
	)
	cmd := &cobra.Command{
		Use:     "addendum NOTE-ID --text TEXT",
		Short:   "Add an addendum to a note: the only way to correct one; audited",
		Example: `  vward patients addendum note-12 --text "It was the son, not the daughter" --actor nurse.khan`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := notes.ParseName(args[0])
			if err != nil {
				return err
			}
			store, _, ctx, done, err := o.openNotes(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			a, err := store.Addendum(ctx, id, text)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), notes.Present(a))
			}
			return printOut(cmd, "%s written for %s, amending %s (by %s)\n", a.Name(), a.Patient, notes.Name(a.Amends), a.Author)
		},
	}
	o.register(cmd.Flags(), true, true)
	cmd.Flags().StringVar(&text, "text", "", "the correction or addition (required)")
	_ = cmd.MarkFlagRequired("text")
	return cmd
}

func newPatientsNotesCmd() *cobra.Command {
	var (
		o     registryOpts
		limit int
	)
	cmd := &cobra.Command{
		Use:   "notes ID",
		Short: "List a patient's notes and contacts, newest first, each with its addenda",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := vward.PatientID(args[0])
			store, reg, ctx, done, err := o.openNotes(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := reg.Patient(ctx, id); err != nil {
				return err
			}
			ns, err := store.List(ctx, id, time.Time{}, limit)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(cmd.OutOrStdout(), notes.Thread(ns))
			}
			return writeTable(cmd.OutOrStdout(), ns, "no notes for "+string(id), "ID\tWHEN\tKIND\tWHO\tTEXT", func(n notes.Note) []string {
				name, kind := n.Name(), string(n.Kind)
				if n.Amends != 0 {
					name, kind = "  "+name, "addendum to "+notes.Name(n.Amends)
				}
				return []string{name, localTime(n.OccurredAt), kind, cell(n.Author), cell(n.Text)}
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many notes (each with its addenda)")
	return cmd
}
