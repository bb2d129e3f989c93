package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vward/vward"
	"github.com/vward/vward/boardclient"
	"github.com/vward/vward/news2"
	"github.com/vward/vward/simulator"
)

type replayFlags struct {
	mqttURL, boardURL, username, password, credentials string
	record, mqttUser, mqttPassword                     string
	topics                                             []string
	expect, dryRun, retime, quiet, register            bool
	registry                                           registryOpts
	speed, rate                                        float64
	ramp, grace, duration                              time.Duration
}

func newReplayCmd() *cobra.Command {
	var f replayFlags
	cmd := &cobra.Command{
		Use:   "replay FILE | replay --record FILE --duration D",
		Short: "Replay a scenario or a recording against vward, and check the alerts the board shows",
		Long: `Replay plays FILE against a running vward's broker. FILE is either a scenario
(simulator/scenarios/*.json; docs/simulator.md has the format) or a recording
made with --record or vward simulate --dump.

With --expect, replay signs in to the board as a clinician (--username,
--password), watches its live stream while the scenario runs, and checks the
scenario's expected alerts: each patient must reach each expected NEWS2 risk
band (or alert) within its window of scenario time, and no patient may reach
medium or above unless an expectation or allowance covers it. It prints a
report of what was met, missing, late, early or unexpected, and exits 1 if
anything failed. Scenario time is simulated time since the scenario started;
an event's time is when it reached the board, so at --speed 3600 every 100 ms
the path takes counts 6 simulated minutes.

A scenario's "notifications" are checked in vward's delivery logs after the
run: each expected tier, recipient and channel must have been sent within its
window of the alert's raise, on vward's own clock, which runs in real time
whatever the speed. Replay waits for them up to the longest window. A
scenario's "ack_timeout" is the escalation timer vward must run with for them
to hold (vward serve --ack-timeout).

Devices sign in with their secrets from --credentials (the shape of the
demo's demo-credentials.json); a device not in the file signs in with its id
and no password, for a broker that allows that.

--register first makes the scenario's wards, patients (with their SpO2
scale) and devices known to the vward whose store is --data-dir, giving each
device a new secret, and writes the secrets to --credentials if given. A
running vward notices within seconds; behind Mosquitto, export the password
file again (vward devices export-mosquitto) and reload the broker before the
devices can sign in.

--dry-run plays the scenario without a broker or vward, scoring what vward
would accept as its monitor does, and checks the expectations: use it to set
a scenario's windows. It also prints when each patient's noise-free
physiology first reaches each band.

--record captures a live stream: it subscribes to every device's readings as
a service account (--mqtt-username, --mqtt-password: vward's own account
can read them) for --duration and writes JSON lines (offset, topic, payload).
Replaying a recording publishes each message as its device at its original
offset divided by --speed; --retime shifts the timestamps inside so that the
readings look current to vward.

Examples:

  vward replay simulator/scenarios/overnight-sepsis.json --dry-run
  vward replay simulator/scenarios/overnight-sepsis.json --expect \
    --mqtt-url tcp://127.0.0.1:1883 --board-url http://127.0.0.1:8080 \
    --username nurse --password "$PW" --credentials creds.json
  vward replay --record night.jsonl --mqtt-url tcp://127.0.0.1:1883 \
    --mqtt-username vward --mqtt-password "$SVC" --duration 10m
  vward replay night.jsonl --speed 10 --retime --credentials creds.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.record != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.record != "" {
				return runRecord(cmd, f)
			}
			return runReplay(cmd, f, args[0])
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.mqttURL, "mqtt-url", "tcp://127.0.0.1:1883", "MQTT broker URL (env VWARD_MQTT_URL)")
	fs.StringVar(&f.boardURL, "board-url", "http://127.0.0.1:8080", "the board's URL, for --expect (env VWARD_BOARD_URL)")
	fs.StringVar(&f.username, "username", "", "clinician who watches the board, for --expect (env VWARD_BOARD_USERNAME)")
	fs.StringVar(&f.password, "password", "", "the clinician's password (env VWARD_BOARD_PASSWORD)")
	fs.StringVar(&f.credentials, "credentials", "", `device credentials file {"devices":[{"id","secret","patient"}]}`)
	fs.BoolVar(&f.expect, "expect", false, "watch the board and check the scenario's expected alerts; exit 1 if any is missing, late, early or unexpected")
	fs.BoolVar(&f.dryRun, "dry-run", false, "play the scenario without a broker or vward and check its expectations")
	fs.BoolVar(&f.register, "register", false, "register the scenario's wards, patients and devices in the vward store at --data-dir first")
	f.registry.register(fs, true, false)
	fs.Float64Var(&f.speed, "speed", 0, "simulated seconds per real second (default: the scenario's; 1 for a recording)")
	fs.DurationVar(&f.ramp, "ramp", 0, "spread the devices' connections over this long")
	fs.Float64Var(&f.rate, "rate", 0, "cap on publishes per second across the fleet")
	fs.DurationVar(&f.grace, "grace", 3*time.Second, "how long to keep watching the board after the last message")
	fs.BoolVar(&f.retime, "retime", false, "recordings: shift the timestamps in the payloads to the replay's time")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress display")
	fs.StringVar(&f.record, "record", "", "record the broker's device readings to this file instead of replaying")
	fs.DurationVar(&f.duration, "duration", 0, "with --record: how long to record (0: until interrupted)")
	fs.StringVar(&f.mqttUser, "mqtt-username", "", "with --record: a service account that may read every device's readings (env VWARD_MQTT_USERNAME)")
	fs.StringVar(&f.mqttPassword, "mqtt-password", "", "with --record: its password (env VWARD_MQTT_PASSWORD)")
	fs.StringSliceVar(&f.topics, "topic", []string{vward.ReadingsFilter}, "with --record: topic filters to record")
	return cmd
}

func runRecord(cmd *cobra.Command, f replayFlags) error {
	// A recording holds patients' readings: readable by its owner only.
	out, err := os.OpenFile(f.record, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", f.record, err)
	}
	defer out.Close()
	fmt.Fprintf(cmd.ErrOrStderr(), "recording %v from %s to %s", f.topics, f.mqttURL, f.record)
	if f.duration > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), " for %s", f.duration)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "; Ctrl-C to stop")
	n, err := simulator.RecordStream(cmd.Context(), out, simulator.RecordOptions{
		MQTTURL: f.mqttURL, Username: f.mqttUser, Password: f.mqttPassword, Topics: f.topics,
		Duration: f.duration, Log: logger(cmd),
	})
	if err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.record, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "recorded %d messages\n", n)
	return nil
}

func runReplay(cmd *cobra.Command, f replayFlags, file string) error {
	ctx := cmd.Context()
	log := logger(cmd)
	secrets := map[vward.DeviceID]string{}
	if f.credentials != "" {
		c, err := simulator.LoadCredentials(f.credentials)
		if err != nil {
			return err
		}
		secrets = c.Secrets()
	}
	var progress io.Writer
	if !f.quiet {
		progress = cmd.ErrOrStderr()
	}
	if simulator.IsRecording(file) {
		if f.expect || f.dryRun {
			return errors.New("a recording has no expectations: --expect and --dry-run apply to scenario files")
		}
		rec, err := simulator.LoadRecording(file)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "replaying %d messages of %d devices (%s recorded) at %g×\n",
			len(rec.Records), len(rec.Devices()), rec.Span().Round(time.Millisecond), max(f.speed, 1))
		st, err := simulator.PlayRecording(ctx, rec, simulator.PlayOptions{
			MQTTURL: f.mqttURL, Credentials: secrets, Speed: f.speed, Retime: f.retime,
			Ramp: f.ramp, Rate: f.rate, Progress: progress, Log: log,
		})
		if st != nil {
			fmt.Fprintf(cmd.OutOrStdout(), "published %d, acknowledged %d, errors %d\n", st.Published.Load(), st.Acked.Load(), st.Errors())
		}
		return err
	}
	sc, err := simulator.Load(file)
	if err != nil {
		return err
	}
	if f.dryRun {
		return dryRun(cmd, sc, f.speed)
	}
	if f.register {
		if secrets, err = register(cmd, f, sc); err != nil {
			return err
		}
	}
	opts := simulator.RunOptions{
		MQTTURL: f.mqttURL, Credentials: secrets, Speed: f.speed, Ramp: f.ramp, Rate: f.rate,
		Grace: f.grace, Progress: progress, Log: log,
	}
	if f.expect {
		if f.username == "" || f.password == "" {
			return errors.New("--expect watches the board as a clinician: give --username and --password (or VWARD_BOARD_USERNAME and VWARD_BOARD_PASSWORD)")
		}
		opts.Board = &boardclient.Login{URL: f.boardURL, Username: f.username, Password: f.password}
	}
	rep, err := simulator.RunScenario(ctx, sc, opts)
	if err != nil {
		return err
	}
	if _, err := rep.WriteTo(cmd.OutOrStdout()); err != nil {
		return err
	}
	if !rep.Passed() {
		return fmt.Errorf("scenario %q failed", sc.Name)
	}
	return nil
}

// register puts the scenario's patients and devices in the registry and
// returns the devices' new secrets.
func register(cmd *cobra.Command, f replayFlags, sc *simulator.Scenario) (map[vward.DeviceID]string, error) {
	plan, err := sc.Plan()
	if err != nil {
		return nil, err
	}
	reg, ctx, done, err := f.registry.open(cmd.Context(), false)
	if err != nil {
		return nil, err
	}
	defer done()
	creds, err := simulator.Register(ctx, reg, plan, time.Now())
	if err != nil {
		return nil, err
	}
	if f.credentials != "" {
		if err := writeCredentials(f.credentials, creds); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "registered %d patients and %d devices of %q", len(plan.Patients), len(creds.Devices), sc.Name)
	if f.credentials != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "; secrets in %s", f.credentials)
	}
	fmt.Fprintln(cmd.ErrOrStderr())
	// A running vward checks its registry every few seconds.
	select {
	case <-time.After(3 * time.Second):
	case <-cmd.Context().Done():
		return nil, cmd.Context().Err()
	}
	return creds.Secrets(), nil
}

func writeCredentials(file string, c *simulator.CredentialsFile) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	// Device secrets: readable by their owner only.
	if err := os.WriteFile(file, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

func dryRun(cmd *cobra.Command, sc *simulator.Scenario, speed float64) error {
	plan, err := sc.Plan()
	if err != nil {
		return err
	}
	clock := sc.NewClock(time.Now(), speed)
	obs, st := simulator.DryRun(plan, clock)
	rep := simulator.EvaluateDryRun(plan, obs)
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "dry run: %d messages (%d backfilled, %d duplicates, %d malformed), %d readings; %d lost to full buffers, %d stranded offline\n",
		st.Messages, st.Backfilled, st.Duplicates, st.Malformed, st.Readings, st.Dropped, st.Stranded)
	fmt.Fprintln(out, "to register (ward, patient, SpO2 scale: devices):")
	for _, p := range plan.Patients {
		fmt.Fprintf(out, "  %s  %s  scale %d:", p.Ward, p.ID, p.SpO2Scale)
		for _, d := range p.Devices {
			fmt.Fprintf(out, " %s (%s)", d.ID, d.Kind)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "noise-free physiology first reaches (scenario time):")
	bands := simulator.Bands(plan, time.Minute)
	for _, p := range plan.Patients {
		b := bands[p.ID]
		if len(b) == 0 {
			continue
		}
		fmt.Fprintf(out, "  %-16s", p.ID)
		for _, r := range []news2.Risk{news2.LowMedium, news2.Medium, news2.High} {
			at := "–"
			if d, ok := b[r]; ok {
				at = d.String()
			}
			fmt.Fprintf(out, "  %s %-9s", r, at)
		}
		fmt.Fprintln(out)
	}
	// Care plan rules read readings, not the noise-free physiology: when
	// they first hold in the dry run is the guide for a care_plan window.
	header := false
	for _, o := range obs {
		if o.Source != simulator.FromAlert || o.Condition != simulator.CarePlanCondition {
			continue
		}
		if !header {
			fmt.Fprintln(out, "care plan rules first hold on the dry run's readings (scenario time):")
			header = true
		}
		fmt.Fprintf(out, "  %-16s  %s %s at %s\n", o.Patient, o.Risk, o.Detail, o.At.Round(time.Minute))
	}
	if _, err := rep.WriteTo(out); err != nil {
		return err
	}
	if !rep.Passed() {
		return fmt.Errorf("scenario %q fails its expectations in a dry run", sc.Name)
	}
	return nil
}
