// Package kafka holds what every fleetstream role shares about Kafka: the
// topic table, client construction with goka-compatible partitioning,
// goka's Sarama configuration, record headers and the dead-letter writer.
package kafka

import "strings"

// Goka group names before a namespace (Topics.Group adds it). A group's
// table topic is "<group>-table".
const (
	ScenarioGroup = "fleet.scenario"
	HostGroup     = "fleet.host"
	// Cloud resources and links (processors/cloud_resource, processors/links);
	// the links group also has a loop topic, "<group>-loop".
	CloudResourceGroup = "fleet.cloud_resource"
	LinksGroup         = "fleet.links"
	// The discovery domain's aggregates (processors/cluster, sap_system,
	// database) and the process manager keyed by host that cascades
	// heartbeat loss and deregistration to them (processors/membership).
	ClusterGroup    = "fleet.cluster"
	SapSystemGroup  = "fleet.sap_system"
	DatabaseGroup   = "fleet.database"
	MembershipGroup = "fleet.membership"
	// The reaction that tells SAP systems about their database
	// (processors/sap_system), keyed by database tenant name; it also has
	// a loop topic.
	SapDatabasesGroup = "fleet.sap_system.databases"
	// Configuration checks (processors/checks): per-target evaluation and
	// on-demand executions.
	ChecksGroup     = "fleet.checks"
	ExecutionsGroup = "fleet.checks.executions"
)

// Topic is one topic's definition.
type Topic struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// Topics names the topics of one installation; defaults come from
// DefaultTopics. A new topic name field must also be prefixed in
// WithNamespace (TestWithNamespacePrefixesEveryName checks it).
type Topics struct {
	// Namespace prefixes every topic and consumer group name: several
	// installations, or tests, can share one Kafka cluster. Empty by
	// default; set it with WithNamespace.
	Namespace string

	Discoveries  string
	HostCommands string
	Events       string
	DLQ          string
	// Collection task queue (connectors/tasks): one topic per priority,
	// the retry (and not-yet-due) topic, the compacted cancellation and
	// status tables, and the scheduler's single-partition lease topic.
	TasksHigh, TasksNormal, TasksLow string
	TasksRetry                       string
	TasksCancel                      string
	TasksStatus                      string
	TasksSchedule                    string
	// Commands of the cloud_resource aggregate, from scenario detection.
	CloudResourceCommands string
	// Commands of the discovery domain's aggregates.
	ClusterCommands, SapSystemCommands, DatabaseCommands string
	// Checks: commands of the checks processor (selection, value
	// overrides, executions), its results, and the on-demand fact
	// gathering between it and the agents (both keyed by agent id).
	ChecksCommands string
	ChecksResults  string
	AgentRequests  string
	Facts          string
	// Partitions of every co-partitioned topic: goka refuses to start when
	// the inputs and the table of one group differ.
	Partitions int32
}

// DefaultTopics are the topic names of ARCHITECTURE.md.
func DefaultTopics() Topics {
	return Topics{
		Discoveries:  "fleet.discoveries.v1",
		HostCommands: "fleet.commands.host.v1",
		Events:       "fleet.events.v1",
		DLQ:          "fleet.dlq.v1",
		Partitions:   8,

		TasksHigh:     "fleet.tasks.high.v1",
		TasksNormal:   "fleet.tasks.normal.v1",
		TasksLow:      "fleet.tasks.low.v1",
		TasksRetry:    "fleet.tasks.retry.v1",
		TasksCancel:   "fleet.tasks.cancel.v1",
		TasksStatus:   "fleet.tasks.status.v1",
		TasksSchedule: "fleet.tasks.schedule.v1",

		CloudResourceCommands: "fleet.commands.cloud_resource.v1",

		ClusterCommands:   "fleet.commands.cluster.v1",
		SapSystemCommands: "fleet.commands.sap_system.v1",
		DatabaseCommands:  "fleet.commands.database.v1",

		ChecksCommands: "fleet.commands.checks.v1",
		ChecksResults:  "fleet.checks.results.v1",
		AgentRequests:  "fleet.agent.requests.v1",
		Facts:          "fleet.facts.v1",
	}
}

