package cloudresource

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the cloud_resource aggregate.
type Metrics struct {
	commands    *prometheus.CounterVec
	events      *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
}

// NewMetrics registers the aggregate's metrics with reg; a nil reg leaves
// them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		commands: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_cloud_resource_commands_total",
			Help: "Cloud resource commands processed, by command and outcome (accepted, rejected, noop, stale).",
		}, []string{"command", "outcome"}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_cloud_resource_events_emitted_total",
			Help: "Cloud resource events emitted, by event type.",
		}, []string{"type"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_cloud_resource_dead_letters_total",
			Help: "Command records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
	}
}
