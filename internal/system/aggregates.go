package system

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/processors/cluster"
)

// withClusters adds to procs the cluster aggregate; opts gives it its goka
// options by name.
func withClusters(cfg Config, opts func(name string) []goka.ProcessorOption, procs []*goka.Processor) ([]*goka.Processor, error) {
	log := cfg.Logger.With("role", "process", "processor", "cluster")
	p, err := cluster.NewProcessor(cfg.Brokers, cfg.Topics, cluster.NewMetrics(cfg.Registry), log, opts("cluster")...)
	if err != nil {
		return nil, fmt.Errorf("cluster processor: %w", err)
	}
	return append(procs, p), nil
}
