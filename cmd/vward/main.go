// Command vward is the virtual ward platform: `vward demo` runs everything
// in one process with nothing to install; `vward serve` runs in production
// against Mosquitto and InfluxDB.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vward/vward/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		if errors.As(err, new(usageError)) {
			os.Exit(2) // the command was not run as given: the convention for a usage error
		}
		os.Exit(1)
	}
}

// usageError is a command line or environment that cannot be run as
// given: a flag, an argument or a VWARD_* variable.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "vward",
		Short: "Remote monitoring for virtual wards: device readings in, NEWS2 and alerts out to a live board",
		Long: `vward takes patients' device readings over MQTT, stores them in InfluxDB,
scores them with NEWS2 and shows every patient on a live board for the
virtual ward team.

Start with "vward demo": one process, nothing to install.

Every flag whose help names a VWARD_* variable can be set with it; a flag on
the command line wins. For secrets, VWARD_<NAME>_FILE names a file to read
the value from instead (a container's secret). A variable whose value does
not parse as its flag would is an error, not ignored.`,
		Version:      buildinfo.Read().String(),
		SilenceUsage: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return usageError{err}
			}
			var level slog.Level
			if l, _ := cmd.Flags().GetString("log-level"); level.UnmarshalText([]byte(l)) != nil {
				return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", l)}
			}
			if f, _ := cmd.Flags().GetString("log-format"); f != "text" && f != "json" {
				return usageError{fmt.Errorf("--log-format %q: want text or json", f)}
			}
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().String("log-level", "info", "log level: debug, info, warn, error (env VWARD_LOG_LEVEL)")
	root.PersistentFlags().String("log-format", "text", "log format: text (key=value) or json, one object a line (env VWARD_LOG_FORMAT)")
	root.AddCommand(newServeCmd(), newDemoCmd(), newScoreCmd(), newVersionCmd())
	root.AddCommand(newDevicesCmd())
	root.AddCommand(newWardsCmd(), newPatientsCmd(), newUsersCmd()) // the registry (registry.go)
	root.AddCommand(newAlertsCmd())                                 // handovers from alerts (alerts.go)
	root.AddCommand(newNotifyCmd())                                 // who is told of alerts (notify.go)
	root.AddCommand(newTokensCmd())                                 // machine clients of FHIR (tokens.go)
	root.AddCommand(newSimulateCmd(), newReplayCmd(), newBenchCmd())
	root.AddCommand(newBackupCmd(), newHealthcheckCmd()) // operations (backup.go, healthcheck.go)
	root.AddCommand(newSafetyCmd())                      // the hazard log (safety.go)
	usageArgs(root)
	return root
}

// usageArgs makes every command's argument errors usage errors (exit 2).
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print which vward this is: version, commit and Go",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			i := buildinfo.Read()
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "vward %s\ncommit  %s\nbuilt   %s\ngo      %s\n",
				i.Version, orUnknown(i.Revision), orUnknown(i.Time), i.GoVersion)
			return err
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// envName finds the VWARD_* variable a flag's help names.
var envName = regexp.MustCompile(`\(env (VWARD_[A-Z0-9_]+)`)

// applyEnv gives each flag not set on the command line the value of the
// VWARD_* variable its help names, or the content of the file that
// variable's _FILE names, parsed as the flag parses its own: a value that
// does not parse is an error naming the variable. A secret's value is
// never repeated in the error.
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		m := envName.FindStringSubmatch(f.Usage)
		if f.Changed || m == nil {
			return
		}
		name := m[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			file, ok := os.LookupEnv(name + "_FILE")
			if !ok {
				return
			}
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
				return
			}
			v = strings.TrimRight(string(b), "\r\n")
		}
		if err := fs.Set(f.Name, v); err != nil {
			shown := fmt.Sprintf("%q", v)
			if secret(name) {
				shown = "(a secret, not shown)"
			}
			errs = append(errs, fmt.Errorf("%s=%s does not parse as --%s: %w", name, shown, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// secret reports whether a variable holds a secret, never to be printed.
func secret(name string) bool {
	return strings.Contains(name, "PASSWORD") || strings.Contains(name, "TOKEN") || strings.Contains(name, "SECRET")
}

// logger builds the process logger from --log-level and --log-format. Logs
// carry ids, never patient names or NHS numbers.
func logger(cmd *cobra.Command) *slog.Logger {
	var level slog.Level
	s, _ := cmd.Flags().GetString("log-level")
	if err := level.UnmarshalText([]byte(s)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if f, _ := cmd.Flags().GetString("log-format"); f == "json" {
		return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), opts))
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts))
}