// WithNamespace returns t with every topic name carrying the prefix ns
// instead of t's current one; Group adds ns to group names.
func (t Topics) WithNamespace(ns string) Topics {
	re := func(name string) string { return ns + strings.TrimPrefix(name, t.Namespace) }
	t.Discoveries = re(t.Discoveries)
	t.HostCommands = re(t.HostCommands)
	t.Events = re(t.Events)
	t.DLQ = re(t.DLQ)
	t.TasksHigh, t.TasksNormal, t.TasksLow = re(t.TasksHigh), re(t.TasksNormal), re(t.TasksLow)
	t.TasksRetry, t.TasksCancel = re(t.TasksRetry), re(t.TasksCancel)
	t.TasksStatus, t.TasksSchedule = re(t.TasksStatus), re(t.TasksSchedule)
	t.CloudResourceCommands = re(t.CloudResourceCommands)
	t.ClusterCommands, t.SapSystemCommands, t.DatabaseCommands = re(t.ClusterCommands), re(t.SapSystemCommands), re(t.DatabaseCommands)
	t.ChecksCommands, t.ChecksResults = re(t.ChecksCommands), re(t.ChecksResults)
	t.AgentRequests, t.Facts = re(t.AgentRequests), re(t.Facts)
	t.Namespace = ns
	return t
}

// Group is the namespaced name of a goka group or consumer group, e.g.
// t.Group(HostGroup): every processor, view and consumer group of an
// installation derives its name here.
func (t Topics) Group(name string) string { return t.Namespace + name }

// TableTopic is the compacted changelog topic of a goka group.
func TableTopic(group string) string { return group + "-table" }

// LoopTopic is the loopback topic of a goka group that declares goka.Loop.
func LoopTopic(group string) string { return group + "-loop" }

var (
	compacted = map[string]string{"cleanup.policy": "compact"}
	// The event store is the source of truth: never delete from it.
	forever = map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}
	// Task status and cancellations: the latest record per task, dropped
	// a week after it was written so finished tasks do not pile up.
	compactedWeek = map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "604800000"}
)

// All is the one table of every topic fleetstream uses, with partitions
// and configs. migrate and dev create them from it; goka creates nothing.
func (t Topics) All() []Topic {
	p := t.Partitions
	return []Topic{
		{Name: t.Discoveries, Partitions: p},
		{Name: t.HostCommands, Partitions: p},
		{Name: t.Events, Partitions: p, Configs: forever},
		{Name: t.DLQ, Partitions: p},
		{Name: TableTopic(t.Group(ScenarioGroup)), Partitions: p, Configs: compacted},
		{Name: TableTopic(t.Group(HostGroup)), Partitions: p, Configs: compacted},
		{Name: t.CloudResourceCommands, Partitions: p},
		{Name: TableTopic(t.Group(CloudResourceGroup)), Partitions: p, Configs: compacted},
		{Name: TableTopic(t.Group(LinksGroup)), Partitions: p, Configs: compacted},
		{Name: LoopTopic(t.Group(LinksGroup)), Partitions: p},
		{Name: t.ClusterCommands, Partitions: p},
		{Name: TableTopic(t.Group(ClusterGroup)), Partitions: p, Configs: compacted},
		{Name: t.SapSystemCommands, Partitions: p},
		{Name: TableTopic(t.Group(SapSystemGroup)), Partitions: p, Configs: compacted},
		{Name: t.DatabaseCommands, Partitions: p},
		{Name: TableTopic(t.Group(DatabaseGroup)), Partitions: p, Configs: compacted},
		{Name: TableTopic(t.Group(MembershipGroup)), Partitions: p, Configs: compacted},
		{Name: LoopTopic(t.Group(MembershipGroup)), Partitions: p},
		{Name: TableTopic(t.Group(SapDatabasesGroup)), Partitions: p, Configs: compacted},
		{Name: LoopTopic(t.Group(SapDatabasesGroup)), Partitions: p},
		{Name: t.ChecksCommands, Partitions: p},
		{Name: t.ChecksResults, Partitions: p},
		{Name: TableTopic(t.Group(ChecksGroup)), Partitions: p, Configs: compacted},
		{Name: LoopTopic(t.Group(ChecksGroup)), Partitions: p},
		{Name: TableTopic(t.Group(ExecutionsGroup)), Partitions: p, Configs: compacted},
		{Name: LoopTopic(t.Group(ExecutionsGroup)), Partitions: p},
		{Name: t.AgentRequests, Partitions: p},
		{Name: t.Facts, Partitions: p},
		{Name: t.TasksHigh, Partitions: p},
		{Name: t.TasksNormal, Partitions: p},
		{Name: t.TasksLow, Partitions: p},
		{Name: t.TasksRetry, Partitions: p},
		{Name: t.TasksCancel, Partitions: p, Configs: compactedWeek},
		{Name: t.TasksStatus, Partitions: p, Configs: compactedWeek},
		// One partition: its owner in the scheduler group is the leader.
		{Name: t.TasksSchedule, Partitions: 1, Configs: compacted},
	}
}
