package services

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
)

const (
	// influxd type-checks its whole Flux standard library before it serves
	// (flux.FinalizeBuiltIns: ~3 s of CPU); on a busy 2-core CI box running
	// other -race tests that can stretch far beyond that.
	influxReadyTimeout = 60 * time.Second
	// influxd's own clean-shutdown timeout is 30 s; do not cut it shorter.
	influxStopGrace = 35 * time.Second
	influxQueryTime = 30 * time.Second
)

// Influx is a real InfluxDB 1.8.10 on a loopback port. It serves the v2 write
// and Flux query APIs that influxdb-client-go/v2 uses: pass Org, Bucket and
// Token to the client as they are (auth is disabled, so Token is empty).
type Influx struct {
	URL      string // http://127.0.0.1:port
	Database string // "vward"
	Bucket   string // "vward/autogen": database/retention-policy, the 1.8 spelling of a bucket
	Org      string // "": 1.8 ignores the org
	Token    string // "": auth is disabled

	dir  string
	Proc *Process
}

// StartInflux starts InfluxDB with its config, data and log in dir, waits
// for /ping, and creates the database. env (KEY=VALUE) is added to its
// environment, e.g. GOGC. The caller stops it.
func StartInflux(dir string, env ...string) (*Influx, error) {
	bin, err := LookBinary("influxd")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		httpPort, err := FreePort()
		if err != nil {
			return nil, err
		}
		rpcPort, err := FreePort()
		if err != nil {
			return nil, err
		}
		i := &Influx{
			URL:      fmt.Sprintf("http://127.0.0.1:%d", httpPort),
			Database: "vward",
			Bucket:   "vward/autogen",
			dir:      dir,
		}
		conf := filepath.Join(dir, "influxdb.conf")
		i.Proc = &Process{
			Name:    "influxd",
			Bin:     bin,
			Args:    []string{"run", "-config", conf},
			LogPath: filepath.Join(dir, "influxd.log"),
			Env:     append(influxEnv(), env...),
		}
		if err := os.WriteFile(conf, []byte(influxConfig(dir, httpPort, rpcPort)), 0o644); err != nil {
			return nil, fmt.Errorf("write influxdb config: %w", err)
		}
		err = i.Start()
		if err == nil {
			return i, nil
		}
		lastErr = err
		// Another process took a port between FreePort and influxd's bind:
		// try fresh ports. Only the first start may move; restarts keep URL.
		if !strings.Contains(i.Proc.Log(), "address already in use") {
			break
		}
		_ = os.Rename(i.Proc.LogPath, fmt.Sprintf("%s.attempt%d", i.Proc.LogPath, attempt))
	}
	return nil, lastErr
}

// influxEnv drops INFLUXDB_* variables: influxd lets them override the config
// file, and a stray one from a developer's shell could move a port or turn on
// auth behind our back.
func influxEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INFLUXDB_") {
			env = append(env, kv)
		}
	}
	return env
}

// influxConfig is an InfluxDB 1.8 config that listens on loopback only, keeps
// everything in dir, and turns off every background service we do not need
// (each one costs start-up time or a port).
func influxConfig(dir string, httpPort, rpcPort int) string {
	return fmt.Sprintf(`reporting-disabled = true
# The backup/restore RPC service; it binds even when unused.
bind-address = "127.0.0.1:%[2]d"

[meta]
  dir = %[3]q
  # CREATE DATABASE then also creates "autogen", the "vward/autogen" bucket.
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = %[4]q
  wal-dir = %[5]q
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false

[retention]
  enabled = false

[shard-precreation]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:%[1]d"
  auth-enabled = false
  # Flux is off by default in 1.8; /api/v2/query answers 403 without it.
  flux-enabled = true
  flux-log-enabled = false
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false

[logging]
  format = "logfmt"
  level = "info"
  suppress-logo = true

[subscriber]
  enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false

[continuous_queries]
  enabled = false
`, httpPort, rpcPort,
		filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"))
}

// Start (re)starts InfluxDB on its port and data directory, waits until it
// answers /ping, and creates the database (idempotent).
func (i *Influx) Start() error {
	r, err := i.Proc.Start()
	if err != nil {
		return err
	}
	if err := WaitReady(r, influxReadyTimeout, i.ping); err != nil {
		_ = i.Proc.Stop(syscall.SIGKILL, time.Second)
		return fmt.Errorf("influxd on %s: %w\nlog:\n%s", i.URL, err, i.Proc.LogTail())
	}
	ctx, cancel := context.WithTimeout(context.Background(), influxQueryTime)
	defer cancel()
	if err := i.InfluxQL(ctx, "CREATE DATABASE "+i.Database); err != nil {
		_ = i.Proc.Stop(syscall.SIGKILL, time.Second)
		return fmt.Errorf("influxd on %s: %w\nlog:\n%s", i.URL, err, i.Proc.LogTail())
	}
	return nil
}

func (i *Influx) ping(ctx context.Context) error {
	_, err := ping(ctx, i.URL)
	return err
}

// ping asks the InfluxDB at baseURL whether it is up (204 No Content), and
// returns the answer's header, which carries its version.
func ping(ctx context.Context, baseURL string) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/ping", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return nil, fmt.Errorf("GET /ping: %s", resp.Status)
	}
	return resp.Header, nil
}

