package journal

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the journal's Prometheus metrics. Build one per node with
// NewMetrics on the node's registry; a nil registry leaves them
// unregistered.
type Metrics struct {
	Messages        prometheus.Gauge
	Bytes           prometheus.Gauge
	MaxBytes        prometheus.Gauge
	Full            prometheus.Gauge
	HistoryUp       prometheus.Gauge
	Appended        prometheus.Counter
	Forwarded       prometheus.Counter
	Refused         prometheus.Counter
	Unreadable      prometheus.Counter
	ForwardFailures prometheus.Counter
	AppendDuration  prometheus.Histogram
	ForwardDuration prometheus.Histogram
	// oldest is the journal's oldest entry not forwarded (unix nanos, 0
	// for none), read at each scrape so that its age grows while the
	// forwarder waits on the history.
	oldest atomic.Int64
}

// NewMetrics builds the journal's metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Messages: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_journal_messages",
			Help: "Device messages in the journal not yet confirmed by the history.",
		}),
		Bytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_journal_bytes",
			Help: "Bytes of the journal's entries not yet confirmed by the history.",
		}),
		MaxBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_journal_max_bytes",
			Help: "The journal's bound (--journal-max-bytes); when it is reached, acknowledgements are held.",
		}),
		Full: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_journal_full",
			Help: "1 while the journal refuses writes for want of room: acknowledgements are held and alerting can stall.",
		}),
		HistoryUp: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_journal_history_up",
			Help: "1 when the last forward to the history succeeded, 0 while forwards fail.",
		}),
		Appended: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_journal_appended_messages_total",
			Help: "Device messages written to the journal (fsync'd) and so acknowledgeable.",
		}),
		Forwarded: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_journal_forwarded_messages_total",
			Help: "Device messages forwarded from the journal and confirmed by the history.",
		}),
		Refused: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_journal_refused_writes_total",
			Help: "Writes the journal refused because it was full.",
		}),
		Unreadable: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_journal_unreadable_entries_total",
			Help: "Journal entries that could not be decoded and so were not forwarded.",
		}),
		ForwardFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_journal_forward_failures_total",
			Help: "Failed writes of journal entries to the history, retried with backoff.",
		}),
		AppendDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "vward_journal_append_duration_seconds",
			Help:    "Time to write and fsync one batch to the journal.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2.5, 12), // 0.2 ms … ~5 s
		}),
		ForwardDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "vward_journal_forward_duration_seconds",
			Help:    "Duration of successful writes of journal entries to the history.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vward_journal_oldest_age_seconds",
		Help: "Age of the oldest journal entry not yet confirmed by the history: how far behind the history is; 0 when it has everything.",
	}, func() float64 {
		if o := m.oldest.Load(); o != 0 {
			return max(0, time.Since(time.Unix(0, o)).Seconds())
		}
		return 0
	})
	m.HistoryUp.Set(1)
	return m
}
