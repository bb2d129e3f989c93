package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vward/vward"
	"github.com/vward/vward/internal/services"
	"github.com/vward/vward/internal/testenv"
	"github.com/vward/vward/journal"
)

func TestOutageFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       Config
		wantErr   string // "" is valid
		wantAfter time.Duration
	}{
		{name: "no outage", cfg: Config{Duration: time.Minute}},
		{name: "warm-up a fifth of a short run", cfg: Config{Duration: 20 * time.Second, HistoryOutage: 6 * time.Second}, wantAfter: 4 * time.Second},
		{name: "warm-up at most 30s", cfg: Config{Duration: 5 * time.Minute, HistoryOutage: time.Minute}, wantAfter: 30 * time.Second},
		{name: "warm-up as given", cfg: Config{Duration: 2 * time.Minute, HistoryOutage: time.Minute, HistoryOutageAfter: 10 * time.Second}, wantAfter: 10 * time.Second},
		{name: "ends as publishing ends", cfg: Config{Duration: 2 * time.Minute, HistoryOutage: 90 * time.Second, HistoryOutageAfter: 30 * time.Second}, wantAfter: 30 * time.Second},
		{name: "does not fit", cfg: Config{Duration: time.Minute, HistoryOutage: 50 * time.Second}, wantErr: "ends after --duration"},
		{name: "does not fit after its warm-up", cfg: Config{Duration: 2 * time.Minute, HistoryOutage: time.Minute, HistoryOutageAfter: 61 * time.Second}, wantErr: "ends after --duration"},
		{name: "external vward", cfg: Config{Duration: time.Minute, HistoryOutage: 10 * time.Second, MQTTURL: "tcp://127.0.0.1:1883"}, wantErr: "--mqtt-url"},
		{name: "warm-up without outage", cfg: Config{Duration: time.Minute, HistoryOutageAfter: 10 * time.Second}, wantErr: "without --history-outage"},
		{name: "negative", cfg: Config{Duration: time.Minute, HistoryOutage: -time.Second}, wantErr: "0 or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.Rate = 100
			err := c.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, vward.ErrInvalid) {
					t.Fatalf("Validate() = %v, want an ErrInvalid saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			if err := c.defaults(); err != nil {
				t.Fatal(err)
			}
			if c.HistoryOutageAfter != tc.wantAfter {
				t.Errorf("warm-up %v, want %v", c.HistoryOutageAfter, tc.wantAfter)
			}
		})
	}
}

// The journal's figures are read from the metrics the journal itself
// registers, served as vward serves them, so a renamed metric fails here.
func TestJournalStatsFromMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := journal.NewMetrics(reg)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	ctx := context.Background()

	m.MaxBytes.Set(1 << 30)
	// Before the run: observations the run's figures must leave out.
	for range 50 {
		m.AppendDuration.Observe(5)
	}
	m.Forwarded.Add(1000)
	mon, err := newMonitor(ctx, srv.URL, time.Now(), testLog(), func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	if !mon.journal {
		t.Fatal("a vward with journal metrics is taken for one without a journal")
	}
	// The run: 100 batches, 90 of them within the first bucket (≤ 0.2 ms),
	// 10 within the third (1.25–3.125 ms).
	for i := range 100 {
		if i < 90 {
			m.AppendDuration.Observe(0.0001)
		} else {
			m.AppendDuration.Observe(0.002)
		}
	}
	m.Messages.Set(700)
	m.Bytes.Set(70000)
	m.Full.Set(1)
	mon.sample(ctx)
	m.Messages.Set(0)
	m.Bytes.Set(0)
	m.Full.Set(0)
	m.Forwarded.Add(5000)
	m.Appended.Add(5000)
	m.Refused.Add(3)
	mon.sample(ctx)

	j := mon.journalStats(10 * time.Second)
	if j == nil {
		t.Fatal("no journal figures")
	}
	if j.BacklogPeakMsgs != 700 || j.BacklogPeakBytes != 70000 || j.BacklogEndMsgs != 0 || !j.Full {
		t.Errorf("backlog peak %v msgs %v bytes, end %v, full %v; want 700, 70000, 0, true", j.BacklogPeakMsgs, j.BacklogPeakBytes, j.BacklogEndMsgs, j.Full)
	}
	if j.ForwardedMsgs != 5000 || j.ForwardedMsgsPerS != 500 || j.AppendedMsgs != 5000 || j.RefusedWrites != 3 || j.MaxBytes != 1<<30 {
		t.Errorf("forwarded %v (%v/s), appended %v, refused %v, max %v; want the run's 5000 (500/s), 5000, 3, 1 GiB",
			j.ForwardedMsgs, j.ForwardedMsgsPerS, j.AppendedMsgs, j.RefusedWrites, j.MaxBytes)
	}
	if j.AppendMS.Count != 100 {
		t.Errorf("append batches %d, want the run's 100", j.AppendMS.Count)
	}
	// p50: rank 50 of the 90 in [0, 0.2 ms]; p99: rank 99, the 9th of the
	// 10 in [1.25, 3.125 ms].
	if want := 0.2 * 50 / 90; math.Abs(j.AppendMS.P50-want) > 0.01 {
		t.Errorf("append p50 %v ms, want %.3f", j.AppendMS.P50, want)
	}
	if want := 1.25 + (3.125-1.25)*9/10; math.Abs(j.AppendMS.P99-want) > 0.01 {
		t.Errorf("append p99 %v ms, want %.3f", j.AppendMS.P99, want)
	}
}

