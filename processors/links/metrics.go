package links

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of the links processor.
type Metrics struct {
	inputs      *prometheus.CounterVec
	events      *prometheus.CounterVec
	messages    prometheus.Counter
	skipped     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
}

// NewMetrics registers the links processor's metrics with reg; a nil reg
// leaves them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		inputs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_links_inputs_total",
			Help: "Records processed, by input (event, discovery, loop) and outcome (applied, unchanged, stale, ignored).",
		}, []string{"input", "outcome"}),
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_links_events_emitted_total",
			Help: "Link events emitted, by event type.",
		}, []string{"type"}),
		messages: f.NewCounter(prometheus.CounterOpts{
			Name: "fleetstream_links_loop_messages_total",
			Help: "Messages sent between the two ends of links over the loop topic.",
		}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_links_skipped_total",
			Help: "Records of shared topics skipped because they do not decode; their owning stage (scenario, the sink) dead-letters them. By input.",
		}, []string{"input"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_links_dead_letters_total",
			Help: "Records sent to the dead-letter topic by the links processor, by input.",
		}, []string{"input"}),
	}
}
