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

// Query runs a Flux query and returns one map per result row, keyed by
// column name, typed as ParseFluxCSV says.
func (i *Influx) Query(ctx context.Context, flux string) ([]map[string]any, error) {
	return QueryFlux(ctx, i.URL, flux)
}

// QueryFlux runs a Flux query against the InfluxDB at baseURL (1.8 with
// flux-enabled, or 2.x without auth).
func QueryFlux(ctx context.Context, baseURL, flux string) ([]map[string]any, error) {
	body, err := QueryFluxCSV(ctx, baseURL, flux)
	if err != nil {
		return nil, err
	}
	rows, err := ParseFluxCSV(body)
	if err != nil {
		return nil, fmt.Errorf("parse query response: %w", err)
	}
	return rows, nil
}

// QueryFluxCSV runs a Flux query and returns the annotated CSV as it came.
func QueryFluxCSV(ctx context.Context, baseURL, flux string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/api/v2/query", strings.NewReader(flux))
	if err != nil {
		return "", fmt.Errorf("build query request: %w", err)
	}
	// A raw Flux body gets 1.8's default dialect: header plus the datatype,
	// group and default annotations, which is what lets us type the values.
	req.Header.Set("Content-Type", "application/vnd.flux")
	req.Header.Set("Accept", "application/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST /api/v2/query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read query response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /api/v2/query: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
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
