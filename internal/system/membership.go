package system

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/processors/membership"
)

// withMembership adds to procs the process manager that cascades a host's
// heartbeat loss, return and deregistration to its clusters, SAP systems
// and databases; opts gives it its goka options by name.
func withMembership(cfg Config, opts func(name string) []goka.ProcessorOption, procs []*goka.Processor) ([]*goka.Processor, error) {
	log := cfg.Logger.With("role", "process", "processor", "membership")
	p, err := membership.NewProcessor(cfg.Brokers, cfg.Topics, membership.NewMetrics(cfg.Registry), log, opts("membership")...)
	if err != nil {
		return nil, fmt.Errorf("membership processor: %w", err)
	}
	return append(procs, p), nil
}
