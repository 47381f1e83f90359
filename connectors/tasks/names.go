package tasks

import (
	"fmt"
	"strings"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Consumer group names before the installation's namespace
// (kafka.Topics.Group adds it).
const (
	// DefaultWorkerGroup consumes the priority topics.
	DefaultWorkerGroup = "fleet.tasks.workers"
	// DefaultRelayGroup consumes the retry topic.
	DefaultRelayGroup = "fleet.tasks.relay"
	// DefaultSchedulerGroup elects the scheduler leader.
	DefaultSchedulerGroup = "fleet.tasks.scheduler"
)

// dlqStage names this package in dead-letter headers.
const dlqStage = "tasks"

// Header names the task queue adds to its records.
const (
	HeaderTaskID   = "task-id"
	HeaderTaskType = "task-type"
)

// priorities in dispatch order; index = queue index everywhere.
var priorities = [3]fleetv1.Priority{fleetv1.Priority_PRIORITY_HIGH, fleetv1.Priority_PRIORITY_NORMAL, fleetv1.Priority_PRIORITY_LOW}

var queueNames = [3]string{"high", "normal", "low"}

// queueIndex maps a priority to its index; unspecified runs as normal.
func queueIndex(p fleetv1.Priority) int {
	switch p {
	case fleetv1.Priority_PRIORITY_HIGH:
		return 0
	case fleetv1.Priority_PRIORITY_LOW:
		return 2
	}
	return 1
}

// QueueName is the queue of a priority: high, normal or low.
func QueueName(p fleetv1.Priority) string { return queueNames[queueIndex(p)] }

// ParseQueue reads a queue name; "" is normal.
func ParseQueue(s string) (fleetv1.Priority, error) {
	if s == "" {
		return fleetv1.Priority_PRIORITY_NORMAL, nil
	}
	for i, n := range queueNames {
		if strings.EqualFold(s, n) {
			return priorities[i], nil
		}
	}
	return 0, fmt.Errorf("queue %q: use high, normal or low", s)
}

// queueTopics are the priority topics in queue order.
func queueTopics(t kafka.Topics) [3]string { return [3]string{t.TasksHigh, t.TasksNormal, t.TasksLow} }

// topicFor is the priority topic of p.
func topicFor(t kafka.Topics, p fleetv1.Priority) string { return queueTopics(t)[queueIndex(p)] }

var stateNames = map[fleetv1.TaskState]string{
	fleetv1.TaskState_TASK_STATE_PENDING:   "pending",
	fleetv1.TaskState_TASK_STATE_SCHEDULED: "scheduled",
	fleetv1.TaskState_TASK_STATE_ACTIVE:    "active",
	fleetv1.TaskState_TASK_STATE_RETRYING:  "retrying",
	fleetv1.TaskState_TASK_STATE_COMPLETED: "completed",
	fleetv1.TaskState_TASK_STATE_DEAD:      "dead",
	fleetv1.TaskState_TASK_STATE_CANCELLED: "cancelled",
}

// StateName is the lower-case name of a state, as the API shows it.
func StateName(s fleetv1.TaskState) string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return "unknown"
}

// ParseState reads a state name as StateName writes it.
func ParseState(s string) (fleetv1.TaskState, error) {
	for st, n := range stateNames {
		if strings.EqualFold(s, n) {
			return st, nil
		}
	}
	return 0, fmt.Errorf("state %q: use pending, scheduled, active, retrying, completed, dead or cancelled", s)
}

// finished reports whether a task in state s will not run again by itself.
func finished(s fleetv1.TaskState) bool {
	switch s {
	case fleetv1.TaskState_TASK_STATE_COMPLETED, fleetv1.TaskState_TASK_STATE_DEAD, fleetv1.TaskState_TASK_STATE_CANCELLED:
		return true
	}
	return false
}
