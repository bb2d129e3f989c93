// Package bench is `vward bench`: it drives a numbered fleet of simulated
// devices through a real broker, vward and InfluxDB at a target rate and
// reports throughput, loss, duplicates, publish→board and publish→stored
// latency, vward's CPU and memory, and — in the same run — the machine's
// ceilings: the broker's raw QoS 1 publish→subscribe rate and InfluxDB's raw
// batched write rate (docs/performance.md).
package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/boardclient"
	"github.com/vward/vward/history"
	"github.com/vward/vward/internal/node"
	"github.com/vward/vward/internal/services"
	"github.com/vward/vward/journal"
	"github.com/vward/vward/mqttsource"
	"github.com/vward/vward/simulator"
)

// Config is one bench run. With MQTTURL empty the bench starts Mosquitto,
// InfluxDB and vward itself; otherwise it drives the vward at BoardURL.
type Config struct {
	Rate     float64       // messages per second across the fleet
	Devices  int           // each publishes every Devices/Rate seconds
	Readings int           // readings per message
	Duration time.Duration // publishing time
	Prefix   string        // device ids are Prefix00001…; patients Prefixp00001…
	Ward     string
	// Wards spreads the patients over this many wards, Ward-001…, patient
	// i in ward i mod Wards, as a health system's virtual wards are many
	// of tens of beds each; 0 or 1 is one ward, Ward.
	Wards int
	// BoardWards is how many of those wards (the first ones) the bench's
	// clinician holds, and so watches on the board: publish→board latency
	// is measured on their patients' messages. 0 is every ward: one board
	// client seeing every patient, the worst case for vward's board.
	BoardWards int

	// A running vward: its broker, InfluxDB and board, and a clinician of
	// Ward. DataDir, when set, is its data dir: the bench registers its
	// ward, clinician, patients and devices there, and the node picks them
	// up within node.RegistryWatchInterval. Without it they must exist.
	MQTTURL, InfluxURL, InfluxBucket, BoardURL string
	Username, Password                         string
	DataDir                                    string

	// VwardCommand runs a self-started vward as a child process (e.g.
	// {"/path/to/vward", "serve"}), so that its CPU and memory are its own;
	// nil runs it inside this process.
	VwardCommand []string
	// WorkDir holds the self-started services' data; "" is a temp dir,
	// removed afterwards unless Keep.
	WorkDir string
	Keep    bool
	// BrokerMaxInflight is the self-started Mosquitto's
	// max_inflight_messages: 0 is production's (services.DefaultMaxInflight),
	// negative Mosquitto's no limit.
	BrokerMaxInflight int
	// BrokerAutosave is the self-started Mosquitto's autosave_interval in
	// seconds; 0 means 30, production's (deploy/mosquitto/mosquitto.conf).
	BrokerAutosave int
	// BrokerNice is the self-started Mosquitto's scheduling niceness: below
	// 0 (which takes root) the broker comes first when the machine is
	// short of CPU, as docs/operator.md advises for a small shared node.
	// 0 leaves it as started.
	BrokerNice int
	// InfluxdNice is the self-started influxd's niceness, every thread's;
	// 0 leaves it. Above 0 the store gives way to the others when the
	// machine is short, which at step 2 left it behind (docs/design/broker-first-on-a-small-node.md).
	InfluxdNice int
	// VwardArgs are extra `vward serve` flags for the self-started child
	// (e.g. --mqtt-connections 2).
	VwardArgs []string
	// VwardEnv is extra environment (KEY=VALUE) for the self-started child,
	// e.g. GOMAXPROCS=1 as docs/operator.md suggests for a small node.
	VwardEnv []string
	// InfluxdEnv is extra environment for the self-started influxd, after
	// SelfStartedInfluxdEnv (so it can override it).
	InfluxdEnv []string

	// Ceilings measures the broker's and InfluxDB's raw rates for
	// CeilingDuration each before the run.
	Ceilings        bool
	CeilingDuration time.Duration
	// CeilingDevices is how many device connections publish in the
	// broker's ceiling: 0 is the run's Devices, the fleet being measured.
	CeilingDevices int
	// Verify checks every msg_id in InfluxDB ("full"), or per-device counts
	// of distinct msg_ids ("counts", enough for millions of messages);
	// "auto" picks full up to 200,000 messages.
	Verify string
	// DrainTimeout bounds the wait, after publishing, for vward to store
	// everything.
	DrainTimeout time.Duration

	// HistoryOutage freezes the self-started influxd (SIGSTOP, so that
	// connections hang as in a real outage rather than being refused) for
	// this long, HistoryOutageAfter into publishing; 0 is no outage.
	HistoryOutage time.Duration
	// HistoryOutageAfter is the warm-up before the outage; 0 is 30s or a
	// fifth of Duration, whichever is less.
	HistoryOutageAfter time.Duration

	// CPUProfile, when set, writes a CPU profile of vward over the
	// publishing window: of the child `vward serve` to CPUProfile and of
	// this process (fleet, board client) to CPUProfile+".bench"; with the
	// in-process vward, of this process, vward included, to CPUProfile.
	CPUProfile string
	// HeapProfile, when set, saves the child vward's heap profile a minute
	// into publishing (HeapProfile+".early") and at its end, for a soak:
	// `go tool pprof -base heap.pprof.early vward heap.pprof` shows growth.
	HeapProfile string

	Progress io.Writer // nil: no progress display
	Log      *slog.Logger
}

