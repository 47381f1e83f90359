package collectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fleetstream/fleetstream/connectors/tasks"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// collectAll fans a collect_all task out into collect_kind tasks.
type collectAll struct {
	p    Provider
	opts Options
}

func (h *collectAll) Run(ctx context.Context, t *fleetv1.Task, out tasks.Output) error {
	taskType := CollectAllType(h.p.Name())
	var req CollectAll
	if err := decodePayload(taskType, t.GetPayload(), &req); err != nil {
		return err
	}
	kinds, err := selectKinds(h.p, req.Kinds)
	if err != nil {
		return err
	}
	c, err := h.p.Open(ctx, Target{Account: req.Account, Endpoint: req.Endpoint})
	if err != nil {
		return fmt.Errorf("%s: %w", taskType, err)
	}
	defer closeQuietly(c, h.opts)
	regions, err := selectRegions(ctx, c, req.Regions)
	if err != nil {
		return fmt.Errorf("%s of account %s: %w", taskType, c.Account(), err)
	}

	var fan []*fleetv1.Task
	for _, k := range kinds {
		rs := regions
		if k.Global {
			rs = []string{GlobalRegion}
		}
		for _, r := range rs {
			body, err := json.Marshal(CollectKind{Account: c.Account(), Region: r, Kind: k.Name, Endpoint: req.Endpoint})
			if err != nil {
				return fmt.Errorf("encode %s payload: %w", CollectKindType(h.p.Name()), err)
			}
			fan = append(fan, &fleetv1.Task{
				Type:        CollectKindType(h.p.Name()),
				Payload:     body,
				Priority:    t.GetPriority(),
				MaxAttempts: t.GetMaxAttempts(),
				Deadline:    t.GetDeadline(),
			})
		}
	}
	if err := out.Enqueue(ctx, fan...); err != nil {
		return fmt.Errorf("enqueue %d %s tasks: %w", len(fan), CollectKindType(h.p.Name()), err)
	}
	h.opts.Metrics.fanout.WithLabelValues(h.p.Name()).Add(float64(len(fan)))
	h.opts.Logger.InfoContext(ctx, "collection fanned out", "provider", h.p.Name(), "account", c.Account(),
		"regions", len(regions), "kinds", len(kinds), "tasks", len(fan), "task_id", t.GetId())
	return nil
}

// collectKind collects one kind in one region and publishes it.
type collectKind struct {
	p    Provider
	opts Options
}

func (h *collectKind) Run(ctx context.Context, t *fleetv1.Task, out tasks.Output) (err error) {
	taskType := CollectKindType(h.p.Name())
	var req CollectKind
	if err := decodePayload(taskType, t.GetPayload(), &req); err != nil {
		return err
	}
	kinds, err := selectKinds(h.p, []string{req.Kind})
	if err != nil {
		return err
	}
	region := req.Region
	if kinds[0].Global {
		region = GlobalRegion
	} else if region == "" || region == GlobalRegion {
		return tasks.Permanent(fmt.Errorf("%s: kind %s is collected per region: name one in the payload's region field", taskType, req.Kind))
	}

	start := time.Now()
	defer func() {
		outcome := "ok"
		switch {
		case tasks.IsPermanent(err):
			outcome = "permanent"
		case err != nil:
			outcome = "error"
		}
		h.opts.Metrics.collections.WithLabelValues(h.p.Name(), req.Kind, outcome).Inc()
		h.opts.Metrics.seconds.WithLabelValues(h.p.Name(), req.Kind).Observe(time.Since(start).Seconds())
	}()

	c, err := h.p.Open(ctx, Target{Account: req.Account, Endpoint: req.Endpoint})
	if err != nil {
		return fmt.Errorf("%s: %w", taskType, err)
	}
	defer closeQuietly(c, h.opts)
	resources, err := c.Collect(ctx, region, req.Kind)
	if err != nil {
		return fmt.Errorf("collect %s %s in %s of account %s: %w", h.p.Name(), req.Kind, region, c.Account(), err)
	}
	coll := Collection{Provider: h.p.Name(), Account: c.Account(), Region: region, Kind: req.Kind}
	ds, err := coll.Discoveries(resources, h.opts)
	if err != nil {
		return tasks.Permanent(err)
	}
	if err := out.Discover(ctx, ds...); err != nil {
		return fmt.Errorf("publish %s: %w", coll.Key(), err)
	}
	h.opts.Metrics.resources.WithLabelValues(h.p.Name(), req.Kind).Add(float64(len(resources)))
	h.opts.Logger.DebugContext(ctx, "collection published", "collection", coll.Key(),
		"resources", len(resources), "chunks", len(ds), "task_id", t.GetId())
	return nil
}

// selectKinds resolves kind names against the provider's kinds; none
// means all.
func selectKinds(p Provider, names []string) ([]Kind, error) {
	all := p.Kinds()
	if len(names) == 0 {
		return all, nil
	}
	var ks []Kind
	for _, n := range names {
		i := slices.IndexFunc(all, func(k Kind) bool { return k.Name == n })
		if i < 0 {
			known := make([]string, len(all))
			for j, k := range all {
				known[j] = k.Name
			}
			return nil, tasks.Permanent(fmt.Errorf("%s collects no kind %q: use one of %s", p.Name(), n, strings.Join(known, ", ")))
		}
		if !slices.Contains(ks, all[i]) {
			ks = append(ks, all[i])
		}
	}
	return ks, nil
}

// selectRegions checks the requested regions against the account's, so a
// misspelt region fails the fan-out once instead of every fanned-out task
// retrying against an endpoint that does not exist.
func selectRegions(ctx context.Context, c Collector, names []string) ([]string, error) {
	all, err := c.Regions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list regions: %w", err)
	}
	if len(names) == 0 {
		return all, nil
	}
	var rs []string
	for _, n := range names {
		if !slices.Contains(all, n) {
			return nil, tasks.Permanent(fmt.Errorf("no region %q: the account has %s", n, strings.Join(all, ", ")))
		}
		if !slices.Contains(rs, n) {
			rs = append(rs, n)
		}
	}
	return rs, nil
}

func closeQuietly(c Collector, opts Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		opts.Logger.Warn("close collector", "account", c.Account(), "err", err)
	}
}
