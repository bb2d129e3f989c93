package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vward/vward/internal/bench"
	"github.com/vward/vward/internal/services"
	"github.com/vward/vward/internal/testenv"
)

// A short bench run against self-started Mosquitto, InfluxDB and an
// in-process vward loses nothing, duplicates nothing, and reports the
// fields `vward bench --json` promises. Rates and timings are never
// asserted: they belong to docs/performance.md, not to a shared CI box.
func TestBenchSmoke(t *testing.T) {
	for _, bin := range []string{"mosquitto", "influxd"} {
		if _, err := services.LookBinary(bin); err != nil {
			if testenv.RequireServices() {
				t.Fatalf("VWARD_REQUIRE_SERVICES=1: %v", err)
			}
			t.Skip(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := bench.Run(ctx, bench.Config{
		Rate: 200, Devices: 50, Duration: 5 * time.Second,
		Ceilings: true, CeilingDuration: time.Second,
		WorkDir: t.TempDir(), Progress: &progress,
		InfluxdEnv:  []string{"GOGC=150"},
		BrokerNice:  1, // raising a child's niceness needs no privilege
		InfluxdNice: 2,
	})
	if err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, progress.String())
	}
	if res.Published == 0 || res.Stored != res.Published || res.Lost != 0 || res.Duplicates != 0 {
		t.Errorf("published %d, stored %d, lost %d (%v), duplicates %d; want all stored once",
			res.Published, res.Stored, res.Lost, res.LostIDs, res.Duplicates)
	}
	// The operator guide's GOGC for influxd comes first, so a caller's own
	// setting (the last of a repeated key wins) overrides it.
	if want := []string{"GOGC=200", "GOGC=150"}; !slices.Equal(res.Settings.InfluxdEnv, want) {
		t.Errorf("influxd environment = %q, want %q", res.Settings.InfluxdEnv, want)
	}
	if !strings.HasPrefix(res.Versions.Broker, "Mosquitto 2.") || !strings.HasPrefix(res.Versions.Store, "InfluxDB 1.8.") {
		t.Errorf("versions: broker %q, store %q; want the self-started Mosquitto 2 and InfluxDB 1.8", res.Versions.Broker, res.Versions.Store)
	}
	if res.Settings.BrokerNice != 1 {
		t.Errorf("the broker's niceness read back is %d, want 1", res.Settings.BrokerNice)
	}
	if res.Ceiling.BrokerMsgsPerS <= 0 || res.Ceiling.BrokerDevices != 50 {
		t.Errorf("broker ceiling %.0f msgs/s from %d devices; want a rate from the run's 50", res.Ceiling.BrokerMsgsPerS, res.Ceiling.BrokerDevices)
	}
	if res.Settings.InfluxdNice != 2 {
		t.Errorf("influxd's niceness read back is %d, want 2", res.Settings.InfluxdNice)
	}
	if res.Verify != "full" {
		t.Errorf("verify = %q, want every msg_id checked", res.Verify)
	}

	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"published", "stored", "lost", "duplicates", "msgs_per_s", "latency_ms", "ceiling", "settings"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}
	for parent, keys := range map[string][]string{
		"latency_ms": {"p50", "p95", "p99"},
		"ceiling":    {"broker_msgs_per_s", "influx_points_per_s"},
	} {
		sub, _ := m[parent].(map[string]any)
		for _, k := range keys {
			if _, ok := sub[k]; !ok {
				t.Errorf("JSON %s lacks %q: %s", parent, k, b)
			}
		}
	}
}
