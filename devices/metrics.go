package devices

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Counts is the size of the registry.
type Counts struct {
	Wards int
	// Patients by status (StatusAdmitted, StatusPaused, StatusDischarged).
	Patients map[string]int
	// Bound devices are assigned to a patient now; unbound ones are not.
	Bound, Unbound int
}

// Count reads the registry's size.
func (r *Registry) Count(ctx context.Context) (Counts, error) {
	c := Counts{Patients: map[string]int{StatusAdmitted: 0, StatusPaused: 0, StatusDischarged: 0}}
	if err := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM wards`).Scan(&c.Wards); err != nil {
		return c, fmt.Errorf("count wards: %w", err)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT status, COUNT(*) FROM patients GROUP BY status`)
	if err != nil {
		return c, fmt.Errorf("count patients: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return c, fmt.Errorf("count patients: %w", err)
		}
		c.Patients[s] = n
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("count patients: %w", err)
	}
	var all int
	err = r.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM devices),
		(SELECT COUNT(DISTINCT device_id) FROM device_bindings WHERE bound_to IS NULL)`).Scan(&all, &c.Bound)
	if err != nil {
		return c, fmt.Errorf("count devices: %w", err)
	}
	c.Unbound = all - c.Bound
	return c, nil
}

var (
	wardsDesc    = prometheus.NewDesc("vward_registry_wards", "Wards in the registry.", nil, nil)
	patientsDesc = prometheus.NewDesc("vward_registry_patients",
		"Patients in the registry, by status (admitted: monitored at home; paused: in hospital for now; discharged).", []string{"state"}, nil)
	devicesDesc = prometheus.NewDesc("vward_registry_devices",
		"Registered devices, by whether they are assigned to a patient now (bound) or not (unbound).", []string{"state"}, nil)
)

// countTimeout bounds the registry's counts at a scrape.
const countTimeout = 5 * time.Second

// Collector returns the registry's metrics for a Prometheus registry; a
// scrape reads them from the store.
func (r *Registry) Collector() prometheus.Collector { return registryCollector{r} }

type registryCollector struct{ r *Registry }

func (registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- wardsDesc
	ch <- patientsDesc
	ch <- devicesDesc
}

func (c registryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	n, err := c.r.Count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(wardsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(wardsDesc, prometheus.GaugeValue, float64(n.Wards))
	for s, k := range n.Patients {
		ch <- prometheus.MustNewConstMetric(patientsDesc, prometheus.GaugeValue, float64(k), s)
	}
	ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(n.Bound), "bound")
	ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(n.Unbound), "unbound")
}
