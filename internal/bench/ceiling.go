package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/vward/vward"
	"github.com/vward/vward/history"
	"github.com/vward/vward/simulator"
)

// ceilingTopic is outside vward's subscription, so a running vward does not
// see the ceiling's traffic.
const ceilingTopic = "vward-bench/ceiling/"

// brokerCeiling measures the broker's raw QoS 1 publish→subscribe rate: the
// bench's own device connections publish bench-sized messages as fast as
// they can for d, and one paho subscriber (vward's MQTT client library, with
// QoS 1 acknowledgements) counts what it receives. No vward is involved.
// Run with as many devices as the run's fleet, it is what this machine can
// carry for that fleet: a message from each of 12,700 connections costs the
// broker (and the fleet) far more than a stream from each of 100, which
// reads and writes many messages per system call.
func brokerCeiling(ctx context.Context, brokerURL string, devices int, readings int, d time.Duration, log *slog.Logger) (float64, error) {
	var got atomic.Int64
	var first, last atomic.Int64
	opts := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprintf("vward-bench-ceiling-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetOrderMatters(false).SetAutoReconnect(false)
	sub := mqtt.NewClient(opts)
	if tok := sub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return 0, fmt.Errorf("ceiling subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(250)
	if tok := sub.Subscribe(ceilingTopic+"#", 1, func(_ mqtt.Client, _ mqtt.Message) {
		now := time.Now().UnixNano()
		if got.Add(1) == 1 {
			first.Store(now)
		}
		last.Store(now)
	}); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return 0, fmt.Errorf("ceiling subscribe: %v", tok.Error())
	}

	ids := make([]simulator.Identity, devices)
	for i := range ids {
		ids[i] = simulator.Identity{Device: vward.DeviceID(fmt.Sprintf("ceiling-%04d", i))}
	}
	fleet, err := simulator.NewFleet(simulator.FleetConfig{BrokerURL: brokerURL, Log: log}, ids)
	if err != nil {
		return 0, err
	}
	defer fleet.Close()
	if err := fleet.Connect(ctx); err != nil {
		return 0, err
	}
	start := time.Now()
	clock := simulator.Clock{Mode: simulator.RealClock, Speed: 1, Origin: start}
	streams := make([]simulator.DeviceSteps, devices)
	for i, id := range ids {
		streams[i] = simulator.DeviceSteps{Device: id.Device, Steps: &floodSteps{dev: id.Device, until: start.Add(d), readings: readings, clock: clock}}
	}
	if err := fleet.Play(ctx, clock, streams); err != nil {
		return 0, err
	}
	published := fleet.Stats.Published.Load()
	// Let the subscriber catch up with what was published, or give up
	// after a while: the rate is what it received per second either way.
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < published && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	n := got.Load()
	span := time.Duration(last.Load() - first.Load())
	if n < 2 || span <= 0 {
		return 0, fmt.Errorf("broker ceiling: subscriber received %d of %d messages", n, published)
	}
	return float64(n-1) / span.Seconds(), nil
}

// floodSteps publishes back to back, all due at once, until a wall-clock time.
type floodSteps struct {
	dev      vward.DeviceID
	until    time.Time
	readings int
	seq      int64
	clock    simulator.Clock
}

func (s *floodSteps) Next() (simulator.Step, bool) {
	if time.Now().After(s.until) {
		return simulator.Step{}, false
	}
	s.seq++
	id := msgID(s.dev, s.seq)
	return simulator.Step{Op: simulator.Publish, Device: s.dev, Topic: ceilingTopic + string(s.dev), MsgID: id,
		Payload: payload(id, time.Now().UTC(), s.readings, s.seq)}, true
}

// influxCeiling measures InfluxDB's raw batched write rate: writers POST
// batches of batch readings, in vward's line protocol (a point per
// message of readings readings), to measurement "bench_ceiling" of the
// bucket for d, each waiting for its 204 as vward's pipeline does. It
// returns points, that is messages, per second.
func influxCeiling(ctx context.Context, influxURL, bucket string, writers, batch, readings, series int, d time.Duration) (float64, error) {
	readings = max(readings, 1)
	points := batch / readings
	q := url.Values{"bucket": {bucket}, "org": {""}, "precision": {"ns"}}
	endpoint := strings.TrimRight(influxURL, "/") + "/api/v2/write?" + q.Encode()
	var written atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	base := start.UnixNano()
	var seq atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sb strings.Builder
			rs := make([]vward.Reading, 0, points*readings)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				sb.Reset()
				rs = rs[:0]
				for range points {
					n := seq.Add(1)
					for k := range readings {
						rs = append(rs, vward.Reading{
							Device: vward.DeviceID(fmt.Sprintf("ceiling-%05d", n%int64(series))), Patient: vward.PatientID(fmt.Sprintf("ceiling-p%05d", n%int64(series))),
							Ward: "bench", Kind: kinds[k%len(kinds)], Value: float64((n + int64(k)) % 100), MsgID: fmt.Sprintf("c%d-%d", w, n),
							At: time.Unix(0, base+n),
						})
					}
				}
				history.AppendLines(&sb, rs)
				body := strings.Replace(sb.String(), history.Measurement+",", "bench_ceiling,", -1)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewBufferString(body))
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				req.Header.Set("Content-Type", "text/plain; charset=utf-8")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					errOnce.Do(func() { firstErr = fmt.Errorf("influx write: %s: %s", resp.Status, msg) })
					return
				}
				written.Add(int64(points))
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(written.Load()) / time.Since(start).Seconds(), nil
}
