package clickhouse

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the sink's Prometheus metrics.
type Metrics struct {
	rows          *prometheus.CounterVec
	batches       prometheus.Counter
	batchDuration prometheus.Histogram
	deadLetters   *prometheus.CounterVec
	retries       *prometheus.CounterVec
	commitErrors  prometheus.Counter
	lag           *prometheus.GaugeVec
}

// Dead-letter reasons (the dead_letters_total label).
const (
	reasonUndecodable = "undecodable" // not a fleetstream.v1.Event
	reasonInvalid     = "invalid"     // an Event this sink cannot project
)

// NewMetrics creates the sink's metrics and registers them with reg (nil:
// not registered, for callers that do not export metrics).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "fleetstream", "clickhouse_sink"
	m := &Metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rows_total",
			Help: "Rows inserted into ClickHouse, by table (redelivered events count again).",
		}, []string{"table"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "batches_total",
			Help: "Batches written to ClickHouse and committed to Kafka.",
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "batch_duration_seconds",
			Help:    "Time from the start of a batch's flush (dead letters, inserts with retries) to its offset commit.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "dead_letters_total",
			Help: "Records sent to the dead-letter topic instead of ClickHouse, by reason (undecodable, invalid).",
		}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "write_retries_total",
			Help: "Failed writes that were retried, by target (events, hosts, clusters, sap_systems, databases, cloud_resources, links, dlq).",
		}, []string{"target"}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "commit_errors_total",
			Help: "Offset commits that failed after the batch was written; its records are delivered again (harmless duplicates).",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "lag_records",
			Help: "Records between the last committed offset and the high watermark seen when the batch was fetched, by owned partition.",
		}, []string{"partition"}),
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.batches, m.batchDuration, m.deadLetters, m.retries, m.commitErrors, m.lag)
	}
	return m
}
