package cloudresource

import (
	"log/slog"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// resources is the aggregate's group: cloud resource commands in, the
// resource in the group table, events and dead letters out.
var resources = aggregate.Definition[fleetv1.CloudResource, *fleetv1.CloudResource]{
	Type:      AggregateType,
	GroupName: kafka.CloudResourceGroup,
	Commands:  func(t kafka.Topics) string { return t.CloudResourceCommands },
	KeyedBy:   "resource key",
	Decide:    decide,
}

// NewProcessor returns the cloud_resource aggregate processor. Production
// and tests build it here; tests add goka.WithTester or builders through
// opts.
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return resources.NewProcessor(brokers, topics, (*aggregate.Metrics)(m), logger, opts...)
}

// Group is the goka group of the aggregate in topics' namespace.
func Group(topics kafka.Topics) goka.Group { return resources.Group(topics) }

// Graph is the group graph of the aggregate: cloud resource commands in,
// the resource in the group table, events and dead letters out.
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	return resources.Graph(topics, (*aggregate.Metrics)(m), logger)
}