// Result is the run's summary, as `vward bench --json` prints it.
type Result struct {
	Mode       string  `json:"mode"`
	Devices    int     `json:"devices"`
	Readings   int     `json:"readings_per_msg"`
	TargetRate float64 `json:"target_msgs_per_s"`
	DurationS  float64 `json:"duration_s"`

	// Wards and BoardWards as run; BoardPatients is how many patients the
	// board client watched, whose messages the latency figures cover.
	Wards         int `json:"wards"`
	BoardWards    int `json:"board_wards"`
	BoardPatients int `json:"board_patients"`

	Published  int64 `json:"published"`
	Stored     int64 `json:"stored"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	// LostIDs names up to 20 lost msg_ids.
	LostIDs []string `json:"lost_ids,omitempty"`
	Verify  string   `json:"verify"`

	// MsgsPerS is messages stored per second, from the first publish
	// until the last message was stored (drain included).
	MsgsPerS     float64 `json:"msgs_per_s"`
	ReadingsPerS float64 `json:"readings_per_s"`
	// PublishedPerS is what the fleet managed to offer.
	PublishedPerS float64 `json:"published_msgs_per_s"`
	DrainS        float64 `json:"drain_s"`

	// LatencyMS is publish→board: from the time a message was due to be
	// published (its ts) to the board event showing it.
	LatencyMS Percentiles `json:"latency_ms"`
	// StoreLatencyMS is publish→stored, sampled: a message every
	// half-second, polled for in InfluxDB from its due time until found.
	StoreLatencyMS Percentiles `json:"store_latency_ms"`
	BoardEvents    int64       `json:"board_events"`
	BoardAlerts    int64       `json:"board_alerts"`
	FleetLagMaxMS  float64     `json:"fleet_lag_max_ms"`

	Ceiling struct {
		BrokerMsgsPerS float64 `json:"broker_msgs_per_s"`
		// BrokerDevices is how many device connections published in the
		// broker's ceiling: the run's own fleet unless --ceiling-devices.
		BrokerDevices    int     `json:"broker_devices"`
		InfluxPointsPerS float64 `json:"influx_points_per_s"`
	} `json:"ceiling"`
	// OfCeiling is vward's rate as a share of each ceiling (messages of the
	// broker's; points, a message each, of InfluxDB's) and of the lower.
	OfCeiling struct {
		Broker float64 `json:"broker"`
		Influx float64 `json:"influx"`
		Lower  float64 `json:"lower"`
	} `json:"of_ceiling"`

	Vward struct {
		Measured   string  `json:"measured"` // what the CPU and RSS figures cover
		CPUSeconds float64 `json:"cpu_s"`
		CPUPercent float64 `json:"cpu_percent"` // of one core, over the publishing window
		RSSStartMB float64 `json:"rss_start_mb"`
		RSSEndMB   float64 `json:"rss_end_mb"`
		PeakRSSMB  float64 `json:"peak_rss_mb"`
		// RSSEachMinuteMB is vward's RSS at the end of each whole minute of
		// publishing: flat over a soak, or not.
		RSSEachMinuteMB []float64 `json:"rss_each_minute_mb,omitempty"`
	} `json:"vward"`
	Services map[string]float64 `json:"services_cpu_percent,omitempty"`
	// BenchCPUPercent is this process (fleet, board client, samplers;
	// vward too when in-process), of one core over the publishing window.
	BenchCPUPercent float64 `json:"bench_cpu_percent"`
	// Settings records the tuning a run had, to reproduce it.
	Settings struct {
		BenchGOMAXPROCS int      `json:"bench_gomaxprocs"`
		VwardEnv        []string `json:"vward_env,omitempty"`
		InfluxdEnv      []string `json:"influxd_env,omitempty"`
		// BrokerNice is the self-started Mosquitto's niceness as read back
		// from /proc, when it is not 0.
		BrokerNice int `json:"broker_nice,omitempty"`
		// InfluxdNice is the self-started influxd's, every thread's.
		InfluxdNice int `json:"influxd_nice,omitempty"`
	} `json:"settings"`
	// Versions says which broker and store the run measured: their CPU per
	// message differs between releases (Mosquitto 2.0.11 and 2.1.2,
	// docs/design/mosquitto-2.1.md). The broker's is known when the
	// bench started it.
	Versions struct {
		Broker string `json:"broker,omitempty"` // "Mosquitto 2.1.2"
		Store  string `json:"store,omitempty"`  // "InfluxDB 1.8.10"
	} `json:"versions"`
	Machine Machine `json:"machine"`

	// Outage is what a run with a history outage saw during and after it.
	Outage *Outage `json:"outage,omitempty"`
	// Journal is vward's journal over the run, from its /metrics; absent
	// when vward runs without one.
	Journal *JournalStats `json:"journal,omitempty"`
}

// SelfStartedInfluxdEnv is the self-started influxd's environment beyond
// ours: docs/operator.md's GOGC for an influxd sharing a small node.
var SelfStartedInfluxdEnv = []string{"GOGC=200"}

// Validate reports a configuration that cannot be run as given, before
// anything is started: an error of kind vward.ErrInvalid.
func (c Config) Validate() error { return c.defaults() }

func (c *Config) defaults() error {
	if c.Readings <= 0 {
		c.Readings = 4
	}
	if c.Devices <= 0 {
		c.Devices = 1000
	}
	if c.Rate <= 0 {
		return vward.Errorf(vward.ErrInvalid, "--rate %g: want above 0", c.Rate)
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.Prefix == "" {
		c.Prefix = "bench-"
	}
	if c.Ward == "" {
		c.Ward = "bench"
	}
	c.Wards = max(c.Wards, 1)
	if c.BoardWards <= 0 || c.BoardWards > c.Wards {
		c.BoardWards = c.Wards
	}
	if c.Username == "" {
		c.Username = "bench-clinician"
	}
	if c.Password == "" {
		c.Password = "bench password " + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if c.InfluxBucket == "" {
		c.InfluxBucket = "vward/autogen"
	}
	if c.CeilingDuration <= 0 {
		c.CeilingDuration = 10 * time.Second
	}
	if c.Verify == "" {
		c.Verify = "auto"
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 2 * time.Minute
	}
	if err := c.outageDefaults(); err != nil {
		return err
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// env is what a run drives: a broker, an InfluxDB and a vward.
type env struct {
	mqttURL, influxURL, bucket, board string
	pid                               int      // vward's process, for /proc
	measured                          string   // what pid's figures cover
	pprof                             string   // the child vward's pprof base URL, if any
	vwardEnv, influxdEnv              []string // what the self-started ones were given
	brokerNice, influxdNice           int      // the self-started broker's and influxd's niceness, read back
	services                          map[string]*services.Process
	stop                              func()
}

// Run performs one bench run.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	if err := cfg.defaults(); err != nil {
		return res, err
	}
	res.Devices, res.Readings, res.TargetRate, res.DurationS = cfg.Devices, cfg.Readings, cfg.Rate, cfg.Duration.Seconds()
	res.Wards, res.BoardWards, res.BoardPatients = cfg.Wards, cfg.BoardWards, cfg.boardPatients()
	res.Machine = describeMachine()
	res.Settings.BenchGOMAXPROCS = runtime.GOMAXPROCS(0)
	// Progress comes from the run's loop and from the monitor's goroutine.
	var progressMu sync.Mutex
	progress := func(format string, a ...any) {
		if cfg.Progress != nil {
			progressMu.Lock()
			defer progressMu.Unlock()
			fmt.Fprintf(cfg.Progress, format+"\n", a...)
		}
	}

	var e *env
	var devs []device
	var err error
	if cfg.MQTTURL == "" {
		res.Mode = "self-started"
		e, devs, err = selfStart(ctx, cfg, progress)
	} else {
		res.Mode = "external"
		e, devs, err = external(ctx, cfg)
	}
	if err != nil {
		return res, err
	}
	defer e.stop()
	res.Vward.Measured = e.measured
	res.Settings.VwardEnv, res.Settings.InfluxdEnv = e.vwardEnv, e.influxdEnv
	res.Settings.BrokerNice, res.Settings.InfluxdNice = e.brokerNice, e.influxdNice
	res.Versions.Broker, res.Versions.Store = versions(ctx, e, cfg.Log)

	if cfg.Ceilings {
		progress("ceiling: broker QoS 1 publish→subscribe for %s…", cfg.CeilingDuration)
		res.Ceiling.BrokerDevices = cmp.Or(cfg.CeilingDevices, cfg.Devices)
		if res.Ceiling.BrokerMsgsPerS, err = brokerCeiling(ctx, e.mqttURL, res.Ceiling.BrokerDevices, cfg.Readings, cfg.CeilingDuration, cfg.Log); err != nil {
			return res, fmt.Errorf("broker ceiling: %w", err)
		}
		res.Ceiling.BrokerMsgsPerS = round(res.Ceiling.BrokerMsgsPerS, 0)
		progress("ceiling: broker %.0f msgs/s; InfluxDB batched writes for %s…", res.Ceiling.BrokerMsgsPerS, cfg.CeilingDuration)
		if res.Ceiling.InfluxPointsPerS, err = influxCeiling(ctx, e.influxURL, e.bucket, 2, 5000, cfg.Readings, max(cfg.Devices, 1000), cfg.CeilingDuration); err != nil {
			return res, fmt.Errorf("influx ceiling: %w", err)
		}
		res.Ceiling.InfluxPointsPerS = round(res.Ceiling.InfluxPointsPerS, 0)
		progress("ceiling: InfluxDB %.0f points/s", res.Ceiling.InfluxPointsPerS)
	}

	if err := drive(ctx, cfg, e, devs, &res, progress); err != nil {
		return res, err
	}
	if res.Ceiling.BrokerMsgsPerS > 0 && res.Ceiling.InfluxPointsPerS > 0 {
		res.OfCeiling.Broker = round(res.MsgsPerS/res.Ceiling.BrokerMsgsPerS, 3)
		// A message is one point (its readings share a time).
		res.OfCeiling.Influx = round(res.MsgsPerS/res.Ceiling.InfluxPointsPerS, 3)
		lower := min(res.Ceiling.BrokerMsgsPerS, res.Ceiling.InfluxPointsPerS)
		res.OfCeiling.Lower = round(res.MsgsPerS/lower, 3)
	}
	return res, nil
}

// versions names the run's broker and store, as far as they say: a
// version that cannot be read is logged and left out, not a failed run.
func versions(ctx context.Context, e *env, log *slog.Logger) (broker, store string) {
	if p := e.services["mosquitto"]; p != nil {
		if v, err := services.MosquittoVersion(ctx, p.Bin); err != nil {
			log.Warn("bench: the broker's version", "err", err)
		} else {
			broker = "Mosquitto " + v
		}
	}
	var influxd string
	if p := e.services["influxd"]; p != nil {
		influxd = p.Bin
	}
	if v, err := services.InfluxVersion(ctx, e.influxURL, influxd); err != nil {
		log.Warn("bench: the store's version", "err", err)
	} else {
		store = "InfluxDB " + v
	}
	return broker, store
}

// selfStart starts Mosquitto and InfluxDB from PATH/$VWARD_TOOLS_BIN/GOPATH
// bin on free loopback ports, seeds a registry and starts vward on them.
func selfStart(ctx context.Context, cfg Config, progress func(string, ...any)) (*env, []device, error) {
	dir := cfg.WorkDir
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vward-bench-"); err != nil {
			return nil, nil, err
		}
	}
	var cleanups []func()
	e := &env{services: map[string]*services.Process{}}
	e.stop = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		if cfg.WorkDir == "" && !cfg.Keep {
			os.RemoveAll(dir)
		}
	}
	fail := func(err error) (*env, []device, error) {
		e.stop()
		return nil, nil, err
	}
	for _, sub := range []string{"mosquitto", "influxdb", "vward"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			return fail(err)
		}
	}
	progress("starting mosquitto and influxd in %s…", dir)
	m, err := services.StartMosquitto(filepath.Join(dir, "mosquitto"), services.MosquittoOptions{MaxInflight: cfg.BrokerMaxInflight, AutosaveInterval: cmp.Or(cfg.BrokerAutosave, 30)})
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() { _ = m.Kill() })
	if cfg.BrokerNice != 0 {
		if e.brokerNice, err = renice(m.Proc.Pid(), cfg.BrokerNice); err != nil {
			return fail(fmt.Errorf("the broker's niceness: %w", err))
		}
	}
	influxdEnv := append(slices.Clip(SelfStartedInfluxdEnv), cfg.InfluxdEnv...)
	in, err := services.StartInflux(filepath.Join(dir, "influxdb"), influxdEnv...)
	if err != nil {
		return fail(err)
	}
	cleanups = append(cleanups, func() {
		_ = in.Proc.Signal(syscall.SIGCONT) // in case a history outage left it frozen
		_ = in.Kill()
	})
	if cfg.InfluxdNice != 0 {
		if e.influxdNice, err = renice(in.Proc.Pid(), cfg.InfluxdNice); err != nil {
			return fail(fmt.Errorf("influxd's niceness: %w", err))
		}
	}
	e.mqttURL, e.influxURL, e.bucket = m.URL, in.URL, in.Bucket
	e.services["mosquitto"], e.services["influxd"] = m.Proc, in.Proc
	e.influxdEnv = influxdEnv

	dataDir := filepath.Join(dir, "vward")
	progress("registering %d patients and devices…", cfg.Devices)
	devs, err := seed(ctx, dataDB(dataDir), cfg)
	if err != nil {
		return fail(fmt.Errorf("seed registry: %w", err))
	}
	port, err := services.FreePort()
	if err != nil {
		return fail(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	e.board = "http://" + addr
	if len(cfg.VwardCommand) > 0 {
		args := append(cfg.VwardCommand[1:len(cfg.VwardCommand):len(cfg.VwardCommand)],
			"--http-addr", addr, "--data-dir", dataDir, "--mqtt-url", m.URL, "--mqtt-client-id", "vward-bench",
			"--influx-url", in.URL, "--influx-bucket", in.Bucket, "--log-level", "warn")
		args = append(args, cfg.VwardArgs...)
		if cfg.CPUProfile != "" || cfg.HeapProfile != "" {
			pport, err := services.FreePort()
			if err != nil {
				return fail(err)
			}
			e.pprof = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(pport))
			args = append(args, "--pprof-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(pport)))
		}
		p := &services.Process{Name: "vward", Bin: cfg.VwardCommand[0], Args: args, LogPath: filepath.Join(dir, "vward.log")}
		if len(cfg.VwardEnv) > 0 {
			p.Env = append(os.Environ(), cfg.VwardEnv...) // the last of a repeated key wins
			e.vwardEnv = cfg.VwardEnv
		}
		if _, err := p.Start(); err != nil {
			return fail(err)
		}
		cleanups = append(cleanups, func() { _ = p.Stop(syscall.SIGTERM, 30*time.Second) })
		e.pid = p.Pid()
		e.measured = "vward serve as a child process (/proc/<pid>): vward alone"
	} else {
		n, err := node.Open(ctx, node.Config{
			DataDir: dataDir, HTTPAddr: addr,
			MQTT:    mqttsource.Config{URL: m.URL, ClientID: "vward-bench"},
			Influx:  &history.InfluxConfig{URL: in.URL, Bucket: in.Bucket},
			Journal: &journal.Config{}, // as `vward serve` runs by default
			Log:     cfg.Log,
		})
		if err != nil {
			return fail(err)
		}
		nctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(nctx) }()
		cleanups = append(cleanups, func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
			}
			n.Close()
		})
		e.pid = os.Getpid()
		e.measured = "vward in-process (/proc/self): vward plus the bench's fleet and board client"
	}
	if err := waitReady(ctx, e.board, 60*time.Second); err != nil {
		return fail(err)
	}
	return e, devs, nil
}

// external drives an already running vward.
func external(ctx context.Context, cfg Config) (*env, []device, error) {
	if cfg.InfluxURL == "" || cfg.BoardURL == "" {
		return nil, nil, errors.New("an external run needs --mqtt-url, --influx-url and --board-url")
	}
	e := &env{mqttURL: cfg.MQTTURL, influxURL: cfg.InfluxURL, bucket: cfg.InfluxBucket, board: cfg.BoardURL, stop: func() {},
		measured: "not measured: vward runs elsewhere (its /metrics has process_cpu_seconds_total)"}
	var devs []device
	if cfg.DataDir != "" {
		var err error
		if devs, err = seed(ctx, dataDB(cfg.DataDir), cfg); err != nil {
			return nil, nil, fmt.Errorf("seed registry: %w", err)
		}
		// The node reloads its registry on this interval.
		time.Sleep(node.RegistryWatchInterval + time.Second)
	} else {
		for i := range cfg.Devices {
			devs = append(devs, device{id: deviceID(cfg.Prefix, i), patient: patientID(cfg.Prefix, i)})
		}
	}
	return e, devs, nil
}

func waitReady(ctx context.Context, base string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = string(b)
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("vward at %s not ready within %s: %s", base, timeout, last)
}

// drive runs the fleet, watches the board and InfluxDB, and fills in res.
func drive(ctx context.Context, cfg Config, e *env, devs []device, res *Result, progress func(string, ...any)) error {
	ids := make([]simulator.Identity, len(devs))
	for i, d := range devs {
		ids[i] = simulator.Identity{Device: d.id, Password: d.secret}
	}
	fleet, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: e.mqttURL, Log: cfg.Log, Ramp: min(10*time.Second, time.Duration(len(devs))*time.Millisecond)}, ids)
	if err != nil {
		return err
	}
	defer fleet.Close()
	progress("connecting %d devices…", len(devs))
	if err := fleet.Connect(ctx); err != nil {
		return err
	}

	b, err := openBoard(ctx, boardclient.Login{URL: e.board, Username: cfg.Username, Password: cfg.Password})
	if err != nil {
		return err
	}
	// The run starts once the board client has its snapshot.
	start := time.Now().Add(500 * time.Millisecond)
	b.watch(start)
	defer b.close()

	every := time.Duration(float64(time.Second) * float64(len(devs)) / cfg.Rate)
	clock := simulator.Clock{Mode: simulator.RealClock, Speed: 1, Origin: start}
	streams := make([]*stream, len(devs))
	steps := make([]simulator.DeviceSteps, len(devs))
	for i, d := range devs {
		streams[i] = &stream{dev: d, clock: clock, offset: time.Duration(int64(every) * int64(i) / int64(len(devs))),
			every: every, end: cfg.Duration, readings: cfg.Readings}
		steps[i] = simulator.DeviceSteps{Device: d.id, Steps: streams[i]}
	}

	before, _ := readProc(e.pid)
	selfBefore, _ := readProc(os.Getpid())
	svcBefore := map[string]procStat{}
	for name, p := range e.services {
		svcBefore[name], _ = readProc(p.Pid())
	}
	res.Vward.RSSStartMB = mb(before.rss)

	sampler := newStoreSampler(e.influxURL, e.bucket, 500*time.Millisecond)
	for _, s := range streams {
		s.probes = sampler
	}
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	sampled := make(chan struct{})
	go func() { defer close(sampled); sampler.run(sctx) }()

	if cfg.HeapProfile != "" && e.pprof != "" {
		heapEarly := make(chan struct{})
		go func() {
			defer close(heapEarly)
			select {
			case <-time.After(min(time.Minute, cfg.Duration/2)):
				if err := fetchURL(ctx, e.pprof+"/debug/pprof/heap", cfg.HeapProfile+".early"); err != nil {
					progress("warning: heap profile: %v", err)
				}
			case <-ctx.Done():
			}
		}()
		defer func() {
			<-heapEarly
			if err := fetchURL(ctx, e.pprof+"/debug/pprof/heap", cfg.HeapProfile); err != nil {
				progress("warning: heap profile: %v", err)
			}
		}()
	}
	if cfg.CPUProfile != "" && e.pprof != "" {
		// The child vward profiles itself over the publishing window.
		secs := max(1, int(cfg.Duration.Seconds())-1)
		profiled := make(chan error, 1)
		go func() { profiled <- fetchProfile(ctx, e.pprof, secs, cfg.CPUProfile) }()
		// And where its goroutines wait, halfway through.
		go func() {
			time.Sleep(cfg.Duration / 2)
			_ = fetchURL(ctx, e.pprof+"/debug/pprof/goroutine?debug=1", cfg.CPUProfile+".goroutines.txt")
		}()
		defer func() {
			if err := <-profiled; err != nil {
				progress("warning: cpu profile: %v", err)
			}
		}()
	}
	if cfg.CPUProfile != "" {
		// This process (the fleet and the board client; vward too when
		// in-process), beside the child's profile if there is one.
		path := cfg.CPUProfile
		if e.pprof != "" {
			path += ".bench"
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	// The monitor follows the journal and runs the outage; stopping it
	// thaws influxd, so a frozen one never outlives the run.
	mon, err := newMonitor(ctx, e.board, start, cfg.Log, progress)
	if err != nil {
		return fmt.Errorf("vward's metrics: %w", err)
	}
	if cfg.HistoryOutage > 0 {
		influxd := e.services["influxd"]
		if influxd == nil {
			return errors.New("a history outage needs the self-started influxd")
		}
		mon.planOutage(influxd, b, cfg.HistoryOutageAfter, cfg.HistoryOutage)
	}
	stopMon, monDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(monDone); mon.run(ctx, stopMon) }()
	var stopMonOnce sync.Once
	stopMonitor := func() {
		stopMonOnce.Do(func() { close(stopMon) })
		<-monDone
	}
	defer stopMonitor()

	playCtx, stopPlay := context.WithCancel(ctx)
	defer stopPlay()
	played := make(chan error, 1)
	go func() { played <- fleet.Play(playCtx, clock, steps) }()

	var lagMax time.Duration
	var peak int64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var playErr error
	lastCPU, lastAt := before.cpu, time.Now()
	report := func(phase string) {
		ps, _ := readProc(e.pid)
		peak = max(peak, ps.hwm, ps.rss)
		now := time.Now()
		cpu := 100 * (ps.cpu - lastCPU).Seconds() / now.Sub(lastAt).Seconds()
		lastCPU, lastAt = ps.cpu, now
		m, _ := metric(ctx, e.board, mStored, mInFlight, mJournalMessages)
		lat := b.recent()
		journal := ""
		if mon.journal {
			journal = fmt.Sprintf(" journal %8.0f", m[mJournalMessages])
		}
		progress("%s %5.0fs published %9d (%6.0f/s) stored %9.0f in-flight %6.0f%s board %8d p99 %6.1fms vward cpu %5.1f%% rss %6.1fMB lag %s",
			phase, time.Since(start).Seconds(), fleet.Stats.Published.Load(), float64(fleet.Stats.Published.Load())/max(time.Since(start).Seconds(), 0.001),
			m[mStored], m[mInFlight], journal, b.seen.Load(), lat.P99, cpu, mb(ps.rss),
			time.Duration(fleet.Stats.LagNanos.Load()).Round(time.Millisecond))
	}
loop:
	for {
		select {
		case playErr = <-played:
			break loop
		case <-tick.C:
			lagMax = max(lagMax, time.Duration(fleet.Stats.LagNanos.Load()))
			report("run  ")
			if minute := int(time.Since(start) / time.Minute); minute > len(res.Vward.RSSEachMinuteMB) {
				ps, _ := readProc(e.pid)
				res.Vward.RSSEachMinuteMB = append(res.Vward.RSSEachMinuteMB, mb(ps.rss))
			}
		}
	}
	published := fleet.Stats.Published.Load()
	publishEnd := time.Now()
	if playErr != nil {
		return fmt.Errorf("fleet: %w", playErr)
	}
	after, _ := readProc(e.pid)
	peak = max(peak, after.hwm, after.rss)
	window := publishEnd.Sub(start).Seconds()
	res.Vward.CPUSeconds = round((after.cpu - before.cpu).Seconds(), 2)
	res.Vward.CPUPercent = round(100*(after.cpu-before.cpu).Seconds()/window, 1)
	selfAfter, _ := readProc(os.Getpid())
	res.BenchCPUPercent = round(100*(selfAfter.cpu-selfBefore.cpu).Seconds()/window, 1)
	res.Services = map[string]float64{}
	for name, p := range e.services {
		a, _ := readProc(p.Pid())
		res.Services[name] = round(100*(a.cpu-svcBefore[name].cpu).Seconds()/window, 1)
	}
	res.Published = published
	res.PublishedPerS = round(float64(published)/window, 1)
	res.FleetLagMaxMS = round(float64(lagMax)/1e6, 1)

	// Every message out of the fleet and into InfluxDB.
	progress("publishing done: %d messages in %.1fs; draining…", published, window)
	if unacked, _ := fleet.Drain(ctx, cfg.DrainTimeout); unacked > 0 {
		progress("warning: %d messages not acknowledged by the broker", unacked)
	}
	// Stored is in InfluxDB: with a journal, vward has stored a message
	// once it is journaled, and InfluxDB has it once the journal is empty.
	drainStart := time.Now()
	storedAt := drainStart
	var stall time.Time
	lastDone := -1.0
	for {
		m, err := metric(ctx, e.board, mStored, mJournalMessages)
		stored, journaled := m[mStored], m[mJournalMessages]
		if err == nil && stored >= float64(published) && journaled == 0 {
			storedAt = time.Now()
			break
		}
		if done := stored - journaled; done != lastDone {
			lastDone, stall = done, time.Now()
		}
		if time.Since(drainStart) > cfg.DrainTimeout || time.Since(stall) > 30*time.Second || ctx.Err() != nil {
			storedAt = time.Now()
			progress("warning: vward reports %.0f of %d messages stored, %.0f of them still in its journal, after %s",
				stored, published, journaled, time.Since(drainStart).Round(time.Second))
			break
		}
		select {
		case <-tick.C:
			report("drain")
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.DrainS = round(storedAt.Sub(publishEnd).Seconds(), 2)
	stopMonitor()
	if mon.err != nil {
		return fmt.Errorf("history outage: %w", mon.err)
	}
	res.Outage = mon.outage(res.PublishedPerS)
	res.Journal = mon.journalStats(storedAt.Sub(start))
	stopSampling()
	<-sampled
	// Give the board a moment for the last updates.
	time.Sleep(500 * time.Millisecond)
	end, _ := readProc(e.pid)
	res.Vward.RSSEndMB = mb(end.rss)
	res.Vward.PeakRSSMB = mb(max(peak, end.hwm))
	res.LatencyMS = b.latencies().percentiles()
	res.StoreLatencyMS = sampler.latencies().percentiles()
	res.BoardEvents, res.BoardAlerts = b.events.Load(), b.alerts.Load()

	progress("checking every msg_id in InfluxDB…")
	if err := verify(ctx, cfg, e, streams, start, mon.inOutage, res); err != nil {
		return err
	}
	span := storedAt.Sub(start).Seconds()
	res.MsgsPerS = round(float64(res.Stored)/span, 1)
	res.ReadingsPerS = round(float64(res.Stored*int64(cfg.Readings))/span, 1)
	return nil
}

func mb(b int64) float64 { return round(float64(b)/(1<<20), 1) }

func deviceID(prefix string, i int) vward.DeviceID {
	return vward.DeviceID(fmt.Sprintf("%s%05d", prefix, i+1))
}

func patientID(prefix string, i int) vward.PatientID {
	return vward.PatientID(fmt.Sprintf("%sp%05d", prefix, i+1))
}

func fetchProfile(ctx context.Context, base string, secs int, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+60)*time.Second)
	defer cancel()
	return fetchURL(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), path)
}

func fetchURL(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
