package facts

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics of fact gathering and of the agent's fact service.
type Metrics struct {
	gatherSeconds *prometheus.HistogramVec
	gatherErrors  *prometheus.CounterVec
	requests      *prometheus.CounterVec
	publications  *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg; a nil reg leaves them
// unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		gatherSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fleetstream_agent_fact_gather_seconds",
			Help:    "Time to gather one fact, by gatherer (name@vN; \"unknown\" for names this agent lacks).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"gatherer"}),
		gatherErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_agent_fact_gather_errors_total",
			Help: "Facts that could not be gathered, by gatherer and kind (missing, argument, timeout, unknown_gatherer, failed).",
		}, []string{"gatherer", "kind"}),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_agent_fact_requests_total",
			Help: "FactsGatheringRequested records addressed to this agent, by outcome (answered, stale, dead_lettered, failed).",
		}, []string{"outcome"}),
		publications: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_agent_facts_published_total",
			Help: "FactsGathered records published, by trigger (request, periodic); periodic_unchanged counts periodic rounds with nothing new, not published.",
		}, []string{"trigger"}),
		deadLetters: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_agent_fact_dead_letters_total",
			Help: "Requests sent to the dead-letter topic, by reason (undecodable, wrong_agent, invalid).",
		}, []string{"reason"}),
	}
}

func (m *Metrics) observe(gatherer string, known bool, d time.Duration, err error) {
	if m == nil {
		return
	}
	if !known {
		gatherer = "unknown" // a label per name a check made up would grow without bound
	}
	m.gatherSeconds.WithLabelValues(gatherer).Observe(d.Seconds())
	if err != nil {
		m.gatherErrors.WithLabelValues(gatherer, errorKind(err)).Inc()
	}
}

func (m *Metrics) request(outcome string) {
	if m != nil {
		m.requests.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) published(trigger string) {
	if m != nil {
		m.publications.WithLabelValues(trigger).Inc()
	}
}

func (m *Metrics) deadLetter(reason string) {
	if m != nil {
		m.deadLetters.WithLabelValues(reason).Inc()
	}
}
