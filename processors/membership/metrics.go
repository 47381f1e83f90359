package membership

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the membership process manager.
type Metrics struct {
	inputs      *prometheus.CounterVec
	commands    *prometheus.CounterVec
	updates     prometheus.Counter
	skipped     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
}

// NewMetrics registers the membership process manager's metrics with reg;
// a nil reg leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		inputs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_membership_inputs_total",
			Help: "Records processed, by input (event, loop) and outcome (applied, unchanged, stale, ignored).",
		}, []string{"input", "outcome"}),
		commands: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_membership_commands_total",
			Help: "Cascade commands sent to clusters, SAP systems and databases, by command type.",
		}, []string{"type"}),
		updates: f.NewCounter(prometheus.CounterOpts{
			Name: "fleetstream_membership_loop_messages_total",
			Help: "Membership updates sent from aggregates to their hosts over the loop topic.",
		}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_membership_skipped_total",
			Help: "Records of shared topics skipped because they do not decode; the sink dead-letters them. By input.",
		}, []string{"input"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_membership_dead_letters_total",
			Help: "Records sent to the dead-letter topic by the membership process manager, by input.",
		}, []string{"input"}),
	}
}
