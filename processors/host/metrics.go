package host

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
)

// Metrics of the host aggregate: fleetstream_host_commands_total,
// fleetstream_host_events_emitted_total and
// fleetstream_host_dead_letters_total.
type Metrics aggregate.Metrics

// NewMetrics registers the host aggregate's metrics with reg; a nil reg
// leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return (*Metrics)(aggregate.NewMetrics(reg, AggregateType))
}
