package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vward/vward/broker"
	"github.com/vward/vward/internal/demo"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/mqttsource"
)

func newDemoCmd() *cobra.Command {
	var (
		cfg      node.Config
		influx   influxFlags
		mqttAddr string
		opts     demo.Options
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole virtual ward in one process, with nothing to install",
		Long: `Run vward with an embedded MQTT broker, a seeded demo ward with patients and
their devices, a simulated fleet publishing through the broker, and the board.

The demo starts afresh each time: it replaces the registry in --data-dir and
writes the demo devices' credentials to <data-dir>/demo-credentials.json, so
that you can publish as a demo device yourself, for example:

  mosquitto_pub -h 127.0.0.1 -p 1883 -u dev-001 -P <secret> -q 1 \
    -t vward/v1/devices/dev-001/readings \
    -m '{"msg_id":"m1","ts":"2026-11-24T10:00:00Z","readings":[{"type":"spo2","value":91}]}'

With --simulate=false the demo devices exist but stay silent.
Without --influx-url, readings are kept in a bounded in-memory history, and
the board says so.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger(cmd)
			ctx := cmd.Context()
			servicePassword, err := randomToken()
			if err != nil {
				return err
			}
			if err := demo.Reset(cfg.DataDir); err != nil {
				return err
			}
			if cfg.Influx, err = influx.config(); err != nil {
				return err
			}
			cfg.Log = log
			// The broker authenticates the demo devices against the
			// node's registry, so it starts after the node, but vward's
			// connection to it is built with the node: its address is
			// taken first.
			ln, err := net.Listen("tcp", mqttAddr)
			if err != nil {
				return fmt.Errorf("embedded broker: listen on %s: %w", mqttAddr, err)
			}
			defer ln.Close() // until the broker has it (it closes it too)
			cfg.MQTT = mqttsource.Config{URL: "tcp://" + ln.Addr().String(), Username: "vward", Password: servicePassword, ClientID: "vward-ingest"}
			n, err := node.Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer n.Close()
			seeded, err := demo.Seed(ctx, n.Registry, opts)
			if err != nil {
				return err
			}
			if err := n.LoadPatients(ctx); err != nil {
				return err
			}
			credFile, err := demo.WriteCredentials(cfg.DataDir, seeded)
			if err != nil {
				return err
			}
			b, err := broker.Start(broker.Config{
				Listener: ln, ServiceUser: "vward", ServicePassword: servicePassword, Devices: n.Registry,
			}, quiet())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "vward demo\n  board:       %s (sign in as %s / %s)\n  MQTT broker: %s (device credentials in %s)\n  readings:    %s\n",
				n.URL(), seeded.Clinician.Username, seeded.Clinician.Password, b.URL(), credFile, n.History.Describe())
			if opts.Simulate {
				fmt.Fprintf(out, "  simulating %d patients; Ctrl-C to stop\n", len(seeded.Devices))
			} else {
				fmt.Fprintf(out, "  %d demo devices wait for you to publish as them; Ctrl-C to stop\n", len(seeded.Devices))
			}
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return b.Run(gctx) })
			g.Go(func() error { return n.Run(gctx) })
			if opts.Simulate {
				fleet := demo.Fleet(seeded, b.URL(), log)
				g.Go(func() error { return fleet.Run(gctx) })
			}
			return g.Wait()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address the board listens on (env VWARD_HTTP_ADDR)")
	fs.StringVar(&mqttAddr, "mqtt-addr", "127.0.0.1:1883", "address the embedded MQTT broker listens on (env VWARD_MQTT_ADDR)")
	fs.StringVar(&cfg.DataDir, "data-dir", "vward-demo", "directory for the demo's SQL store and credentials; replaced at each start (env VWARD_DATA_DIR)")
	fs.IntVar(&opts.Patients, "devices", 12, "demo patients, each with one device (env VWARD_DEMO_DEVICES)")
	fs.BoolVar(&opts.Simulate, "simulate", true, "the demo devices publish simulated readings; false leaves them silent for you to publish as them")
	fs.Uint64Var(&opts.Seed, "seed", 1, "seed of the simulated patients: the same seed gives the same ward")
	influx.register(fs)
	return cmd
}

// quiet is the embedded broker's logger: a connect line per device would
// drown the demo's own output, so it logs warnings and errors only.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func randomToken() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make service password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
