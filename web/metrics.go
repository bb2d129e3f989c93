package web

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Why a board client was dropped, the reason label of
// vward_board_clients_dropped_total.
const (
	dropWriteFailed   = iota // a write failed or timed out: too slow, or gone
	dropAlertOverflow        // more alert events waited than maxQueuedAlerts
	dropReasons
)

var dropReasonNames = [dropReasons]string{"write_failed", "alert_queue_overflow"}

// hubStats are the board's metrics that are not read off the clients.
type hubStats struct {
	dropped [dropReasons]atomic.Int64
	delay   prometheus.Histogram
}

func newHubStats() hubStats {
	return hubStats{delay: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vward_board_update_delay_seconds",
		Help: "How long the oldest update of each batch sent to a board client waited, from the row or alert changing to its batch written to the client's websocket.",
		// The board's target is 250 ms from reading to screen.
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	})}
}

// drop counts and logs a client dropped for reason.
func (h *Hub) drop(reason int, err error) {
	h.Dropped.Add(1)
	h.stats.dropped[reason].Add(1)
	h.log.Info("board client dropped", "reason", dropReasonNames[reason], "err", err)
}

// clientCounts are a client's totals.
type clientCounts struct{ coalesced, frames int64 }

func (c *clientCounts) add(o clientCounts) {
	c.coalesced += o.coalesced
	c.frames += o.frames
}

// counts reads c's totals, and queued its updates waiting.
func (c *client) counts() clientCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return clientCounts{coalesced: c.coalesced, frames: c.frames.Load()}
}

func (c *client) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.order) + len(c.alerts)
}

var (
	boardClientsDesc = prometheus.NewDesc("vward_board_clients",
		"Board websocket clients connected.", nil, nil)
	boardQueuedDesc = prometheus.NewDesc("vward_board_queued_updates",
		"Row updates and alert events waiting to be sent, across every board client.", nil, nil)
	boardCoalescedDesc = prometheus.NewDesc("vward_board_updates_coalesced_total",
		"Row updates replaced by a newer one of the same patient before a client was sent them.", nil, nil)
	boardFramesDesc = prometheus.NewDesc("vward_board_frames_sent_total",
		"Websocket messages written to board clients: snapshots, rows, alert events and pings.", nil, nil)
	boardDroppedDesc = prometheus.NewDesc("vward_board_clients_dropped_total",
		"Board clients the server disconnected, by reason (write_failed: too slow or gone; alert_queue_overflow).", []string{"reason"}, nil)
)

// Collector returns the board's metrics for a Prometheus registry.
func (h *Hub) Collector() prometheus.Collector { return hubCollector{h} }

type hubCollector struct{ h *Hub }

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- boardClientsDesc
	ch <- boardQueuedDesc
	ch <- boardCoalescedDesc
	ch <- boardFramesDesc
	ch <- boardDroppedDesc
	c.h.stats.delay.Describe(ch)
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	h.mu.RLock()
	n, total, queued := len(h.clients), h.gone, 0
	for cl := range h.clients {
		total.add(cl.counts())
		queued += cl.queued()
	}
	h.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(boardClientsDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(boardQueuedDesc, prometheus.GaugeValue, float64(queued))
	ch <- prometheus.MustNewConstMetric(boardCoalescedDesc, prometheus.CounterValue, float64(total.coalesced))
	ch <- prometheus.MustNewConstMetric(boardFramesDesc, prometheus.CounterValue, float64(total.frames))
	for r, name := range dropReasonNames {
		ch <- prometheus.MustNewConstMetric(boardDroppedDesc, prometheus.CounterValue, float64(h.stats.dropped[r].Load()), name)
	}
	h.stats.delay.Collect(ch)
}

// httpMetrics count the HTTP API's requests by route, the pattern that
// served them, so that the label set stays as small as the routes.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_http_requests_total",
			Help: "HTTP requests answered, by route (the pattern that served it; unmatched for none) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vward_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route; the board's websocket stream, which lasts as long as the board is open, is left out.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// streamRoute is the websocket's route, left out of the duration.
const streamRoute = "GET /api/v1/stream"

// instrument counts each request under the route route(r) names.
func (m *httpMetrics) instrument(h http.Handler, route func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		rw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(rw, r)
		p := route(r)
		if p == "" {
			p = "unmatched"
		}
		m.requests.WithLabelValues(p, strconv.Itoa(rw.code())).Inc()
		if p != streamRoute {
			m.duration.WithLabelValues(p).Observe(time.Since(began).Seconds())
		}
	})
}

// statusWriter remembers the status written. It hijacks for the websocket
// upgrade, which gorilla/websocket asks of the writer itself.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response writer cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err == nil {
		w.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
