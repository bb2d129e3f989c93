package main

// The registry commands: `vward wards|patients|users …` and the registry
// subcommands of `vward devices …`, one file a group (wards.go, patients.go,
// users.go, deviceregistry.go). Each opens the SQLite file in --data-dir
// directly; SQLite in WAL mode lets them run beside `vward serve`, which
// notices their changes within seconds (docs/registry.md).

import (
	"context"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vward/vward/devices"
	"github.com/vward/vward/handover"
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
// (the first ward or user of an installation), as for openStore.
func (o *registryOpts) open(ctx context.Context, create bool) (*devices.Registry, context.Context, func(), error) {
	db, err := openStore(o.dataDir, create)
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

// doWithHandovers is do with the handovers' store beside the registry,
// for the ward report's step-up figures.
func (o *registryOpts) doWithHandovers(cmd *cobra.Command, f func(ctx context.Context, reg *devices.Registry, hs *handover.Store) error) error {
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
	hs, err := handover.Open(ctx, db)
	if err != nil {
		return err
	}
	return f(ctx, reg, hs)
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
				return writeTable(out, rows, l.empty, l.header, l.row)
			})
		},
	}
	o.register(cmd.Flags(), false, true)
	return cmd
}
