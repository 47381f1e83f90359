// Package install picks the collector providers a worker runs (AWS and
// vSphere) and their configuration, and gives the task worker its
// handlers. Providers stay ignorant of each other; this is the one place
// that names them all.
package install

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spf13/pflag"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/connectors/collectors/aws"
	"github.com/fleetstream/fleetstream/connectors/collectors/vsphere"
	"github.com/fleetstream/fleetstream/connectors/tasks"
)

// Config configures every provider and the shared task handlers.
type Config struct {
	AWS     aws.Config
	VSphere vsphere.Config
	// ChunkSize is the most resources per discovery; see
	// collectors.Options.
	ChunkSize int
}

// RegisterFlags adds the flags of every provider, and --collect-chunk-size,
// to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	c.AWS.RegisterFlags(fs)
	c.VSphere.RegisterFlags(fs)
	fs.IntVar(&c.ChunkSize, "collect-chunk-size", collectors.DefaultChunkSize, "most resources in one cloud_resources discovery")
}

// Registry builds every provider.
func Registry(cfg Config) (*collectors.Registry, error) {
	a, err := aws.New(cfg.AWS)
	if err != nil {
		return nil, fmt.Errorf("aws collector: %w", err)
	}
	return collectors.NewRegistry(a, vsphere.New(cfg.VSphere))
}

// Handlers returns the task handlers of every provider, by task type
// ("aws.collect_all", "aws.collect_kind", "vsphere.collect_all",
// "vsphere.collect_kind"). opts.ChunkSize defaults to cfg.ChunkSize.
func Handlers(cfg Config, opts collectors.Options) (map[string]tasks.Handler, error) {
	reg, err := Registry(cfg)
	if err != nil {
		return nil, err
	}
	if opts.ChunkSize == 0 {
		opts.ChunkSize = cfg.ChunkSize
	}
	return reg.Handlers(opts), nil
}

// Build returns the handlers with metrics registered on reg and logs to
// log, after the flags are parsed: the shape `fleetstream collect` wires
// handler sets with.
func (c *Config) Build(reg prometheus.Registerer, log *slog.Logger) (map[string]tasks.Handler, error) {
	return Handlers(*c, collectors.Options{Logger: log, Metrics: collectors.NewMetrics(reg)})
}
