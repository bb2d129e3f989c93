// Command vward is the virtual ward platform: `vward demo` runs everything
// in one process with nothing to install; `vward serve` runs in production
// against Mosquitto and InfluxDB.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "vward",
		Short: "Remote monitoring for virtual wards: device readings in, NEWS2 and alerts out to a live board",
		Long: `vward takes patients' device readings over MQTT, stores them in InfluxDB,
scores them with NEWS2 and shows every patient on a live board for the
virtual ward team.

Start with "vward demo": one process, nothing to install.`,
		SilenceUsage: true,
	}
	root.PersistentFlags().String("log-level", env("VWARD_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env VWARD_LOG_LEVEL)")
	root.AddCommand(newServeCmd(), newDemoCmd(), newScoreCmd())
	root.AddCommand(newDevicesCmd())
	root.AddCommand(newWardsCmd(), newPatientsCmd(), newUsersCmd()) // the registry (registry.go)
	root.AddCommand(newSimulateCmd(), newReplayCmd(), newBenchCmd())
	return root
}

// logger builds the process logger from --log-level. Logs carry ids, never
// patient names or NHS numbers.
func logger(cmd *cobra.Command) *slog.Logger {
	var level slog.Level
	s, _ := cmd.Flags().GetString("log-level")
	if err := level.UnmarshalText([]byte(s)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// env reads a VWARD_* variable as a flag's default, so that flags and the
// environment configure the same settings and a flag wins over both.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return n
		}
		fmt.Fprintf(os.Stderr, "vward: ignoring %s=%q: not a whole number\n", name, v)
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(v)); err == nil {
			return d
		}
		fmt.Fprintf(os.Stderr, "vward: ignoring %s=%q: not a duration like 50ms\n", name, v)
	}
	return def
}
