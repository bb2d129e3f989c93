package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vward/vward/alerting"
	"github.com/vward/vward/history"
	"github.com/vward/vward/ingest"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/journal"
)

// influxFlags are shared by serve and demo.
type influxFlags struct{ url, token, tokenFile, org, bucket string }

func (f *influxFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "influx-url", "", "InfluxDB URL, e.g. http://127.0.0.1:8086 (env VWARD_INFLUX_URL)")
	fs.StringVar(&f.token, "influx-token", "", "InfluxDB API token; for InfluxDB 1.8, user:password or empty (env VWARD_INFLUX_TOKEN)")
	fs.StringVar(&f.tokenFile, "influx-token-file", "", "read the InfluxDB token from this file instead (a container's secret)")
	fs.StringVar(&f.org, "influx-org", "", "InfluxDB organisation; empty for InfluxDB 1.8 (env VWARD_INFLUX_ORG)")
	fs.StringVar(&f.bucket, "influx-bucket", "vward", "InfluxDB bucket; for InfluxDB 1.8, database/retention-policy such as vward/autogen (env VWARD_INFLUX_BUCKET)")
}

func (f *influxFlags) config() (*history.InfluxConfig, error) {
	if f.url == "" {
		return nil, nil
	}
	token, err := secretFrom(f.token, f.tokenFile, "--influx-token-file")
	if err != nil {
		return nil, err
	}
	c := &history.InfluxConfig{URL: f.url, Token: token, Org: f.org, Bucket: f.bucket}
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// secretFrom is value, or the content of file when one is named.
func secretFrom(value, file, flag string) (string, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usageError{fmt.Errorf("%s: %w", flag, err)}
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// journalFlags place and bound the journal between ingest and InfluxDB.
type journalFlags struct {
	cfg journal.Config
	off bool
}

func (f *journalFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.cfg.Dir, "journal-dir", "", "directory of the journal that keeps readings between the broker and InfluxDB; empty means <data-dir>/journal (env VWARD_JOURNAL_DIR)")
	fs.Int64Var(&f.cfg.MaxBytes, "journal-max-bytes", journal.DefaultMaxBytes, "bound of the journal on disk; when full, acknowledgements are held as without a journal (docs/operator.md sizes it) (env VWARD_JOURNAL_MAX_BYTES)")
	fs.BoolVar(&f.off, "no-journal", false, "acknowledge a reading only once InfluxDB has stored it: an InfluxDB outage then stalls ingest and alerts (env VWARD_NO_JOURNAL)")
}

func (f *journalFlags) config() (*journal.Config, error) {
	if f.off {
		return nil, nil
	}
	if f.cfg.MaxBytes < journal.MinMaxBytes {
		return nil, usageError{fmt.Errorf("--journal-max-bytes %d: want at least %d", f.cfg.MaxBytes, journal.MinMaxBytes)}
	}
	c := f.cfg
	return &c, nil
}

// ingestFlags tune the pipeline.
type ingestFlags struct{ cfg ingest.Config }

func (f *ingestFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.cfg.MaxInFlight, "max-inflight", 20000, "messages received but not yet stored and acknowledged; beyond it the broker holds the backlog (env VWARD_MAX_INFLIGHT)")
	fs.IntVar(&f.cfg.BatchSize, "batch-size", 5000, "readings per InfluxDB write (env VWARD_BATCH_SIZE)")
	fs.DurationVar(&f.cfg.BatchWait, "batch-wait", 0, "how long a partial batch waits for more before it is written; 0 means 20ms (env VWARD_BATCH_WAIT)")
	fs.IntVar(&f.cfg.Writers, "store-writers", 2, "batches written to InfluxDB at once; acknowledgements stay in arrival order (env VWARD_STORE_WRITERS)")
	fs.Int64Var(&f.cfg.MaxInFlightBytes, "max-inflight-bytes", int64(64<<20), "payload bytes of the messages in flight; bounds memory whatever their size (env VWARD_MAX_INFLIGHT_BYTES)")
}

