package system

import (
	"context"
	"fmt"
	"time"

	"github.com/lovoo/goka"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/processors/checks"
	"github.com/fleetstream/fleetstream/processors/checks/catalog"
)

// ChecksConfig configures the checks processors and API.
type ChecksConfig struct {
	// CatalogDirs are loaded next to the embedded catalog.
	CatalogDirs []string
	// ExecutionTimeout is how long agents have to answer an execution;
	// 0: checks.DefaultExecutionTimeout.
	ExecutionTimeout time.Duration
	// ExpiryInterval is how often running executions are checked against
	// their deadline; 0: one second.
	ExpiryInterval time.Duration
}

// checksRules loads the catalog the checks processors and API use.
func checksRules(cfg Config) (*checks.Rules, error) {
	cat, err := catalog.Load(cfg.Checks.CatalogDirs...)
	if err != nil {
		return nil, fmt.Errorf("checks catalog: %w", err)
	}
	return checks.NewRules(cat), nil
}

// withChecks adds the continuous evaluation and executions processors to
// procs, and runs the executions' expiry ticker in g.
func withChecks(ctx context.Context, g *errgroup.Group, cfg Config, opts func(name string) []goka.ProcessorOption, procs []*goka.Processor) ([]*goka.Processor, error) {
	rules, err := checksRules(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("role", "process")
	m := checks.NewMetrics(cfg.Registry)
	cp, err := checks.NewProcessor(cfg.Brokers, cfg.Topics, rules, m, log.With("processor", "checks"), opts("checks")...)
	if err != nil {
		return nil, fmt.Errorf("checks processor: %w", err)
	}
	ep, err := checks.NewExecutionsProcessor(cfg.Brokers, cfg.Topics, rules, checks.ExecutionsOptions{Timeout: cfg.Checks.ExecutionTimeout}, m, log.With("processor", "checks_executions"), opts("checks-executions")...)
	if err != nil {
		return nil, fmt.Errorf("checks executions processor: %w", err)
	}
	interval := cfg.Checks.ExpiryInterval
	if interval <= 0 {
		interval = time.Second
	}
	g.Go(func() error {
		checks.RunExpiry(ctx, ep, interval, log.With("processor", "checks_executions"))
		return nil
	})
	return append(procs, cp, ep), nil
}
