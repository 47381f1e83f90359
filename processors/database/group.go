package database

import (
	"log/slog"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// databases is the database aggregate's group: database commands in, the
// database in the group table, events and dead letters out.
var databases = aggregate.Definition[fleetv1.Database, *fleetv1.Database]{
	Type:      AggregateType,
	GroupName: kafka.DatabaseGroup,
	Commands:  func(t kafka.Topics) string { return t.DatabaseCommands },
	KeyedBy:   "database id",
	Decide:    decide,
}

// NewProcessor returns the database aggregate processor. Production and
// tests build it here; tests add goka.WithTester or builders through opts.
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return databases.NewProcessor(brokers, topics, (*aggregate.Metrics)(m), logger, opts...)
}

// Graph is the group graph of the database aggregate.
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	return databases.Graph(topics, (*aggregate.Metrics)(m), logger)
}
