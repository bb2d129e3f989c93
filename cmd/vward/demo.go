package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/vward/vward/broker"
	"github.com/vward/vward/internal/demo"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/mqttsource"
	"github.com/vward/vward/simulator"
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
their devices, a simulated fleet publishing through the broker, a virtual
nurse on the telephone, and the board.

Each patient has the devices a virtual ward lends: a pulse oximeter or, for
one in three, a respiratory patch; a blood pressure cuff, but for one in
four; a thermometer. No device reports consciousness (ACVPU) or oxygen, so
every NEWS2 is partial until a person completes it: the virtual nurse
(nurse.demo) telephones one patient every --nurse-every, the one who has gone
longest without a full score, and enters ACVPU, oxygen or air, and the
respiratory rate when no patch measures it. You can do the same on the
patient view.

The demo starts afresh each time: it replaces the registry in --data-dir and
writes the demo devices' credentials to <data-dir>/demo-credentials.json, so
that you can publish as a demo device yourself, for example:

  mosquitto_pub -h 127.0.0.1 -p 1883 -u ox-001 -P <secret> -q 1 \
    -t vward/v1/devices/ox-001/readings \
    -m '{"msg_id":"m1","ts":"2026-11-24T10:00:00Z","readings":[{"type":"spo2","value":91}]}'

With --simulate=false the demo devices exist but stay silent, and there is
no virtual nurse.
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
			// The fleet's clock starts once its devices are connected, and
			// no earlier than origin: a moment from now, so that the
			// virtual nurse reads the patients' state at the fleet's times.
			origin := time.Now().Add(2 * time.Second)
			var nurse *demo.Nurse
			if opts.Simulate && opts.NurseEvery > 0 {
				if nurse, err = demo.NewNurse(seeded, n.Monitor, n.Observations, origin, log); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "vward demo\n  board:       %s (sign in as %s / %s)\n  MQTT broker: %s (device credentials in %s)\n  readings:    %s\n",
				n.URL(), seeded.Clinician.Username, seeded.Clinician.Password, b.URL(), credFile, n.History.Describe())
			if opts.Simulate {
				fmt.Fprintf(out, "  simulating %d patients with %d devices (%s); Ctrl-C to stop\n", seeded.Options.Patients, len(seeded.Devices), kitSummary(seeded))
			} else {
				fmt.Fprintf(out, "  %d demo devices of %d patients wait for you to publish as them; Ctrl-C to stop\n", len(seeded.Devices), seeded.Options.Patients)
			}
			fmt.Fprintf(out, "\nNo device reports consciousness (ACVPU) or oxygen: each NEWS2 is partial, and its row\nsays what it needs, until someone completes it.\n")
			if nurse != nil {
				fmt.Fprintf(out, "  A virtual nurse, %s, telephones one patient every %s, whoever has gone\n  longest without a full NEWS2, and enters ACVPU, oxygen or air and, without a patch,\n  the respiratory rate.\n", demo.NurseActor, opts.NurseEvery)
			}
			fmt.Fprintf(out, "  To complete one yourself: open a row that says \"needs\", and in Enter observations\n  choose the ACVPU, tick On oxygen or leave it for air, type the respiratory rate if asked\n  for, keep the source Telephone and press Enter. The row completes at once.\n")
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return b.Run(gctx) })
			g.Go(func() error { return n.Run(gctx) })
			if opts.Simulate {
				fleet := demo.Fleet(seeded, b.URL(), origin, log)
				g.Go(func() error { return fleet.Run(gctx) })
			}
			if nurse != nil {
				g.Go(func() error { return nurse.Run(gctx) })
			}
			return g.Wait()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address the board listens on (env VWARD_HTTP_ADDR)")
	fs.StringVar(&mqttAddr, "mqtt-addr", "127.0.0.1:1883", "address the embedded MQTT broker listens on (env VWARD_MQTT_ADDR)")
	fs.StringVar(&cfg.DataDir, "data-dir", "vward-demo", "directory for the demo's SQL store and credentials; replaced at each start (env VWARD_DATA_DIR)")
	fs.IntVar(&opts.Patients, "devices", 12, "demo patients, each with their own devices (env VWARD_DEMO_DEVICES)")
	fs.BoolVar(&opts.Simulate, "simulate", true, "the demo devices publish simulated readings and a virtual nurse telephones; false leaves them silent for you to publish as them")
	fs.DurationVar(&opts.NurseEvery, "nurse-every", 40*time.Second, "how often the virtual nurse telephones a patient; 0: no virtual nurse")
	fs.Uint64Var(&opts.Seed, "seed", 1, "seed of the simulated patients: the same seed gives the same ward")
	influx.register(fs)
	return cmd
}

// kitSummary counts the demo's devices by kind: "12 oximeters, …".
func kitSummary(s demo.Seeded) string {
	count := map[simulator.DeviceKind]int{}
	for _, d := range s.Devices {
		count[d.Kind]++
	}
	var parts []string
	for _, k := range []struct {
		kind       simulator.DeviceKind
		one, other string
	}{
		{simulator.Oximeter, "pulse oximeter", "pulse oximeters"}, {simulator.Wearable, "respiratory patch", "respiratory patches"},
		{simulator.BPCuff, "blood pressure cuff", "blood pressure cuffs"}, {simulator.Thermometer, "thermometer", "thermometers"},
	} {
		switch c := count[k.kind]; c {
		case 0:
		case 1:
			parts = append(parts, "1 "+k.one)
		default:
			parts = append(parts, fmt.Sprintf("%d %s", c, k.other))
		}
	}
	return strings.Join(parts, ", ")
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
