package mqttsource

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the broker connection's Prometheus metrics. Their names
// keep the vward_ingest_broker_ prefix they have always had: dashboards,
// alert rules and docs/monitoring.md use them. Build one per node with
// NewMetrics on the node's registry, never the global one, so that tests
// can run several nodes in one process.
type Metrics struct {
	ConnectionsUp   prometheus.Gauge
	Delivered       *prometheus.CounterVec // by client_id
	Connects        prometheus.Counter
	ConnectionsLost prometheus.Counter
	SessionsRetired prometheus.Counter
}

// NewMetrics builds the broker connection's metrics and registers them on
// reg; a nil reg leaves them unregistered (for tests that do not look).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		ConnectionsUp: f.NewGauge(prometheus.GaugeOpts{
			Name: "vward_ingest_broker_connections_up",
			Help: "Subscriber connections to the MQTT broker that are up.",
		}),
		Delivered: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vward_ingest_broker_deliveries_total",
			Help: "Messages delivered by the broker, by subscriber connection (client_id): with shared subscriptions, how the load is spread.",
		}, []string{"client_id"}),
		Connects: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_ingest_broker_connects_total",
			Help: "Successful connections and reconnections to the MQTT broker.",
		}),
		ConnectionsLost: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_ingest_broker_connections_lost_total",
			Help: "Broker connections lost; what they had delivered and not acknowledged is redelivered.",
		}),
		SessionsRetired: f.NewCounter(prometheus.CounterOpts{
			Name: "vward_ingest_broker_sessions_retired_total",
			Help: "Unused broker sessions (--mqtt-retire-client-ids) drained and deleted.",
		}),
	}
}
