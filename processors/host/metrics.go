package host

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the host aggregate.
type Metrics struct {
	commands    *prometheus.CounterVec
	events      *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
}

// NewMetrics registers the host aggregate's metrics with reg; a nil reg
// leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		commands: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_host_commands_total",
			Help: "Host commands processed, by command and outcome (accepted, rejected, noop).",
		}, []string{"command", "outcome"}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_host_events_emitted_total",
			Help: "Host events emitted, by event type.",
		}, []string{"type"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_host_dead_letters_total",
			Help: "Command records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
	}
}
