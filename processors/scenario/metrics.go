package scenario

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of scenario detection.
type Metrics struct {
	discoveries *prometheus.CounterVec
	commands    *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	forgotten   prometheus.Counter
}

// NewMetrics registers scenario detection's metrics with reg; a nil reg
// leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		discoveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_scenario_discoveries_total",
			Help: "Discoveries processed, by discovery type and outcome (commands, unchanged, no_difference, no_policy, host_unknown: heartbeats and held host facts before the host's first discovery, stale: chunks of an older or already complete resource collection).",
		}, []string{"type", "outcome"}),
		commands: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_scenario_commands_emitted_total",
			Help: "Commands emitted, by command.",
		}, []string{"command"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_scenario_dead_letters_total",
			Help: "Discovery records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		forgotten: f.NewCounter(prometheus.CounterOpts{
			Name: "fleetstream_scenario_agents_forgotten_total",
			Help: "Agents forgotten because their host was deregistered: their next discoveries register it again.",
		}),
	}
}
