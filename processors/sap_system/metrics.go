package sapsystem

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
)

// Metrics of the sap_system aggregate: fleetstream_sap_system_commands_total,
// fleetstream_sap_system_events_emitted_total and
// fleetstream_sap_system_dead_letters_total.
type Metrics aggregate.Metrics

// NewMetrics registers the sap_system aggregate's metrics with reg; a nil
// reg leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return (*Metrics)(aggregate.NewMetrics(reg, AggregateType))
}
