package testenv

import (
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api"

	"github.com/vward/vward/internal/services"
)

const influxQueryTime = 30 * time.Second

// Influx is a real InfluxDB 1.8.10 on a loopback port (services.Influx). It
// serves the v2 write and Flux query APIs that influxdb-client-go/v2 uses:
// pass Org, Bucket and Token to the client as they are (auth is disabled, so
// Token is empty).
type Influx struct {
	URL      string // http://127.0.0.1:port
	Database string // "vward"
	Bucket   string // "vward/autogen": database/retention-policy, the 1.8 spelling of a bucket
	Org      string // "": 1.8 ignores the org
	Token    string // "": auth is disabled

	i *services.Influx
}

// StartInflux starts InfluxDB, waits for /ping, and creates the database. It
// is killed when the test ends.
func StartInflux(t testing.TB) *Influx {
	t.Helper()
	need(t, "influxd")
	began := time.Now()
	si, err := services.StartInflux(t.TempDir())
	if err != nil {
		t.Fatalf("StartInflux: %v", err)
	}
	i := &Influx{URL: si.URL, Database: si.Database, Bucket: si.Bucket, Org: si.Org, Token: si.Token, i: si}
	t.Logf("influxd ready on %s in %v", i.URL, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("influxd log (%s):\n%s", i.URL, si.Proc.LogTail())
		}
		if err := si.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return i
}

// Stop shuts InfluxDB down cleanly (SIGTERM) and waits for it to exit.
func (i *Influx) Stop(t testing.TB) {
	t.Helper()
	if err := i.i.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Kill ends InfluxDB with SIGKILL, as a crash would; its WAL keeps what it
// acknowledged.
func (i *Influx) Kill(t testing.TB) {
	t.Helper()
	if err := i.i.Kill(); err != nil {
		t.Fatal(err)
	}
}

// Start restarts a stopped InfluxDB on the same port and data directory, and
// waits until it answers /ping.
func (i *Influx) Start(t testing.TB) {
	t.Helper()
	began := time.Now()
	if err := i.i.Start(); err != nil {
		t.Fatalf("restart influxd: %v", err)
	}
	t.Logf("influxd restarted on %s in %v", i.URL, time.Since(began).Round(time.Millisecond))
}

// Log returns everything influxd has logged so far, across restarts.
func (i *Influx) Log() string { return i.i.Log() }

// Query runs a Flux query and returns one map per result row, keyed by column
// name, with values typed from the CSV #datatype annotation (float64, int64,
// uint64, bool, time.Time, string; nil for an empty cell). Any error fails
// the test; use QueryContext to poll while InfluxDB may be down.
func (i *Influx) Query(t testing.TB, flux string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), influxQueryTime)
	defer cancel()
	rows, err := i.QueryContext(ctx, flux)
	if err != nil {
		t.Fatalf("flux query: %v\nquery:\n%s", err, flux)
	}
	return rows
}

// QueryContext is Query returning its error, for polling loops.
func (i *Influx) QueryContext(ctx context.Context, flux string) ([]map[string]any, error) {
	return services.QueryFlux(ctx, i.URL, flux)
}

// parseFluxCSV reads a query's annotated CSV as Query does, for this
// package's tests of how rows are typed.
func parseFluxCSV(body string) ([]map[string]any, error) {
	return services.FluxRows(api.NewQueryTableResult(io.NopCloser(strings.NewReader(body))))
}
