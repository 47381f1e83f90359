package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
)

// Discoverer collects one type of discovery about the machine.
type Discoverer interface {
	// Type is the discovery_type sent with the payload, e.g. "host_discovery".
	Type() string
	// Discover returns the payload, which the publisher encodes as JSON. On
	// error nothing is sent for this round: a discovery that cannot be made on
	// a machine (no cluster, no SAP system) is simply absent.
	Discover(ctx context.Context) (any, error)
}

// Env is what discoverers are built from.
type Env struct {
	// Root is the machine's file system root: "/", or where the host's root
	// is mounted when the agent runs in a container.
	Root   string
	Logger *slog.Logger
}

// Factory builds the discoverer of one discovery type.
type Factory func(Env) (Discoverer, error)

var registry = struct {
	sync.Mutex
	factories map[string]Factory
}{factories: map[string]Factory{}}

// Register makes a discovery type part of every agent. The file that
// implements a discovery calls it from init; a duplicate type is a
// programming error and panics.
func Register(discoveryType string, f Factory) {
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.factories[discoveryType]; dup {
		panic(fmt.Sprintf("agent: discovery %q registered twice", discoveryType))
	}
	registry.factories[discoveryType] = f
}

// NewDiscoverers builds one discoverer per registered discovery type, in
// type order.
func NewDiscoverers(env Env) ([]Discoverer, error) {
	registry.Lock()
	factories := maps.Clone(registry.factories)
	registry.Unlock()

	types := slices.Sorted(maps.Keys(factories))
	ds := make([]Discoverer, 0, len(types))
	for _, t := range types {
		d, err := factories[t](env)
		if err != nil {
			return nil, fmt.Errorf("build %s discoverer: %w", t, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}
