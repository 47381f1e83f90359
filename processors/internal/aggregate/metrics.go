package aggregate

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of one aggregate. Aggregates declare their own Metrics type on
// it, so one aggregate's metrics cannot be passed to another's processor.
type Metrics struct {
	// Commands counts commands by command and outcome.
	Commands *prometheus.CounterVec
	// Events counts emitted events by type.
	Events *prometheus.CounterVec
	// DeadLetters counts dead-lettered records by reason.
	DeadLetters *prometheus.CounterVec
}

// NewMetrics registers the metrics of the aggregate of type aggregateType
// with reg, named fleetstream_<type>_commands_total,
// fleetstream_<type>_events_emitted_total and
// fleetstream_<type>_dead_letters_total; dashboards and alerts use these
// names. more lists the outcomes the aggregate adds to Accepted, Rejected
// and Noop, for the help text. A nil reg leaves the metrics unregistered.
func NewMetrics(reg prometheus.Registerer, aggregateType string, more ...Outcome) *Metrics {
	f := promauto.With(reg)
	prefix := "fleetstream_" + aggregateType
	outcomes := []string{string(Accepted), string(Rejected), string(Noop)}
	for _, o := range more {
		outcomes = append(outcomes, string(o))
	}
	title := noun(aggregateType)
	title = strings.ToUpper(title[:1]) + title[1:]
	return &Metrics{
		Commands: f.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_commands_total",
			Help: title + " commands processed, by command and outcome (" + strings.Join(outcomes, ", ") + ").",
		}, []string{"command", "outcome"}),
		Events: f.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_events_emitted_total",
			Help: title + " events emitted, by event type.",
		}, []string{"type"}),
		DeadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_dead_letters_total",
			Help: "Command records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
	}
}

// noun is how logs and help texts name an aggregate type: "cloud resource"
// for cloud_resource.
func noun(aggregateType string) string {
	return strings.ReplaceAll(aggregateType, "_", " ")
}
