package cluster

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
)

// Metrics of the cluster aggregate: fleetstream_cluster_commands_total,
// fleetstream_cluster_events_emitted_total and
// fleetstream_cluster_dead_letters_total.
type Metrics aggregate.Metrics

// NewMetrics registers the cluster aggregate's metrics with reg; a nil reg
// leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return (*Metrics)(aggregate.NewMetrics(reg, AggregateType))
}
