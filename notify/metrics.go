package notify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the dispatcher's Prometheus metrics, by channel.
type Metrics struct {
	sent, failed, gaveUp, cancelled *prometheus.CounterVec
	duration                        *prometheus.HistogramVec
	pending                         func() int
}

// NewMetrics builds the metrics and registers them on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		sent: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_notify_sent_total",
			Help: "Notifications delivered, by channel.",
		}, []string{"channel"}),
		failed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_notify_failed_attempts_total",
			Help: "Delivery attempts that failed, by channel (each retry counts).",
		}, []string{"channel"}),
		gaveUp: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_notify_undelivered_total",
			Help: "Notifications given up on after their last attempt, or that reached nobody, by channel.",
		}, []string{"channel"}),
		cancelled: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_notify_cancelled_total",
			Help: "Notifications stopped before delivery because the alert was acknowledged, shelved or resolved, by channel.",
		}, []string{"channel"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vward_notify_attempt_duration_seconds",
			Help:    "Time one delivery attempt took, by channel.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"channel"}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vward_notify_pending",
		Help: "Notifications being delivered now (attempting or waiting to retry).",
	}, func() float64 {
		if m.pending == nil {
			return 0
		}
		return float64(m.pending())
	})
	return m
}

// exportChannel makes a channel's series exist at 0, so a dashboard or
// rule never meets one missing because nothing was sent yet.
func (m *Metrics) exportChannel(ch string) {
	m.sent.WithLabelValues(ch)
	m.failed.WithLabelValues(ch)
	m.gaveUp.WithLabelValues(ch)
	m.cancelled.WithLabelValues(ch)
	m.duration.WithLabelValues(ch)
}

func (m *Metrics) sentCount(ch string)      { m.sent.WithLabelValues(ch).Inc() }
func (m *Metrics) failedCount(ch string)    { m.failed.WithLabelValues(ch).Inc() }
func (m *Metrics) undelivered(ch string)    { m.gaveUp.WithLabelValues(ch).Inc() }
func (m *Metrics) cancelledCount(ch string) { m.cancelled.WithLabelValues(ch).Inc() }
func (m *Metrics) observe(ch string, d time.Duration) {
	m.duration.WithLabelValues(ch).Observe(d.Seconds())
}
