package bench

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vward/vward"
	"github.com/vward/vward/history"
	"github.com/vward/vward/internal/services"
)

// verify checks the fleet's msg_ids against InfluxDB. A bench message's
// readings share one time, so it is one point with one msg_id field: stored
// counts distinct msg_ids, duplicates the rows beyond one per msg_id, lost
// the published ones not found. With an outage (res.Outage set), the
// messages due during it, as inOutage says, are also counted apart.
func verify(ctx context.Context, cfg Config, e *env, streams []*stream, start time.Time, inOutage func(time.Time) bool, res *Result) error {
	var published int64
	for _, s := range streams {
		published += s.published.Load()
	}
	mode := cfg.Verify
	if mode == "auto" {
		mode = "counts"
		if published <= 200_000 {
			mode = "full"
		}
	}
	res.Verify = mode
	rangeStart := start.Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	rangeStop := time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
	base := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r._field == "msg_id" and r.device =~ /^%s/)`,
		e.bucket, rangeStart, rangeStop, history.Measurement, regexpQuote(cfg.Prefix))
	qctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()

	byDevice := map[string]*stream{}
	for _, s := range streams {
		byDevice[string(s.dev.id)] = s
	}
	// ids fetches one device's stored msg_ids, or every device's.
	ids := func(device string) (map[string]map[string]int, error) {
		q := base
		if device != "" {
			q += fmt.Sprintf("\n  |> filter(fn: (r) => r.device == %q)", device)
		}
		q += "\n  |> keep(columns: [\"device\", \"_value\"])"
		rows, err := services.QueryFlux(qctx, e.influxURL, q)
		if err != nil {
			return nil, err
		}
		out := map[string]map[string]int{}
		for _, r := range rows {
			d, _ := r["device"].(string)
			v, _ := r["_value"].(string)
			if out[d] == nil {
				out[d] = map[string]int{}
			}
			out[d][v]++
		}
		return out, nil
	}
	during := func(s *stream, seq int64) bool {
		return res.Outage != nil && inOutage(s.due(seq))
	}
	check := func(s *stream, got map[string]int) {
		n := s.published.Load()
		for seq := int64(1); seq <= n; seq++ {
			id := msgID(s.dev.id, seq)
			c := got[id]
			if during(s, seq) {
				res.Outage.Published++
				if c > 0 {
					res.Outage.Stored++
				}
			}
			if c == 0 {
				res.Lost++
				if len(res.LostIDs) < 20 {
					res.LostIDs = append(res.LostIDs, id)
				}
				continue
			}
			res.Stored++
			res.Duplicates += int64(c - 1)
		}
	}
	if mode == "full" {
		all, err := ids("")
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		for _, s := range streams {
			check(s, all[string(s.dev.id)])
		}
		return nil
	}
	// counts: per device, rows and distinct msg_ids, computed by InfluxDB;
	// a device whose numbers do not match is then checked id by id.
	count := func(q string) (map[string]int64, error) {
		rows, err := services.QueryFlux(qctx, e.influxURL, q)
		if err != nil {
			return nil, err
		}
		out := map[string]int64{}
		for _, r := range rows {
			d, _ := r["device"].(string)
			switch v := r["_value"].(type) {
			case int64:
				out[d] += v
			case uint64:
				out[d] += int64(v)
			case float64:
				out[d] += int64(v)
			}
		}
		return out, nil
	}
	var rows, distinct map[string]int64
	var errRows, errDistinct error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		rows, errRows = count(base + "\n  |> group(columns: [\"device\"])\n  |> count()")
	}()
	go func() {
		defer wg.Done()
		distinct, errDistinct = count(base + "\n  |> group(columns: [\"device\"])\n  |> distinct(column: \"_value\")\n  |> count()")
	}()
	wg.Wait()
	if errRows != nil || errDistinct != nil {
		return fmt.Errorf("verify: %v %v", errRows, errDistinct)
	}
	for _, s := range streams {
		d := string(s.dev.id)
		n := s.published.Load()
		if distinct[d] == n && rows[d] == n {
			res.Stored += n
			for seq := int64(1); seq <= n; seq++ {
				if during(s, seq) {
					res.Outage.Published++
					res.Outage.Stored++
				}
			}
			continue
		}
		got, err := ids(d)
		if err != nil {
			return fmt.Errorf("verify %s: %w", d, err)
		}
		check(s, got[d])
	}
	return nil
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$/-`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// storeSampler measures publish→stored on a sample: about every interval
// a stream offers the message it is about to publish, and the sampler polls
// InfluxDB for it from its due time until it is there (every 5 ms plus the
// query's own time, which bounds the resolution).
type storeSampler struct {
	influxURL, bucket string
	every             time.Duration
	next              atomic.Int64 // unix nanos of the next offer to take
	probes            chan probe
	noQL              atomic.Bool
	mu                sync.Mutex
	lat               latencies
}

