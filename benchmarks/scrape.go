package benchmarks

import (
	"context"
	"fmt"
	"io"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a role's /metrics: the counters and gauges by
// name, each with its label sets.
type Metrics map[string][]Series

// Series is one labelled value of a metric.
type Series struct {
	Labels map[string]string
	Value  float64
}

// Sum adds the values of name whose labels match (nil matches all); 0 when
// the metric is absent.
func (m Metrics) Sum(name string, match func(labels map[string]string) bool) float64 {
	var total float64
	for _, s := range m[name] {
		if match == nil || match(s.Labels) {
			total += s.Value
		}
	}
	return total
}

// Has reports whether the scrape holds a metric called name.
func (m Metrics) Has(name string) bool { _, ok := m[name]; return ok }

// ParseMetrics reads the Prometheus text format; histograms and summaries
// are left out (the benchmark times what it needs itself).
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := Metrics{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var v float64
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				v = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			default:
				continue
			}
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[name] = append(out[name], Series{Labels: labels, Value: v})
		}
	}
	return out, nil
}

// scrape fetches and parses url.
func scrape(ctx context.Context, client *http.Client, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return m, nil
}
