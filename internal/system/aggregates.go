package system

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/processors/cluster"
	"github.com/fleetstream/fleetstream/processors/database"
	sapsystem "github.com/fleetstream/fleetstream/processors/sap_system"
)

// withDiscoveryAggregates adds to procs the discovery domain's aggregates
// (cluster, database, sap_system) and the reaction that tells SAP systems
// about their database; opts gives each its goka options by name. Their
// command, table and loop topics are in kafka.Topics.All.
func withDiscoveryAggregates(cfg Config, opts func(name string) []goka.ProcessorOption, procs []*goka.Processor) ([]*goka.Processor, error) {
	log := cfg.Logger.With("role", "process")
	cl, err := cluster.NewProcessor(cfg.Brokers, cfg.Topics, cluster.NewMetrics(cfg.Registry), log.With("processor", "cluster"), opts("cluster")...)
	if err != nil {
		return nil, fmt.Errorf("cluster processor: %w", err)
	}
	db, err := database.NewProcessor(cfg.Brokers, cfg.Topics, database.NewMetrics(cfg.Registry), log.With("processor", "database"), opts("database")...)
	if err != nil {
		return nil, fmt.Errorf("database processor: %w", err)
	}
	sap, err := sapsystem.NewProcessor(cfg.Brokers, cfg.Topics, sapsystem.NewMetrics(cfg.Registry), log.With("processor", "sap_system"), opts("sap_system")...)
	if err != nil {
		return nil, fmt.Errorf("sap_system processor: %w", err)
	}
	reaction, err := sapsystem.NewReaction(cfg.Brokers, cfg.Topics, sapsystem.NewReactionMetrics(cfg.Registry), log.With("processor", "sap_system.databases"), opts("sap_system.databases")...)
	if err != nil {
		return nil, fmt.Errorf("sap_system database reaction: %w", err)
	}
	return append(procs, cl, db, sap, reaction), nil
}
