package host

import (
	"log/slog"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// hosts is the host aggregate's group: host commands in, the host in the
// group table, events and dead letters out.
var hosts = aggregate.Definition[fleetv1.Host, *fleetv1.Host]{
	Type:      AggregateType,
	GroupName: kafka.HostGroup,
	Commands:  func(t kafka.Topics) string { return t.HostCommands },
	KeyedBy:   "host id",
	Decide:    decide,
	// The heartbeat sweep (sweep.go).
	Visit: sweepCommand,
}

// NewProcessor returns the host aggregate processor. Production and tests
// build it here; tests add goka.WithTester or builders through opts.
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return hosts.NewProcessor(brokers, topics, (*aggregate.Metrics)(m), logger, opts...)
}

// Graph is the group graph of the host aggregate: host commands in, the
// host in the group table, events and dead letters out.
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	return hosts.Graph(topics, (*aggregate.Metrics)(m), logger)
}
