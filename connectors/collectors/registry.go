package collectors

import (
	"fmt"
	"maps"
	"slices"

	"github.com/fleetstream/fleetstream/connectors/tasks"
)

// Registry holds the providers a worker runs, by name.
type Registry struct {
	providers map[string]Provider
}

// NewRegistry returns a registry of ps; two providers of one name are an
// error.
func NewRegistry(ps ...Provider) (*Registry, error) {
	r := &Registry{providers: map[string]Provider{}}
	for _, p := range ps {
		if err := r.Register(p); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds p.
func (r *Registry) Register(p Provider) error {
	if _, dup := r.providers[p.Name()]; dup {
		return fmt.Errorf("collector provider %q registered twice", p.Name())
	}
	r.providers[p.Name()] = p
	return nil
}

// Names lists the registered providers, sorted.
func (r *Registry) Names() []string { return slices.Sorted(maps.Keys(r.providers)) }

// Provider returns the provider of a name.
func (r *Registry) Provider(name string) (Provider, bool) {
	p, ok := r.providers[name]
	return p, ok
}

// Handlers returns the task handlers of every registered provider, by task
// type: "<provider>.collect_all" and "<provider>.collect_kind".
func (r *Registry) Handlers(opts Options) map[string]tasks.Handler {
	opts = opts.withDefaults()
	hs := map[string]tasks.Handler{}
	for name, p := range r.providers {
		hs[CollectAllType(name)] = &collectAll{p: p, opts: opts}
		hs[CollectKindType(name)] = &collectKind{p: p, opts: opts}
	}
	return hs
}