// InfluxQL runs an InfluxQL statement through the 1.x /query endpoint.
func (i *Influx) InfluxQL(ctx context.Context, q string) error {
	form := url.Values{"q": {q}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.URL+"/query", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	// 1.x reports statement errors with 200 and an "error" field.
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"error"`) {
		return fmt.Errorf("%s: %s: %s", q, resp.Status, body)
	}
	return nil
}

// Stop shuts InfluxDB down cleanly (SIGTERM) and waits for it to exit.
func (i *Influx) Stop() error {
	if err := i.Proc.Stop(syscall.SIGTERM, influxStopGrace); err != nil {
		return fmt.Errorf("stop influxd: %w\nlog:\n%s", err, i.Proc.LogTail())
	}
	return nil
}

// Kill ends InfluxDB with SIGKILL, as a crash would; its WAL keeps what it
// acknowledged.
func (i *Influx) Kill() error {
	if err := i.Proc.Stop(syscall.SIGKILL, influxStopGrace); err != nil {
		return fmt.Errorf("kill influxd: %w", err)
	}
	return nil
}

// Log returns everything influxd has logged so far, across restarts.
func (i *Influx) Log() string { return i.Proc.Log() }

// Query runs a Flux query and returns one map per result row, as
// QueryFlux does.
func (i *Influx) Query(ctx context.Context, flux string) ([]map[string]any, error) {
	return QueryFlux(ctx, i.URL, flux)
}

// QueryFlux runs a Flux query against the InfluxDB at baseURL (1.8 with
// flux-enabled, or 2.x without auth) through influxdb-client-go's query
// API, as history does, and returns its rows as FluxRows does.
func QueryFlux(ctx context.Context, baseURL, flux string) ([]map[string]any, error) {
	// http.DefaultClient, so that connections are reused from one query to
	// the next and ctx alone bounds a query (the client library's own
	// HTTP client would time out after 20 s).
	c := influxdb2.NewClientWithOptions(baseURL, "", influxdb2.DefaultOptions().SetHTTPClient(http.DefaultClient))
	defer c.Close()
	res, err := c.QueryAPI("").Query(ctx, flux)
	if err != nil {
		return nil, fmt.Errorf("flux query at %s: %w", baseURL, err)
	}
	return FluxRows(res)
}

// FluxRows reads a query's result into one map per row, every table's
// rows in order, keyed by column name, with values typed by the column's
// #datatype annotation (float64, int64, uint64, bool, time.Time, string;
// nil for an empty cell). It closes res.
func FluxRows(res *api.QueryTableResult) ([]map[string]any, error) {
	defer res.Close()
	rows := []map[string]any{}
	for res.Next() {
		rows = append(rows, res.Record().Values())
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("read the flux query's result: %w", err)
	}
	return rows, nil
}

// InfluxVersion is the version of the InfluxDB at baseURL, from its /ping
// answer's X-Influxdb-Version header ("1.8.10"; 2.x sends it too), for a
// bench run to say which store it measured. An influxd built by `go
// install`, as scripts/test builds it, says "unknown" there; given its
// binary (bin, or ""), the version is then the module version Go recorded
// in it.
func InfluxVersion(ctx context.Context, baseURL, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	h, err := ping(ctx, baseURL)
	if err != nil {
		return "", fmt.Errorf("influx version at %s: %w", baseURL, err)
	}
	v := h.Get("X-Influxdb-Version")
	if (v == "" || v == "unknown") && bin != "" {
		if info, err := buildinfo.ReadFile(bin); err == nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
			return strings.TrimPrefix(info.Main.Version, "v"), nil
		}
	}
	if v == "" || v == "unknown" {
		return "", fmt.Errorf("influx version: %s/ping says %q and the binary has no module version", baseURL, v)
	}
	return v, nil
}
