package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/vward/vward/internal/bench"
	"github.com/vward/vward/internal/services"
)

func newBenchCmd() *cobra.Command {
	var (
		cfg        bench.Config
		jsonOut    bool
		inProcess  bool
		vwardBin   string
		benchProcs int
		noCeilings bool
		quiet      bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure end-to-end throughput, loss and latency against the machine's ceilings",
		Long: `Bench drives a numbered fleet of simulated devices (unique msg_ids, --readings
readings each) through the broker, vward and InfluxDB at --rate messages per
second for --duration, then reports: messages and readings per second
sustained; loss and duplicates (every published msg_id checked in InfluxDB);
publish→board latency (a signed-in clinician's /api/v1/stream) and sampled
publish→stored latency; vward's CPU and peak RSS. In the same run it measures
the machine's ceilings: the broker's raw QoS 1 publish→subscribe rate, with
as many device connections as the run's fleet and no vward, and InfluxDB's
raw batched write rate, and prints vward's rate as a share of each.

By default it starts everything itself: Mosquitto and influxd (from
$VWARD_TOOLS_BIN, PATH or the Go bin directory) on free loopback ports in a
temp dir, and "vward serve" as a child process, so that vward's CPU and
memory are measured alone. Give --mqtt-url, --influx-url and --board-url to
drive a running vward instead (with --data-dir, the bench registers its
devices and clinician in that vward's registry).

With --history-outage D it freezes its self-started influxd (SIGSTOP: its
connections hang, as in a real outage) for D, --history-outage-after into
publishing, and reports the board's latency during the outage, the
journal's backlog and how long it took to drain after the thaw. vward's
journal figures (backlog, oldest entry, forward rate, fsync time) are
reported whenever it has a journal.

docs/performance.md has the figures and how to reproduce them.

Examples:

  vward bench --rate 2000 --devices 2000 --duration 5m
  vward bench --rate 12700 --devices 12700 --duration 5m --broker-nice -5 --broker-max-inflight 625 \
    --vward-arg=--mqtt-connections=32 --vward-env GOMAXPROCS=1 --wards 318 --board-wards 32
  vward bench --rate 2000 --devices 2000 --duration 2m --history-outage 60s
  vward bench --rate 200 --devices 100 --duration 5s --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Ceilings = !noCeilings
			if cfg.BrokerMaxInflight == 0 {
				cfg.BrokerMaxInflight = -1 // the flag's 0 is Mosquitto's "no limit"; Config's 0 is the default
			}
			if !quiet {
				cfg.Progress = cmd.ErrOrStderr()
			}
			if cfg.MQTTURL == "" && !inProcess {
				exe, err := os.Executable()
				if err != nil {
					return err
				}
				if vwardBin != "" {
					exe = vwardBin
				}
				cfg.VwardCommand = []string{exe, "serve"}
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if benchProcs > 0 && !inProcess {
				// One P: no scheduler threads woken to spin for the fleet's
				// 12,700 connections' wake-ups (docs/design/go-runtime-settings.md).
				runtime.GOMAXPROCS(benchProcs)
			}
			res, err := bench.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printBench(cmd.OutOrStdout(), res)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.Float64Var(&cfg.Rate, "rate", 2000, "messages per second across the fleet")
	fs.IntVar(&cfg.Devices, "devices", 2000, "devices (and patients); each publishes every devices/rate seconds")
	fs.IntVar(&cfg.Readings, "readings", 4, "readings per message")
	fs.DurationVar(&cfg.Duration, "duration", 60e9, "how long to publish")
	fs.StringVar(&cfg.Prefix, "prefix", "bench-", "device id prefix")
	fs.StringVar(&cfg.MQTTURL, "mqtt-url", "", "broker of a running vward (default: start Mosquitto, InfluxDB and vward)")
	fs.StringVar(&cfg.InfluxURL, "influx-url", "", "InfluxDB of a running vward")
	fs.StringVar(&cfg.InfluxBucket, "influx-bucket", "vward/autogen", "its bucket (InfluxDB 1.8: database/retention-policy)")
	fs.StringVar(&cfg.BoardURL, "board-url", "", "board of a running vward, e.g. http://127.0.0.1:8080")
	fs.StringVar(&cfg.Username, "username", "", "clinician of the bench ward on a running vward (default: one the bench creates)")
	fs.StringVar(&cfg.Password, "password", "", "that clinician's password")
	fs.StringVar(&cfg.Ward, "ward", "bench", "ward of the bench's patients")
	fs.IntVar(&cfg.Wards, "wards", 1, "spread the patients over this many wards (--ward-001…), as virtual wards are many small ones")
	fs.IntVar(&cfg.BoardWards, "board-wards", 0, "the board client's clinician holds the first N wards and watches only them, as a clinician does; latency is measured on their patients (0: every ward, one client seeing every patient)")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "data dir of a running vward: register the bench's ward, clinician, patients and devices there")
	fs.StringVar(&cfg.WorkDir, "work-dir", "", "where self-started services keep their data (default: a temp dir, removed afterwards)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temp dir (logs of mosquitto, influxd and vward)")
	fs.IntVar(&cfg.BrokerMaxInflight, "broker-max-inflight", services.DefaultMaxInflight, "max_inflight_messages of the self-started Mosquitto, as docs/operator.md says; 0 is Mosquitto's no limit")
	fs.IntVar(&cfg.BrokerAutosave, "broker-autosave", 30, "autosave_interval (s) of the self-started Mosquitto: production's 30 (the tests use 1)")
	fs.IntVar(&cfg.BrokerNice, "broker-nice", 0, "scheduling niceness of the self-started Mosquitto: -5 puts the broker first on a small shared machine, as docs/operator.md advises (below 0 takes root); 0 leaves it")
	fs.IntVar(&cfg.InfluxdNice, "influxd-nice", 0, "scheduling niceness of the self-started influxd, every thread; 0 leaves it (docs/performance.md: at step 2 a store at 5 falls behind, and the board with it)")
	fs.StringArrayVar(&cfg.VwardEnv, "vward-env", nil, "extra environment KEY=VALUE for the self-started `vward serve`, repeatable (e.g. --vward-env GOMAXPROCS=1)")
	fs.StringArrayVar(&cfg.InfluxdEnv, "influxd-env", nil, "extra environment KEY=VALUE for the self-started influxd, after its GOGC=200 (docs/operator.md), repeatable")
	fs.IntVar(&benchProcs, "bench-procs", 1, "GOMAXPROCS of the bench process (fleet and board client) when vward runs apart from it: the load generator should take as little of the machine it measures as it can; 0 leaves Go's default")
	fs.StringArrayVar(&cfg.VwardArgs, "vward-arg", nil, "extra flag for the self-started `vward serve`, repeatable (e.g. --vward-arg=--mqtt-connections=2)")
	fs.StringVar(&vwardBin, "vward-bin", "", "the vward binary the bench runs as its child (default: this one), to compare builds under one bench")
	fs.BoolVar(&inProcess, "in-process", false, "run the self-started vward inside the bench process (CPU and RSS then include the fleet)")
	fs.BoolVar(&noCeilings, "no-ceilings", false, "skip measuring the broker's and InfluxDB's raw rates")
	fs.DurationVar(&cfg.CeilingDuration, "ceiling-duration", 10e9, "how long each ceiling is measured")
	fs.IntVar(&cfg.CeilingDevices, "ceiling-devices", 0, "device connections publishing in the broker's ceiling; 0 is --devices: the run's own fleet, whose connections are much of the broker's and the machine's work (docs/performance.md)")
	fs.DurationVar(&cfg.HistoryOutage, "history-outage", 0, "freeze the self-started influxd (SIGSTOP) for this long during publishing, then thaw it, and report the board's latency meanwhile and the drain after; 0 is no outage")
	fs.DurationVar(&cfg.HistoryOutageAfter, "history-outage-after", 0, "publishing before the outage starts; 0 is 30s or a fifth of --duration, whichever is less")
	fs.StringVar(&cfg.Verify, "verify", "auto", "loss check: full (every msg_id fetched), counts (per-device distinct counts in InfluxDB, then id by id where they differ) or auto")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write CPU profiles over the publishing window: the self-started vward's to FILE and the bench's own (fleet, board client) to FILE.bench")
	fs.StringVar(&cfg.HeapProfile, "heapprofile", "", "save the self-started vward's heap profile a minute into publishing (FILE.early) and at its end (FILE)")
	fs.BoolVar(&jsonOut, "json", false, "print the summary as JSON")
	fs.BoolVar(&quiet, "quiet", false, "no progress display on stderr")
	return cmd
}

func printBench(w io.Writer, r bench.Result) {
	fmt.Fprintf(w, "vward bench (%s): %d devices, %d readings/msg, target %.0f msgs/s for %.0fs\n", r.Mode, r.Devices, r.Readings, r.TargetRate, r.DurationS)
	fmt.Fprintf(w, "machine: %d CPUs (%s), %d MB RAM, %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemoryMB, r.Machine.Go)
	if r.Versions.Broker != "" || r.Versions.Store != "" {
		fmt.Fprintf(w, "services: broker %s, store %s\n", cmp.Or(r.Versions.Broker, "(version unknown)"), cmp.Or(r.Versions.Store, "(version unknown)"))
	}
	fmt.Fprintf(w, "published   %d (%.1f msgs/s offered; fleet lag max %.1f ms)\n", r.Published, r.PublishedPerS, r.FleetLagMaxMS)
	fmt.Fprintf(w, "stored      %d   lost %d   duplicates %d   (verify: %s)\n", r.Stored, r.Lost, r.Duplicates, r.Verify)
	if len(r.LostIDs) > 0 {
		fmt.Fprintf(w, "lost e.g.   %v\n", r.LostIDs)
	}
	fmt.Fprintf(w, "sustained   %.1f msgs/s, %.1f readings/s (drain after publishing: %.2fs)\n", r.MsgsPerS, r.ReadingsPerS, r.DrainS)
	fmt.Fprintf(w, "publish→board   p50 %.1f  p95 %.1f  p99 %.1f  max %.1f ms  (%d updates)\n", r.LatencyMS.P50, r.LatencyMS.P95, r.LatencyMS.P99, r.LatencyMS.Max, r.LatencyMS.Count)
	fmt.Fprintf(w, "publish→stored  p50 %.1f  p95 %.1f  p99 %.1f  max %.1f ms  (%d samples, polled)\n", r.StoreLatencyMS.P50, r.StoreLatencyMS.P95, r.StoreLatencyMS.P99, r.StoreLatencyMS.Max, r.StoreLatencyMS.Count)
	fmt.Fprintf(w, "vward       cpu %.1f%% of a core (%.1fs), rss %.1f → %.1f MB, peak %.1f MB — %s\n", r.Vward.CPUPercent, r.Vward.CPUSeconds, r.Vward.RSSStartMB, r.Vward.RSSEndMB, r.Vward.PeakRSSMB, r.Vward.Measured)
	if len(r.Services) > 0 {
		fmt.Fprintf(w, "services    cpu %% of a core: %v; the bench itself %.1f%%\n", r.Services, r.BenchCPUPercent)
	}
	if o := r.Outage; o != nil {
		fmt.Fprintf(w, "outage      influxd frozen %.1fs → %.1fs: %d messages due, %d of them stored in the end; vward acknowledged %d meanwhile\n",
			o.StartS, o.EndS, o.Published, o.Stored, o.Acknowledged)
		fmt.Fprintf(w, "  board     p50 %.1f  p95 %.1f  p99 %.1f  max %.1f ms  (%d updates due during the outage)\n", o.LatencyMS.P50, o.LatencyMS.P95, o.LatencyMS.P99, o.LatencyMS.Max, o.LatencyMS.Count)
		fmt.Fprintf(w, "  backlog   %s: %.0f before, peak %.0f", o.Backlog, o.BacklogBeforeMsgs, o.PeakBacklogMsgs)
		if o.PeakBacklogBytes > 0 {
			fmt.Fprintf(w, " (%.1f MB)", o.PeakBacklogBytes/(1<<20))
		}
		if o.Drained {
			fmt.Fprintf(w, "; drained %.1fs after the thaw at %.0f msgs/s, %.2f× the publish rate of %.0f/s\n", o.DrainS, o.DrainMsgsPerS, o.DrainVsPublish, o.PublishMsgsPerS)
		} else {
			fmt.Fprintf(w, "; not drained within the run\n")
		}
	}
	if j := r.Journal; j != nil {
		full := ""
		if j.Full {
			full = "; it was full, and acknowledgements were held"
		}
		fmt.Fprintf(w, "journal     backlog peak %.0f msgs (%.1f MB of %.0f MB), oldest %.1fs, end %.0f; forwarded %.0f (%.1f msgs/s)%s\n",
			j.BacklogPeakMsgs, j.BacklogPeakBytes/(1<<20), j.MaxBytes/(1<<20), j.OldestAgePeakS, j.BacklogEndMsgs, j.ForwardedMsgs, j.ForwardedMsgsPerS, full)
		fmt.Fprintf(w, "  append    write+fsync p50 %.2f  p99 %.2f ms (%d batches); forward to InfluxDB p50 %.1f  p99 %.1f ms (%d writes)\n",
			j.AppendMS.P50, j.AppendMS.P99, j.AppendMS.Count, j.ForwardMS.P50, j.ForwardMS.P99, j.ForwardMS.Count)
		fmt.Fprintf(w, "  refused   %.0f writes (full); %.0f failed forwards; %.0f unreadable entries\n", j.RefusedWrites, j.ForwardFailures, j.UnreadableEntries)
	}
	if r.Ceiling.BrokerMsgsPerS > 0 {
		fmt.Fprintf(w, "ceilings    broker %.0f msgs/s from %d devices (vward %.1f%%), InfluxDB %.0f points/s (vward %.1f%%); of the lower: %.1f%%\n",
			r.Ceiling.BrokerMsgsPerS, r.Ceiling.BrokerDevices, 100*r.OfCeiling.Broker, r.Ceiling.InfluxPointsPerS, 100*r.OfCeiling.Influx, 100*r.OfCeiling.Lower)
	}
}
