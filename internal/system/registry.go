package system

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry is the registry of a fleetstream process, with the Go
// runtime and process collectors. The runtime is one per process, so its
// collectors are registered here, by the registry's owner, and not by the
// roles: a process that runs several (dev: Run and RunCollect) shares one
// registry.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
