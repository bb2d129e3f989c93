package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/simulator"
)

// simulateFlags are `vward simulate`'s settings.
type simulateFlags struct {
	mqttURL, credentials, prefix, kind, clock, mix, dump, start string
	devices                                                     int
	every, duration, ramp, skew, connectTimeout                 time.Duration
	rate, speed, offlinePerDay, dupRate, lateRate, badRate      float64
	seed                                                        uint64
	quiet                                                       bool
	tls                                                         mqttTLSFlags
}

func newSimulateCmd() *cobra.Command {
	var f simulateFlags
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Run a fleet of simulated patients' devices against an MQTT broker",
		Long: `Simulate connects a fleet of virtual devices to a broker, each with its own
MQTT connection and credentials, and publishes device protocol v1 readings of
virtual patients: personal baselines, circadian rhythm, measurement noise,
and a mix of trajectories (stable, sepsis, recovery, atrial fibrillation,
hypotension). docs/simulator.md describes the model.

Devices come from a credentials file (the shape of the demo's
demo-credentials.json: {"devices":[{"id","kind","secret","patient"}]}; a
device's kind, when given, is what it measures) or, for a
broker that allows anonymous clients, are numbered: --devices 1000 --prefix sim-
makes sim-00001 … sim-01000, each signing in with its id as username.

Time: --speed is simulated seconds per real second. With --clock simulated
(the default) measurement timestamps are in simulated time, and simulated time
ENDS at the present: a run of --duration 24h at --speed 720 takes two minutes
and stamps its readings over the past 24 hours, catching up with now as it
finishes, because vward refuses timestamps more than 2 minutes in the future.
With --clock real, timestamps are the real time of publishing and only the
physiology and schedules run faster. --duration 0 runs until interrupted (at
most 7 days), which needs --speed 1 or --clock real.

The same --seed gives the same readings; with --start as well, the same bytes
(see --dump). Progress goes to stderr: a refreshing line on a terminal, a
plain line every 5 seconds otherwise.

Examples:

  # 2,000 anonymous hubs for ten minutes, real time
  vward simulate --mqtt-url tcp://127.0.0.1:1883 --devices 2000 --duration 10m --clock real

  # the demo's devices: a day of ward life in two minutes
  vward simulate --credentials vward-demo/demo-credentials.json --mqtt-url tcp://127.0.0.1:1883 \
    --duration 24h --speed 720 --every 15m

  # 20,000 wearables at 2,000 messages per second in total, connections over a minute
  vward simulate --devices 20000 --kind wearable --rate 2000 --ramp 1m --duration 10m --clock real

  # no broker: write the messages to a recording (replay it with vward replay)
  vward simulate --devices 10 --duration 1h --speed 60 --start 2026-11-24T10:00:00Z --dump sim.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulate(cmd, f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.mqttURL, "mqtt-url", "tcp://127.0.0.1:1883", "MQTT broker URL: tcp://, mqtt://, ssl:// or mqtts:// (env VWARD_MQTT_URL)")
	f.tls.register(fs, "the devices'", false)
	fs.StringVar(&f.credentials, "credentials", "", `device credentials file {"devices":[{"id","kind","secret","patient"}]}; without it, --devices anonymous devices`)
	fs.IntVar(&f.devices, "devices", 100, "number of anonymous devices when there is no --credentials file")
	fs.StringVar(&f.prefix, "prefix", "sim-", "id prefix of anonymous devices")
	fs.StringVar(&f.kind, "kind", string(simulator.Hub), "device kind: hub, oximeter, bp_cuff, thermometer, wearable or gateway; a credentials file's own kind for a device wins")
	fs.DurationVar(&f.every, "every", 0, "interval between a device's measurements, in simulated time (default: the kind's, or derived from --rate)")
	fs.Float64Var(&f.rate, "rate", 0, "target publishes per second across the fleet: sets --every when it is not given, and caps the rate")
	fs.Float64Var(&f.speed, "speed", 1, "simulated seconds per real second")
	fs.DurationVar(&f.duration, "duration", 0, "simulated length of the run; 0 runs until interrupted")
	fs.StringVar(&f.clock, "clock", string(simulator.SimulatedClock), "measurement timestamps: simulated (ending at the present) or real")
	fs.DurationVar(&f.ramp, "ramp", 0, "spread the initial connections over this long")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", 30*time.Second, "how long, after the ramp, every device has to connect before the run starts without the rest")
	fs.Uint64Var(&f.seed, "seed", 1, "seed: the same seed gives the same patients and readings")
	fs.StringVar(&f.start, "start", "", "pin the clock's origin (RFC 3339) for byte-identical output with --dump; a live run starts then if it is still to come, else now")
	fs.StringVar(&f.mix, "mix", "sepsis=0.05,recovery=0.05,af=0.03,hypotension=0.02", "share of patients on each trajectory; the rest are stable")
	fs.Float64Var(&f.offlinePerDay, "offline-per-day", 0, "random offline spells per device per simulated day (buffered, then backfilled)")
	fs.Float64Var(&f.dupRate, "duplicate-rate", 0, "share of messages resent with the same msg_id")
	fs.Float64Var(&f.lateRate, "out-of-order-rate", 0, "share of messages delivered after their successor")
	fs.Float64Var(&f.badRate, "malformed-rate", 0, "share of messages garbled on purpose")
	fs.DurationVar(&f.skew, "clock-skew", 0, "offset added to every device timestamp (vward refuses more than 2m in the future)")
	fs.StringVar(&f.dump, "dump", "", "write the messages to this recording file instead of publishing (no broker needed)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress display")
	return cmd
}

func runSimulate(cmd *cobra.Command, f simulateFlags) error {
	log := logger(cmd)
	ctx := cmd.Context()
	sc, secrets, err := f.scenario()
	if err != nil {
		return err
	}
	plan, err := sc.Plan()
	if err != nil {
		return err
	}
	origin := time.Now()
	if f.start != "" {
		if origin, err = time.Parse(time.RFC3339Nano, f.start); err != nil {
			return fmt.Errorf("--start: %w", err)
		}
	}
	clock := sc.NewClock(origin, 0)
	if f.dump != "" {
		return dump(ctx, plan, clock, f.dump, cmd)
	}
	var ids []simulator.Identity
	for _, d := range plan.Devices() {
		ids = append(ids, simulator.Identity{Device: d.ID, Password: secrets[d.ID]})
	}
	tlsCfg, err := f.tls.config(f.mqttURL)
	if err != nil {
		return err
	}
	fleet, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: f.mqttURL, TLS: tlsCfg, Ramp: f.ramp, Rate: f.rate, ConnectTimeout: f.connectTimeout, Log: log}, ids)
	if err != nil {
		return err
	}
	defer fleet.Close()
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "simulating %d devices against %s: %s of %s clock at %g×, seed %d\n",
		len(ids), f.mqttURL, sc.Duration.D(), sc.Clock, sc.Speed, sc.Seed)
	pctx, stopProgress := context.WithCancel(ctx)
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if !f.quiet {
			(&simulator.Progress{W: stderr, Fleet: fleet}).Run(pctx)
		}
	}()
	defer func() { stopProgress(); <-progressDone }()
	connectErr := fleet.Connect(ctx)
	if connectErr != nil {
		if ctx.Err() != nil {
			return nil
		}
		// Those devices keep trying; the run goes on with the rest.
		log.Warn("not every device is connected", "err", connectErr)
	}
	if f.start == "" || origin.Before(time.Now()) {
		clock.Origin = time.Now()
	}
	var ds []simulator.DeviceSteps
	for _, s := range plan.Streams(clock) {
		ds = append(ds, simulator.DeviceSteps{Device: s.Device(), Steps: s})
	}
	playErr := fleet.Play(ctx, clock, ds)
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	unacked, _ := fleet.Drain(dctx, 30*time.Second)
	stopProgress()
	<-progressDone
	if playErr != nil && !errors.Is(playErr, context.Canceled) {
		return playErr
	}
	if r := fleet.Refusals(); len(r) > 0 {
		return fmt.Errorf("the broker refused %d devices, e.g. %s", len(r), r[0])
	}
	if unacked > 0 {
		return fmt.Errorf("%d messages were never acknowledged", unacked)
	}
	// A run whose devices never all connected did not do its job, even if
	// nothing it did send went unacknowledged.
	if n := fleet.Stats.Connected.Load(); connectErr != nil && n < int64(len(ids)) {
		return fmt.Errorf("%d of %d devices were not connected at the end of the run (%w); their readings were not sent", int64(len(ids))-n, len(ids), connectErr)
	}
	return nil
}

// scenario builds the fleet's scenario from the flags, and the devices'
// secrets.
func (f simulateFlags) scenario() (*simulator.Scenario, map[vward.DeviceID]string, error) {
	kind := simulator.DeviceKind(f.kind)
	if !slices.Contains(simulator.DeviceKinds, kind) {
		return nil, nil, fmt.Errorf("--kind %q is not one of %v", f.kind, simulator.DeviceKinds)
	}
	mode := simulator.ClockMode(f.clock)
	duration := f.duration
	if duration <= 0 {
		if f.speed != 1 && mode == simulator.SimulatedClock {
			return nil, nil, errors.New("a run until interrupted needs --speed 1 or --clock real: simulated time must end at the present, so it needs a --duration")
		}
		duration = 7 * 24 * time.Hour
	}
	mix, err := parseMix(f.mix)
	if err != nil {
		return nil, nil, err
	}
	type dev struct {
		id      vward.DeviceID
		patient vward.PatientID
		kind    simulator.DeviceKind
	}
	var devs []dev
	secrets := map[vward.DeviceID]string{}
	if f.credentials != "" {
		creds, err := simulator.LoadCredentials(f.credentials)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range creds.Devices {
			p := d.Patient
			if p == "" {
				p = vward.PatientID("patient-" + string(d.ID))
			}
			devs = append(devs, dev{d.ID, p, cmp.Or(d.Kind, kind)})
		}
		secrets = creds.Secrets()
	} else {
		if f.devices < 1 {
			return nil, nil, fmt.Errorf("--devices %d: need at least one", f.devices)
		}
		width := max(5, len(strconv.Itoa(f.devices)))
		for i := 1; i <= f.devices; i++ {
			id := fmt.Sprintf("%s%0*d", f.prefix, width, i)
			devs = append(devs, dev{vward.DeviceID(id), vward.PatientID("patient-" + id), kind})
		}
	}
	if len(devs) == 0 {
		return nil, nil, errors.New("no devices to simulate")
	}
	every := f.every
	if every <= 0 && f.rate > 0 {
		every = time.Duration(float64(len(devs)) * f.speed / f.rate * float64(time.Second))
		every = max(every, time.Second)
	}
	sc := &simulator.Scenario{
		Name: "simulate", Seed: f.seed, Duration: simulator.Duration(duration), Speed: f.speed, Clock: mode,
	}
	rng := rand.New(rand.NewPCG(f.seed, 0x5eed))
	byPatient := map[vward.PatientID]int{}
	for _, d := range devs {
		i, ok := byPatient[d.patient]
		if !ok {
			p := simulator.PatientSpec{ID: d.patient}
			if c := pick(mix, rng.Float64()); c != "" {
				onset := time.Duration(rng.Float64() * float64(duration) / 2)
				span := time.Duration((0.25 + rng.Float64()/4) * float64(duration))
				p.Trajectories = []simulator.Course{{Kind: c, Onset: simulator.Duration(onset), Span: simulator.Duration(span)}}
				if c == simulator.Recovery || c == simulator.AtrialFibrillation {
					p.Trajectories[0].Onset = 0
				}
			}
			sc.Patients = append(sc.Patients, p)
			i = len(sc.Patients) - 1
			byPatient[d.patient] = i
		}
		ds := simulator.DeviceSpec{ID: d.id, Kind: d.kind, Faults: simulator.Faults{
			OfflinePerDay: f.offlinePerDay, DuplicateRate: f.dupRate, OutOfOrderRate: f.lateRate,
			MalformedRate: f.badRate, ClockSkew: simulator.Duration(f.skew),
		}}
		if every > 0 {
			ds.Every = simulator.Duration(every)
		}
		sc.Patients[i].Devices = append(sc.Patients[i].Devices, ds)
	}
	return sc, secrets, nil
}

type share struct {
	kind simulator.Trajectory
	p    float64
}

func parseMix(s string) ([]share, error) {
	var out []share
	total := 0.0
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		p, err := strconv.ParseFloat(v, 64)
		kind := simulator.Trajectory(k)
		if !ok || err != nil || p < 0 || !slices.Contains(simulator.Trajectories, kind) {
			return nil, fmt.Errorf("--mix %q: want trajectory=share pairs like sepsis=0.05 with trajectories %v", part, simulator.Trajectories)
		}
		total += p
		out = append(out, share{kind, p})
	}
	if total > 1 {
		return nil, fmt.Errorf("--mix shares add up to %g, more than 1", total)
	}
	return out, nil
}

func pick(mix []share, u float64) simulator.Trajectory {
	for _, s := range mix {
		if u < s.p {
			return s.kind
		}
		u -= s.p
	}
	return ""
}

// dump writes every message of the run to a recording, in scenario-time
// order, without a broker. Offsets are real time at the clock's speed, so
// `vward replay FILE` plays it at the pace the live run would have had.
func dump(ctx context.Context, plan *simulator.Plan, clock simulator.Clock, file string, cmd *cobra.Command) error {
	out, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", file, err)
	}
	defer out.Close()
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	if err := enc.Encode(simulator.RecordingHeader{Version: 1, Started: clock.Origin.UTC(), Topics: []string{vward.ReadingsFilter}}); err != nil {
		return err
	}
	streams := plan.Streams(clock)
	steps := make([]simulator.Steps, len(streams))
	for i, s := range streams {
		steps[i] = s
	}
	n := 0
	var werr error
	simulator.Merge(steps, func(_ int, st simulator.Step) bool {
		if ctx.Err() != nil {
			return false
		}
		if st.Op != simulator.Publish {
			return true
		}
		topic := st.Topic
		if topic == "" {
			topic = vward.ReadingsTopic(st.Device)
		}
		if werr = enc.Encode(simulator.NewRecord(clock.Due(st.At).Sub(clock.Origin), topic, st.Payload)); werr != nil {
			return false
		}
		n++
		return true
	})
	if werr == nil {
		werr = w.Flush()
	}
	if werr != nil {
		return fmt.Errorf("write %s: %w", file, werr)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d messages to %s\n", n, file)
	return ctx.Err()
}
