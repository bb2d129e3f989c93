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
	needServices(t)
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

func needServices(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"mosquitto", "influxd"} {
		if _, err := services.LookBinary(bin); err != nil {
			if testenv.RequireServices() {
				t.Fatalf("VWARD_REQUIRE_SERVICES=1: %v", err)
			}
			t.Skip(err)
		}
	}
}

// A bench run that freezes its InfluxDB for a while loses nothing: vward
// keeps acknowledging into its journal, the board keeps getting updates,
// and the journal's backlog drains after the thaw. The outage and journal
// sections say so; their timings are not asserted.
func TestBenchHistoryOutage(t *testing.T) {
	needServices(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := bench.Run(ctx, bench.Config{
		Rate: 200, Devices: 50, Duration: 20 * time.Second,
		HistoryOutage: 6 * time.Second, HistoryOutageAfter: 5 * time.Second,
		WorkDir: t.TempDir(), Progress: &progress,
	})
	if err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, progress.String())
	}
	defer func() {
		if t.Failed() {
			t.Logf("progress:\n%s", progress.String())
		}
	}()
	if res.Published == 0 || res.Stored != res.Published || res.Lost != 0 || res.Duplicates != 0 {
		t.Errorf("published %d, stored %d, lost %d (%v), duplicates %d; want all stored once",
			res.Published, res.Stored, res.Lost, res.LostIDs, res.Duplicates)
	}
	o := res.Outage
	if o == nil {
		t.Fatal("no outage section")
	}
	if o.EndS <= o.StartS {
		t.Errorf("outage from %.2fs to %.2fs", o.StartS, o.EndS)
	}
	if o.Published == 0 || o.Stored != o.Published {
		t.Errorf("%d messages due during the outage, %d of them stored; want some, all stored", o.Published, o.Stored)
	}
	if o.Acknowledged == 0 {
		t.Error("vward acknowledged nothing while InfluxDB was frozen; the journal should have taken the readings")
	}
	if o.LatencyMS.Count == 0 {
		t.Error("no board updates of messages due during the outage")
	}
	if o.Backlog != "vward_journal_messages" || o.PeakBacklogMsgs <= o.BacklogBeforeMsgs {
		t.Errorf("backlog %s peaked at %.0f from %.0f before the outage; want the journal to have grown", o.Backlog, o.PeakBacklogMsgs, o.BacklogBeforeMsgs)
	}
	if !o.Drained || o.DrainS <= 0 || o.DrainMsgsPerS <= 0 {
		t.Errorf("drained %v in %.2fs at %.1f msgs/s; want the backlog drained after the thaw", o.Drained, o.DrainS, o.DrainMsgsPerS)
	}
	j := res.Journal
	if j == nil {
		t.Fatal("no journal section")
	}
	if j.BacklogPeakMsgs < o.PeakBacklogMsgs || j.BacklogEndMsgs != 0 || j.OldestAgePeakS <= 0 {
		t.Errorf("journal backlog peak %.0f (outage's %.0f), end %.0f, oldest age peak %.2fs", j.BacklogPeakMsgs, o.PeakBacklogMsgs, j.BacklogEndMsgs, j.OldestAgePeakS)
	}
	if j.ForwardedMsgs < float64(res.Published) || j.AppendMS.Count == 0 || j.AppendMS.P99 <= 0 || j.MaxBytes <= 0 || j.Full {
		t.Errorf("journal forwarded %.0f of %d published, %d appends (p99 %.2f ms), max %.0f bytes, full %v",
			j.ForwardedMsgs, res.Published, j.AppendMS.Count, j.AppendMS.P99, j.MaxBytes, j.Full)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]any
	_ = json.Unmarshal(b, &m)
	for parent, keys := range map[string][]string{
		"outage":  {"start_s", "end_s", "latency_ms", "drain_s", "peak_backlog_msgs", "drain_msgs_per_s", "drain_vs_publish"},
		"journal": {"backlog_peak_msgs", "backlog_peak_bytes", "oldest_age_peak_s", "forwarded_msgs_per_s", "append_ms", "refused_writes"},
	} {
		for _, k := range keys {
			if _, ok := m[parent][k]; !ok {
				t.Errorf("JSON %s lacks %q: %s", parent, k, b)
			}
		}
	}
}