func TestNoJournalNoFigures(t *testing.T) {
	reg := prometheus.NewRegistry()
	stored := prometheus.NewCounter(prometheus.CounterOpts{Name: mStored, Help: "stored"})
	reg.MustRegister(stored)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	mon, err := newMonitor(context.Background(), srv.URL, time.Now(), testLog(), func(string, ...any) {})
	if err != nil {
		t.Fatal(err)
	}
	if mon.journal || mon.journalStats(time.Second) != nil {
		t.Errorf("journal figures for a vward without a journal: %+v", mon.journalStats(time.Second))
	}
	if got := mon.backlogName(); got != mInFlight {
		t.Errorf("the backlog without a journal is read from %q, want %q", got, mInFlight)
	}
}

func TestHistogramQuantileEdges(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d_seconds", Help: "d", Buckets: []float64{1, 2}})
	reg.MustRegister(h)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	read := func() scrape {
		s, err := scrapeMetrics(context.Background(), srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	empty := read()
	if q := histogramQuantile(0.5, nil, empty.histogram("d_seconds")); q != 0 {
		t.Errorf("quantile of no observations = %v, want 0", q)
	}
	h.Observe(10) // beyond every bound: counted as the highest finite one
	if q := histogramQuantile(0.99, empty.histogram("d_seconds"), read().histogram("d_seconds")); q != 2 {
		t.Errorf("quantile in +Inf = %v, want 2", q)
	}
}

func testLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// However the run ends while InfluxDB is frozen, cancelled or stopped, the
// monitor thaws it: a frozen influxd never outlives the run.
func TestOutageThawsInfluxdWhenTheRunEnds(t *testing.T) {
	if _, err := services.LookBinary("influxd"); err != nil {
		if testenv.RequireServices() {
			t.Fatalf("VWARD_REQUIRE_SERVICES=1: %v", err)
		}
		t.Skip(err)
	}
	in, err := services.StartInflux(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = in.Kill() }()
	reg := prometheus.NewRegistry()
	journal.NewMetrics(reg)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	for _, end := range []string{"cancelled", "stopped"} {
		t.Run(end, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			mon, err := newMonitor(ctx, srv.URL, time.Now(), testLog(), func(string, ...any) {})
			if err != nil {
				t.Fatal(err)
			}
			b := &board{}
			mon.planOutage(in.Proc, b, 0, time.Hour)
			stop, done := make(chan struct{}), make(chan struct{})
			go func() { defer close(done); mon.run(ctx, stop) }()
			for procState(t, in.Proc.Pid()) != 'T' {
				select {
				case <-done:
					t.Fatalf("the monitor returned before freezing influxd: %v", mon.err)
				case <-time.After(10 * time.Millisecond):
				}
			}
			if end == "cancelled" {
				cancel()
			} else {
				close(stop)
			}
			<-done
			if mon.err != nil {
				t.Fatal(mon.err)
			}
			if s := procState(t, in.Proc.Pid()); s == 'T' {
				t.Fatalf("influxd is still stopped (state %c) after the run was %s", s, end)
			}
			pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer pcancel()
			if _, err := services.InfluxVersion(pctx, in.URL, in.Proc.Bin); err != nil {
				t.Errorf("influxd does not answer after the thaw: %v", err)
			}
		})
	}
}

// procState is the state letter of /proc/<pid>/stat: T while stopped.
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	return s[strings.LastIndexByte(s, ')')+2]
}
