package sapsystem

import (
	"log/slog"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// systems is the sap_system aggregate's group: SAP system commands in, the
// system in the group table, events and dead letters out.
var systems = aggregate.Definition[fleetv1.SapSystem, *fleetv1.SapSystem]{
	Type:      AggregateType,
	GroupName: kafka.SapSystemGroup,
	Commands:  func(t kafka.Topics) string { return t.SapSystemCommands },
	KeyedBy:   "SAP system id",
	Decide:    decide,
}

// NewProcessor returns the sap_system aggregate processor. Production and
// tests build it here; tests add goka.WithTester or builders through opts.
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return systems.NewProcessor(brokers, topics, (*aggregate.Metrics)(m), logger, opts...)
}

// Graph is the group graph of the sap_system aggregate.
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	return systems.Graph(topics, (*aggregate.Metrics)(m), logger)
}
