package cloudresource

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
)

// Metrics of the cloud_resource aggregate:
// fleetstream_cloud_resource_commands_total,
// fleetstream_cloud_resource_events_emitted_total and
// fleetstream_cloud_resource_dead_letters_total.
type Metrics aggregate.Metrics

// NewMetrics registers the aggregate's metrics with reg; a nil reg leaves
// them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return (*Metrics)(aggregate.NewMetrics(reg, AggregateType, outcomeStale))
}
