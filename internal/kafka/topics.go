// Package kafka holds what every fleetstream role shares about Kafka: the
// topic table, client construction with goka-compatible partitioning,
// goka's Sarama configuration, record headers and the dead-letter writer.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Goka group names. A group's table topic is "<group>-table".
const (
	ScenarioGroup = "fleet.scenario"
	HostGroup     = "fleet.host"
)

// Topic is one topic's definition.
type Topic struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// Topics names the topics of one installation; defaults come from
// DefaultTopics.
type Topics struct {
	Discoveries  string
	HostCommands string
	Events       string
	DLQ          string
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
	}
}

// TableTopic is the compacted changelog topic of a goka group.
func TableTopic(group string) string { return group + "-table" }

var (
	compacted = map[string]string{"cleanup.policy": "compact"}
	// The event store is the source of truth: never delete from it.
	forever = map[string]string{"cleanup.policy": "delete", "retention.ms": "-1"}
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
		{Name: TableTopic(ScenarioGroup), Partitions: p, Configs: compacted},
		{Name: TableTopic(HostGroup), Partitions: p, Configs: compacted},
	}
}

// EnsureTopics creates the missing topics and verifies the partition count
// of the existing ones. replication is 1 on a single broker.
func EnsureTopics(ctx context.Context, adm *kadm.Client, topics []Topic, replication int16) error {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	existing, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var problems []string
	for _, t := range topics {
		if d, ok := existing[t.Name]; ok && d.Err == nil {
			if got := int32(len(d.Partitions)); got != t.Partitions {
				problems = append(problems, fmt.Sprintf("topic %s has %d partitions, want %d (recreate it or set the partition count to %d)", t.Name, got, t.Partitions, got))
			}
			continue
		}
		cfg := make(map[string]*string, len(t.Configs))
		for k, v := range t.Configs {
			cfg[k] = kadm.StringPtr(v)
		}
		resp, err := adm.CreateTopic(ctx, t.Partitions, replication, cfg, t.Name)
		if err != nil {
			return fmt.Errorf("create topic %s: %w", t.Name, err)
		}
		if resp.Err != nil && !strings.Contains(resp.Err.Error(), "TOPIC_ALREADY_EXISTS") {
			return fmt.Errorf("create topic %s: %w", t.Name, resp.Err)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
