package cluster

import (
	"log/slog"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// clusters is the cluster aggregate's group: cluster commands in, the
// cluster in the group table, events and dead letters out.
var clusters = aggregate.Definition[fleetv1.Cluster, *fleetv1.Cluster]{
	Type:      AggregateType,
	GroupName: kafka.ClusterGroup,
	Commands:  func(t kafka.Topics) string { return t.ClusterCommands },
	KeyedBy:   "cluster id",
	Decide:    decide,
}

// NewProcessor returns the cluster aggregate processor. Production and
// tests build it here; tests add goka.WithTester or builders through opts.
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return clusters.NewProcessor(brokers, topics, (*aggregate.Metrics)(m), logger, opts...)
}

// Graph is the group graph of the cluster aggregate.
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	return clusters.Graph(topics, (*aggregate.Metrics)(m), logger)
}
