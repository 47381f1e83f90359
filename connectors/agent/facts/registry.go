package facts

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Gatherer gathers one kind of fact on the machine.
type Gatherer interface {
	// Gather returns the fact named by argument as a JSON-like value (nil,
	// bool, int64, float64, string, []any, map[string]any). Errors wrap
	// ErrMissing or ErrArgument when that is the reason.
	Gather(ctx context.Context, argument string) (any, error)
}

// GathererFunc is a function as a Gatherer.
type GathererFunc func(ctx context.Context, argument string) (any, error)

// Gather implements Gatherer.
func (f GathererFunc) Gather(ctx context.Context, argument string) (any, error) {
	return f(ctx, argument)
}

// Env is what gatherers are built from.
type Env struct {
	// Root is the machine's file system root.
	Root string
	// Tools runs the machine's command-line tools.
	Tools *Tools
}

// Factory builds one gatherer for a machine.
type Factory func(Env) Gatherer

// gathererName is "name@vN": names are lower case words joined by '.', '-'
// or '_' (corosync.conf, os-release, mount_info).
var gathererName = regexp.MustCompile(`^[a-z][a-z0-9._-]*@v[1-9][0-9]*$`)

var registry = struct {
	sync.Mutex
	factories map[string]Factory
}{factories: map[string]Factory{}}

// Register makes a gatherer part of every Registry. The file implementing
// it calls Register from init; a malformed or duplicate name is a
// programming error and panics.
func Register(name string, f Factory) {
	if !gathererName.MatchString(name) {
		panic(fmt.Sprintf("facts: gatherer name %q is not name@vN", name))
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.factories[name]; dup {
		panic(fmt.Sprintf("facts: gatherer %q registered twice", name))
	}
	registry.factories[name] = f
}

// Defaults of Config.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 4
)

// Config of a Registry; the zero value gathers on this machine.
type Config struct {
	// Root is the file system root file gatherers read under. Default "/".
	Root string
	// Path lists the directories tools are looked up in. Default: $PATH,
	// then /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin and
	// /bin (cibadmin lives in /usr/sbin, which a non-root PATH may lack).
	Path []string
	// Timeout bounds each fact: a hung tool or NFS mount costs one fact,
	// not the request. Default 30 s, the Trento agent's.
	Timeout time.Duration
	// Concurrency bounds the facts gathered at once by GatherFacts. Default 4.
	Concurrency int
	// Metrics records each gathering; nil records nothing.
	Metrics *Metrics
}

// Registry holds every registered gatherer built for one machine.
type Registry struct {
	gatherers   map[string]Gatherer
	timeout     time.Duration
	concurrency int
	metrics     *Metrics
}

// NewRegistry builds every registered gatherer for the machine cfg names.
func NewRegistry(cfg Config) *Registry {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	env := Env{Root: cfg.Root, Tools: NewTools(cfg.Path)}
	registry.Lock()
	defer registry.Unlock()
	r := &Registry{gatherers: map[string]Gatherer{}, timeout: cfg.Timeout, concurrency: cfg.Concurrency, metrics: cfg.Metrics}
	for name, f := range registry.factories {
		r.gatherers[name] = f(env)
	}
	return r
}

// Names returns the gatherers' names, sorted.
func (r *Registry) Names() []string { return slices.Sorted(maps.Keys(r.gatherers)) }

// Gather gathers one fact within the Registry's timeout. A gatherer that
// panics yields an error, so one bad fact never stops the agent.
func (r *Registry) Gather(ctx context.Context, name, argument string) (any, error) {
	start := time.Now()
	value, err := r.gather(ctx, name, argument)
	r.metrics.observe(name, r.gatherers[name] != nil, time.Since(start), err)
	return value, err
}

type outcome struct {
	value any
	err   error
}

func (r *Registry) gather(ctx context.Context, name, argument string) (any, error) {
	g, ok := r.gatherers[name]
	if !ok {
		return nil, &kindError{kind: ErrUnknownGatherer, msg: fmt.Sprintf(
			"unknown gatherer %q: this agent gathers %s (update the agent, or fix the check's gatherer)", name, strings.Join(r.Names(), ", "))}
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// The gatherer runs on its own goroutine so that a read the context
	// cannot interrupt (statfs on a hung NFS mount) still times out here.
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: fmt.Errorf("gatherer %s failed unexpectedly: %v", name, p)}
			}
		}()
		v, err := g.Gather(ctx, argument)
		done <- outcome{v, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			return nil, fmt.Errorf("%s(%q): %w", name, argument, o.err)
		}
		return o.value, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%s(%q): not gathered within %s: %w", name, argument, r.timeout, ctx.Err())
	}
}

// factKey identifies a fact on a machine: the same gatherer and argument
// give the same value whichever check asks.
type factKey struct{ gatherer, argument string }

// GatherFacts answers reqs: one GatheredFact per request, in order, with
// its check id, name, gatherer and argument, and either a value or an
// error. Each distinct gatherer and argument is gathered once, at most
// Concurrency at a time.
func (r *Registry) GatherFacts(ctx context.Context, reqs []*fleetv1.FactRequest) []*fleetv1.GatheredFact {
	type result struct {
		value *structpb.Value
		err   string
	}
	results := map[factKey]*result{}
	var order []factKey
	for _, q := range reqs {
		k := factKey{q.GetGatherer(), q.GetArgument()}
		if _, ok := results[k]; !ok {
			results[k] = &result{}
			order = append(order, k)
		}
	}
	sem := make(chan struct{}, r.concurrency)
	var wg sync.WaitGroup
	for _, k := range order {
		res := results[k]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			v, err := r.Gather(ctx, k.gatherer, k.argument)
			if err == nil {
				res.value, err = structpb.NewValue(v)
				if err != nil {
					err = fmt.Errorf("%s(%q): value %T cannot be sent: %w", k.gatherer, k.argument, v, err)
				}
			}
			if err != nil {
				res.err = err.Error()
			}
		})
	}
	wg.Wait()
	out := make([]*fleetv1.GatheredFact, len(reqs))
	for i, q := range reqs {
		res := results[factKey{q.GetGatherer(), q.GetArgument()}]
		out[i] = &fleetv1.GatheredFact{
			CheckId: q.GetCheckId(), Name: q.GetName(), Gatherer: q.GetGatherer(), Argument: q.GetArgument(),
			Value: res.value, Error: res.err,
		}
	}
	return out
}
