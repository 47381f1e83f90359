package tasks

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Outcomes of a task reaching a worker or the relay, as metric labels.
const (
	outcomeCompleted = "completed"
	outcomeRetried   = "retried"
	outcomeDead      = "dead"
	outcomeCancelled = "cancelled"
	// Not due yet: handed to the retry topic without running.
	outcomeScheduled = "scheduled"
	// Relay: moved back to its queue, or parked again on the retry topic.
	outcomeMoved  = "moved"
	outcomeParked = "parked"
)

// Metrics of workers, the retry relay and the scheduler.
type Metrics struct {
	finished     *prometheus.CounterVec
	runSeconds   *prometheus.HistogramVec
	waitSeconds  *prometheus.HistogramVec
	active       *prometheus.GaugeVec
	buffered     *prometheus.GaugeVec
	relayed      *prometheus.CounterVec
	held         prometheus.Gauge
	commitErrors prometheus.Counter
	leader       prometheus.Gauge
	fired        *prometheus.CounterVec
	fireErrors   *prometheus.CounterVec
}

// NewMetrics registers the task queue's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		finished: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_tasks_finished_total",
			Help: "Tasks a worker is done with, by queue, type and outcome (completed, retried, dead, cancelled, scheduled).",
		}, []string{"queue", "type", "outcome"}),
		runSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fleetstream_task_run_seconds",
			Help:    "Duration of one task attempt in its handler, by type and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"type", "outcome"}),
		waitSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fleetstream_task_wait_seconds",
			Help:    "Time from a task being due (enqueued, or its not_before) to its start, by queue.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"queue"}),
		active: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fleetstream_tasks_active",
			Help: "Tasks running on this worker, by type.",
		}, []string{"type"}),
		buffered: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fleetstream_tasks_buffered",
			Help: "Tasks fetched by this worker and waiting for a free slot, by queue.",
		}, []string{"queue"}),
		relayed: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_tasks_relayed_total",
			Help: "Retry-topic records the relay handled, by outcome (moved, parked, cancelled, dead).",
		}, []string{"outcome"}),
		held: f.NewGauge(prometheus.GaugeOpts{
			Name: "fleetstream_tasks_relay_held",
			Help: "Retry-topic records the relay holds until they are due.",
		}),
		commitErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "fleetstream_tasks_commit_errors_total",
			Help: "Failed offset commits of workers and the relay (retried with the next commit).",
		}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "fleetstream_scheduler_leader",
			Help: "1 while this scheduler is the leader that fires jobs.",
		}),
		fired: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_scheduler_fired_total",
			Help: "Jobs fired (tasks enqueued) by this scheduler, by job.",
		}, []string{"job"}),
		fireErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_scheduler_fire_errors_total",
			Help: "Jobs this scheduler failed to enqueue, by job.",
		}, []string{"job"}),
	}
}
