package database

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
)

// Metrics of the database aggregate: fleetstream_database_commands_total,
// fleetstream_database_events_emitted_total and
// fleetstream_database_dead_letters_total.
type Metrics aggregate.Metrics

// NewMetrics registers the database aggregate's metrics with reg; a nil
// reg leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return (*Metrics)(aggregate.NewMetrics(reg, AggregateType))
}
