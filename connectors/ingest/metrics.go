package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the ingest endpoint.
type Metrics struct {
	requests       *prometheus.CounterVec
	bytes          prometheus.Counter
	seconds        prometheus.Histogram
	produceSeconds prometheus.Histogram
}

// NewMetrics registers the ingest metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_ingest_requests_total",
			Help: "Ingest requests by discovery type and HTTP status.",
		}, []string{"type", "code"}),
		bytes: f.NewCounter(prometheus.CounterOpts{
			Name: "fleetstream_ingest_payload_bytes_total",
			Help: "Payload bytes accepted and produced to Kafka.",
		}),
		seconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "fleetstream_ingest_request_seconds",
			Help:    "Ingest request duration, including the wait for Kafka.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		produceSeconds: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "fleetstream_ingest_produce_seconds",
			Help:    "Time from produce to Kafka's acks=all acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
}