func newServeCmd() *cobra.Command {
	var (
		cfg       node.Config
		influx    influxFlags
		tune      ingestFlags
		journalF  journalFlags
		pprofAddr string
		proxies   []string
		mqttTLS   mqttTLSFlags

		mqttPasswordFile string
		ackTimeouts      []string
		streamConfirm    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run vward in production against an MQTT broker and InfluxDB",
		Long: `Run vward against an external MQTT broker (Mosquitto 2, configured as
docs/operator.md says) and InfluxDB. Every flag can also be set with the
VWARD_* environment variable named in its help; a flag wins.

A reading is acknowledged to the broker once it is in vward's journal on
local disk (fsync'd) or, with --no-journal, once InfluxDB has stored it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if influx.url == "" {
				return errors.New("serve needs --influx-url (or VWARD_INFLUX_URL); for a try-out without InfluxDB, use vward demo")
			}
			var err error
			if cfg.MQTT.TLS, err = mqttTLS.config(cfg.MQTT.URL); err != nil {
				return err
			}
			if err := cfg.MQTT.Validate(); err != nil {
				return usageError{err}
			}
			for _, p := range proxies {
				pfx, err := parsePrefix(p)
				if err != nil {
					return fmt.Errorf("--trusted-proxy %q: want an address or a CIDR range (10.0.0.5, 10.0.0.0/24): %w", p, err)
				}
				cfg.Auth.TrustedProxies = append(cfg.Auth.TrustedProxies, pfx)
			}
			if cfg.Influx, err = influx.config(); err != nil {
				return err
			}
			if cfg.MQTT.Password, err = secretFrom(cfg.MQTT.Password, mqttPasswordFile, "--mqtt-password-file"); err != nil {
				return err
			}
			if cfg.Journal, err = journalF.config(); err != nil {
				return err
			}
			cfg.Notify.BoardURL = strings.TrimRight(cfg.Notify.BoardURL, "/")
			if cfg.Alerting.Policy.AckTimeout, err = parseAckTimeouts(ackTimeouts); err != nil {
				return usageError{err}
			}
			if cfg.Alerting.Policy.StreamConfirm, err = streamConfirmOf(streamConfirm); err != nil {
				return usageError{err}
			}
			cfg.Ingest = tune.cfg
			cfg.Log = logger(cmd)
			cfg.Log.Debug("garbage collector target", "gogc", tuneGC())
			if pprofAddr != "" {
				if err := servePprof(cmd.Context(), pprofAddr, cfg.Log); err != nil {
					return err
				}
			}
			n, err := node.Open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer n.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "vward board: %s\n", n.URL())
			return n.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address the board and REST API listen on (env VWARD_HTTP_ADDR)")
	fs.StringVar(&cfg.DataDir, "data-dir", "vward-data", "directory of the embedded SQL store: registry, alert state, audit, dead letters (env VWARD_DATA_DIR)")
	fs.StringVar(&cfg.MQTT.URL, "mqtt-url", "tcp://127.0.0.1:1883", "MQTT broker URL: tcp://host:1883, or mqtts://host:8883 for TLS (env VWARD_MQTT_URL)")
	fs.StringVar(&cfg.MQTT.Username, "mqtt-username", "vward", "vward's own MQTT account (env VWARD_MQTT_USERNAME)")
	fs.StringVar(&cfg.MQTT.Password, "mqtt-password", "", "password of vward's MQTT account (env VWARD_MQTT_PASSWORD)")
	fs.StringVar(&mqttPasswordFile, "mqtt-password-file", "", "read vward's MQTT password from this file instead (a container's secret)")
	fs.StringVar(&cfg.MQTT.ClientID, "mqtt-client-id", "vward-ingest", "fixed MQTT client id: the broker keeps unacknowledged readings in this persistent session across restarts (env VWARD_MQTT_CLIENT_ID)")
	fs.StringSliceVar(&cfg.MQTT.Retire, "mqtt-retire-client-ids", nil, "client ids of broker sessions vward no longer uses (after changing --mqtt-connections or --mqtt-client-id): drained into InfluxDB, then deleted (env VWARD_MQTT_RETIRE_CLIENT_IDS, comma-separated)")
	fs.IntVar(&cfg.MQTT.Connections, "mqtt-connections", 1, "subscriber connections; above 1 they share a $share/vward/ subscription as <client-id>-1…-N (read docs/operator.md before changing it) (env VWARD_MQTT_CONNECTIONS)")
	mqttTLS.register(fs, "vward's", true)
	fs.StringSliceVar(&proxies, "trusted-proxy", nil, "reverse proxies in front of the board (addresses or CIDR ranges): from them the client is read from X-Forwarded-For, for the sign-in limits, and X-Forwarded-Proto: https marks the session cookie Secure (env VWARD_TRUSTED_PROXIES, comma-separated)")
	fs.StringVar(&cfg.Notify.BoardURL, "public-url", "", "the board's address as people reach it (https://vward.example.nhs.uk), for the links in notifications; empty: no link (env VWARD_PUBLIC_URL)")
	fs.StringSliceVar(&ackTimeouts, "ack-timeout", nil, "how long an alert may stay unacknowledged before it escalates to the next tier, per risk: high=10m,medium=30m,low-medium=1h,low=4h (the defaults; docs/alerts.md) (env VWARD_ACK_TIMEOUT, comma-separated)")
	fs.DurationVar(&streamConfirm, "stream-confirm", alerting.DefaultPolicy().StreamConfirm, "how long a NEWS2 alert a streaming device's readings would raise is held to confirm it (a moment's artefact pages nobody), 0 to 1m; 0 raises at once; spot checks and people's entries always raise at once (docs/alerts.md) (env VWARD_STREAM_CONFIRM)")
	fs.StringVar(&pprofAddr, "pprof-addr", "", "serve Go's /debug/pprof on this address (loopback only, e.g. 127.0.0.1:6060) for profiling; off when empty (env VWARD_PPROF_ADDR)")
	influx.register(fs)
	tune.register(fs)
	journalF.register(fs)
	return cmd
}

// streamConfirmOf checks --stream-confirm: at most alerting.MaxStreamConfirm,
// 0 for no hold.
func streamConfirmOf(d time.Duration) (time.Duration, error) {
	switch {
	case d < 0 || d > alerting.MaxStreamConfirm:
		return 0, fmt.Errorf("--stream-confirm %s: give a duration from 0 (raise at once) to %s", d, alerting.MaxStreamConfirm)
	case d == 0:
		return alerting.NoStreamConfirm, nil
	}
	return d, nil
}

// parsePrefix reads an address (one host) or a CIDR range.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// servePprof serves net/http/pprof on its own listener, never on the
// board's: profiles expose internals and cost CPU, so they are opt-in and
// loopback only.
func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--pprof-addr %q: profiles are served on loopback only", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	context.AfterFunc(ctx, func() { srv.Close() })
	if log != nil {
		log.Info("pprof serving", "addr", l.Addr().String())
	}
	return nil
}

// parseAckTimeouts reads --ack-timeout's risk=duration pairs; a risk not
// named keeps its default.
func parseAckTimeouts(pairs []string) (alerting.PerRisk, error) {
	var p alerting.PerRisk
	for _, pair := range pairs {
		risk, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return p, fmt.Errorf("--ack-timeout %q: give risk=duration, such as high=10m", pair)
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > 24*time.Hour {
			return p, fmt.Errorf("--ack-timeout %s: %q is not a duration from 10s to 24h", risk, v)
		}
		switch risk {
		case "high":
			p.High = d
		case "medium":
			p.Medium = d
		case "low-medium":
			p.LowMedium = d
		case "low":
			p.Low = d
		default:
			return p, fmt.Errorf("--ack-timeout %q: risk %q is not high, medium, low-medium or low", pair, risk)
		}
	}
	return p, nil
}
