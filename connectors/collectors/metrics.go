package collectors

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the collectors.
type Metrics struct {
	collections *prometheus.CounterVec
	resources   *prometheus.CounterVec
	seconds     *prometheus.HistogramVec
	fanout      *prometheus.CounterVec
}

// NewMetrics registers the collector metrics with reg; a nil reg leaves
// them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		collections: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_collector_collections_total",
			Help: "Collections of one kind in one region, by provider, kind and outcome (ok, error, permanent).",
		}, []string{"provider", "kind", "outcome"}),
		resources: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_collector_resources_total",
			Help: "Resources collected and published, by provider and kind.",
		}, []string{"provider", "kind"}),
		seconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fleetstream_collector_collect_seconds",
			Help:    "Time to collect one kind in one region, API calls and publishing included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"provider", "kind"}),
		fanout: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_collector_fanout_tasks_total",
			Help: "collect_kind tasks enqueued by collect_all, by provider.",
		}, []string{"provider"}),
	}
}
