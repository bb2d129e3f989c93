package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one read of vward's /metrics, by metric family name.
type scrape struct {
	at       time.Time
	families map[string]*dto.MetricFamily
}

// scrapeMetrics reads vward's /metrics with the Prometheus text parser.
func scrapeMetrics(ctx context.Context, base string) (scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return scrape{}, fmt.Errorf("scrape %s/metrics: %w", base, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return scrape{}, fmt.Errorf("scrape %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return scrape{}, fmt.Errorf("scrape %s/metrics: %s", base, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return scrape{}, fmt.Errorf("parse %s/metrics: %w", base, err)
	}
	return scrape{at: time.Now(), families: fams}, nil
}

// has says whether vward exposes the family at all: the journal's are
// absent when it runs without one.
func (s scrape) has(name string) bool { return s.families[name] != nil }

// value is the family's unlabelled sample (gauge, counter or untyped); 0
// when absent.
func (s scrape) value(name string) float64 {
	f := s.families[name]
	if f == nil || len(f.Metric) == 0 {
		return 0
	}
	m := f.Metric[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// histogram is the family's unlabelled histogram, or nil.
func (s scrape) histogram(name string) *dto.Histogram {
	f := s.families[name]
	if f == nil || len(f.Metric) == 0 {
		return nil
	}
	return f.Metric[0].Histogram
}

// metric reads unlabelled samples from vward's /metrics.
func metric(ctx context.Context, base string, names ...string) (map[string]float64, error) {
	s, err := scrapeMetrics(ctx, base)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(names))
	for _, n := range names {
		if s.has(n) {
			out[n] = s.value(n)
		}
	}
	return out, nil
}

// histogramQuantile is the q-quantile of the observations made between two
// reads of one histogram (before may be nil: from its start), interpolated
// linearly within a bucket as Prometheus's histogram_quantile does; an
// observation in the +Inf bucket counts as the highest finite bound. It is
// 0 with no observations in between.
func histogramQuantile(q float64, before, after *dto.Histogram) float64 {
	if after == nil {
		return 0
	}
	prior := map[float64]uint64{}
	var priorCount uint64
	if before != nil {
		for _, b := range before.Bucket {
			prior[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		priorCount = before.GetSampleCount()
	}
	total := after.GetSampleCount() - priorCount
	if total == 0 || after.GetSampleCount() < priorCount {
		return 0
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for _, b := range after.Bucket {
		upper := b.GetUpperBound()
		cum := b.GetCumulativeCount() - prior[upper]
		if math.IsInf(upper, +1) {
			return lower
		}
		if float64(cum) >= rank {
			in := cum - below
			if in == 0 {
				return upper
			}
			return lower + (upper-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = upper, cum
	}
	// Above every bucket's bound: the text format's implicit +Inf.
	return lower
}

// histogramCount is how many observations a histogram gained between two
// reads.
func histogramCount(before, after *dto.Histogram) int64 {
	if after == nil {
		return 0
	}
	return int64(after.GetSampleCount() - before.GetSampleCount())
}
