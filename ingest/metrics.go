package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the ingest pipeline's Prometheus metrics; the broker
// connection's are mqttsource's. Build one per node with NewMetrics on the
// node's registry, never the global one, so that tests can run several
// nodes in one process.
type Metrics struct {
	Received       *prometheus.CounterVec // by format
	Redelivered    prometheus.Counter
	Duplicates     prometheus.Counter
	Rejected       *prometheus.CounterVec // by code
	MessagesStored prometheus.Counter
	ReadingsStored prometheus.Counter
	Acked          prometheus.Counter
	InFlight       prometheus.Gauge
	InFlightBytes  prometheus.Gauge
	WriteDuration  prometheus.Histogram
	WriteFailures  *prometheus.CounterVec // by store
	StoreUp        prometheus.Gauge
}

// NewMetrics builds the ingest metrics and registers them on reg; a nil
// reg leaves them unregistered (for tests that do not look).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		Received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_ingest_messages_received_total",
			Help: "Device messages received from the broker, redeliveries included, by topic (readings, senml, status).",
		}, []string{"format"}),
		Redelivered: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_ingest_messages_redelivered_total",
			Help: "Messages the broker marked as redelivered (MQTT DUP flag).",
		}),
		Duplicates: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_ingest_messages_duplicate_total",
			Help: "Messages whose device and msg_id were seen recently with the same payload: stored and acknowledged again, not scored again.",
		}),
		Rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_ingest_messages_rejected_total",
			Help: "Messages refused in whole or in part and kept as dead letters, by rejection code.",
		}, []string{"code"}),
		MessagesStored: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_ingest_messages_stored_total",
			Help: "Messages with at least one reading, stored in the history and then acknowledged.",
		}),
		ReadingsStored: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_ingest_readings_stored_total",
			Help: "Readings written to the history (a redelivered reading overwrites its first copy and counts again).",
		}),
		Acked: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_ingest_messages_acked_total",
			Help: "Messages acknowledged to the broker after their readings or dead letter were stored.",
		}),
		InFlight: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_ingest_messages_in_flight",
			Help: "Messages received and not yet acknowledged; capped by --max-inflight.",
		}),
		InFlightBytes: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_ingest_in_flight_bytes",
			Help: "Payload bytes of the messages in flight; capped by --max-inflight-bytes.",
		}),
		WriteDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "vward_ingest_store_write_duration_seconds",
			Help:    "Duration of successful batch writes of readings to the history.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12), // 1 ms … ~60 s
		}),
		WriteFailures: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_ingest_store_write_failures_total",
			Help: "Failed write attempts, retried with backoff while acknowledgements are held, by store (history, dead_letters).",
		}, []string{"store"}),
		StoreUp: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_ingest_store_up",
			Help: "1 when the last write to the history and dead-letter store succeeded, 0 while writes fail.",
		}),
	}
	m.StoreUp.Set(1)
	for _, f := range []string{string(FormatV1), string(FormatSenML), statusLeaf, questionnaireLeaf} {
		m.Received.WithLabelValues(f)
	}
	for _, s := range []string{storeHistory, storeDeadLetters, storeQuestionnaires} {
		m.WriteFailures.WithLabelValues(s)
	}
	return m
}

// Store labels of WriteFailures.
const (
	storeHistory        = "history"
	storeDeadLetters    = "dead_letters"
	storeQuestionnaires = "questionnaires"
)