type probe struct {
	device vward.DeviceID
	at     time.Time
}

func newStoreSampler(influxURL, bucket string, every time.Duration) *storeSampler {
	return &storeSampler{influxURL: influxURL, bucket: bucket, every: every, probes: make(chan probe, 1)}
}

// offer is called by the streams for every message they hand out; it takes
// one per interval.
func (s *storeSampler) offer(device vward.DeviceID, at time.Time) {
	now := time.Now().UnixNano()
	next := s.next.Load()
	if now < next || !s.next.CompareAndSwap(next, now+int64(s.every)) {
		return
	}
	select {
	case s.probes <- probe{device, at}:
	default:
	}
}

func (s *storeSampler) run(ctx context.Context) {
	for {
		var p probe
		select {
		case <-ctx.Done():
			return
		case p = <-s.probes:
		}
		if d := time.Until(p.at); d > 0 {
			time.Sleep(d)
		}
		ns := p.at.UnixNano()
		q := fmt.Sprintf(`from(bucket: %q)
  |> range(start: %s, stop: %s)
  |> filter(fn: (r) => r._measurement == %q and r.device == %q and r._field == "msg_id")
  |> count()`, s.bucket, p.at.Format(time.RFC3339Nano), p.at.Add(time.Microsecond).Format(time.RFC3339Nano), history.Measurement, string(p.device))
		// InfluxDB 1.x answers InfluxQL in a millisecond or two where Flux
		// takes far longer; the poll's resolution is the query's time, so
		// use InfluxQL when the server has it, Flux otherwise.
		db, rp, _ := strings.Cut(s.bucket, "/")
		ql := fmt.Sprintf(`SELECT count(msg_id) FROM %q.%q.%q WHERE device = '%s' AND time = %d`,
			db, cmp.Or(rp, "autogen"), history.Measurement, strings.ReplaceAll(string(p.device), "'", ""), ns)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			found, err := s.influxQL(ctx, ql)
			if err != nil {
				rows, ferr := services.QueryFlux(ctx, s.influxURL, q)
				found, err = len(rows) > 0, ferr
			}
			if err == nil && found {
				s.mu.Lock()
				s.lat.add(time.Since(p.at))
				s.mu.Unlock()
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// influxQL reports whether an InfluxQL count query found anything; an
// error means the server has no InfluxQL (2.x without a DBRP mapping).
func (s *storeSampler) influxQL(ctx context.Context, q string) (bool, error) {
	if s.noQL.Load() {
		return false, errors.New("no influxql")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.influxURL, "/")+"/query?"+url.Values{"q": {q}}.Encode(), nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK || bytes.Contains(b, []byte(`"error"`)) {
		s.noQL.Store(true)
		return false, fmt.Errorf("influxql: %s: %s", resp.Status, b)
	}
	return bytes.Contains(b, []byte(`"values"`)), nil
}

func (s *storeSampler) latencies() latencies {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lat.clone()
}

// Machine describes where a run ran.
type Machine struct {
	CPUs     int    `json:"nproc"`
	CPUModel string `json:"cpu_model"`
	MemoryMB int64  `json:"memory_mb"`
	Go       string `json:"go"`
	Kernel   string `json:"kernel,omitempty"`
}

func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				var kb int64
				fmt.Sscan(strings.TrimSpace(strings.TrimPrefix(line, "MemTotal:")), &kb)
				m.MemoryMB = kb >> 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
