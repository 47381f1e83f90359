package checks

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the checks processors (continuous evaluation and executions).
type Metrics struct {
	inputs         *prometheus.CounterVec
	events         *prometheus.CounterVec
	evaluations    *prometheus.CounterVec
	resultChanges  *prometheus.CounterVec
	healthCommands *prometheus.CounterVec
	skipped        *prometheus.CounterVec
	deadLetters    *prometheus.CounterVec
	executions     *prometheus.CounterVec
	factRequests   prometheus.Counter
}

// NewMetrics registers the checks processors' metrics with reg; a nil reg
// leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		inputs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_checks_inputs_total",
			Help: "Records processed by the checks processors, by input (event, discovery, facts, command, loop, execution_command, execution_facts, expiry) and outcome (applied, unchanged, stale, ignored, rejected).",
		}, []string{"input", "outcome"}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_checks_events_emitted_total",
			Help: "Checks events emitted, by event type.",
		}, []string{"type"}),
		evaluations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_checks_evaluations_total",
			Help: "Check evaluations in continuous evaluation (one check on one target: a host, or a cluster over all its nodes), by result (passing, warning, critical, error); a check waiting for a fact is not evaluated.",
		}, []string{"result"}),
		resultChanges: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_checks_result_changes_total",
			Help: "Check results that changed in continuous evaluation, by the new result (none: no longer evaluated).",
		}, []string{"result"}),
		healthCommands: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_checks_health_commands_total",
			Help: "UpdateChecksHealth commands sent, by target type (host, cluster).",
		}, []string{"target_type"}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_checks_skipped_total",
			Help: "Records of shared topics skipped because they do not decode; their owning stage dead-letters them. By input.",
		}, []string{"input"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_checks_dead_letters_total",
			Help: "Records sent to the dead-letter topic by the checks processors, by input.",
		}, []string{"input"}),
		executions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_checks_executions_total",
			Help: "On-demand executions completed, by result (passing, warning, critical).",
		}, []string{"result"}),
		factRequests: f.NewCounter(prometheus.CounterOpts{
			Name: "fleetstream_checks_fact_requests_total",
			Help: "FactsGatheringRequested records sent to agents by executions.",
		}),
	}
}
