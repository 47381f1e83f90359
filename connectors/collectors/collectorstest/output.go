// Package collectorstest runs collection tasks in tests: a tasks.Output
// that records what handlers produce, and a driver that runs a collect_all
// task and every task it fans out, as a worker would.
package collectorstest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/fleetstream/fleetstream/connectors/tasks"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Output records enqueued tasks and published discoveries. It is safe for
// concurrent use.
type Output struct {
	mu          sync.Mutex
	Tasks       []*fleetv1.Task
	Discoveries []*fleetv1.Discovery
}

// Enqueue records ts.
func (o *Output) Enqueue(_ context.Context, ts ...*fleetv1.Task) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.Tasks = append(o.Tasks, ts...)
	return nil
}

// Discover records ds.
func (o *Output) Discover(_ context.Context, ds ...*fleetv1.Discovery) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.Discoveries = append(o.Discoveries, ds...)
	return nil
}

// Collection is one collection reassembled from its chunks.
type Collection struct {
	payload.ResourceCollection
	// Resources of all chunks, in chunk order.
	All []payload.Resource
	// ChunkCount is how many chunks arrived.
	ChunkCount int
}

// Collections decodes the recorded discoveries and reassembles them by
// collection key, checking the envelope against the payload and that every
// chunk of a collection arrived exactly once.
func (o *Output) Collections() (map[string]*Collection, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]*Collection{}
	seen := map[string]map[int]bool{}
	for _, d := range o.Discoveries {
		if d.GetDiscoveryType() != payload.CloudResources {
			return nil, fmt.Errorf("discovery %s has type %q", d.GetAgentId(), d.GetDiscoveryType())
		}
		var rc payload.ResourceCollection
		if err := json.Unmarshal(d.GetPayload(), &rc); err != nil {
			return nil, fmt.Errorf("decode discovery %s: %w", d.GetAgentId(), err)
		}
		key := rc.Provider + ":" + rc.Account + ":" + rc.Region + ":" + rc.Kind
		if key != d.GetAgentId() {
			return nil, fmt.Errorf("discovery agent id %q does not match its payload's collection %q", d.GetAgentId(), key)
		}
		c := out[key]
		if c == nil {
			c = &Collection{ResourceCollection: rc}
			out[key] = c
			seen[key] = map[int]bool{}
		}
		if rc.CollectionID != c.CollectionID || rc.Chunks != c.Chunks {
			return nil, fmt.Errorf("collection %s: chunks of two collections (%s/%d and %s/%d)", key, c.CollectionID, c.Chunks, rc.CollectionID, rc.Chunks)
		}
		if seen[key][rc.Chunk] || rc.Chunk < 0 || rc.Chunk >= rc.Chunks {
			return nil, fmt.Errorf("collection %s: chunk %d of %d repeated or out of range", key, rc.Chunk, rc.Chunks)
		}
		seen[key][rc.Chunk] = true
		c.All = append(c.All, rc.Resources...)
		c.ChunkCount++
	}
	for key, c := range out {
		if c.ChunkCount != c.Chunks {
			return nil, fmt.Errorf("collection %s: %d of %d chunks", key, c.ChunkCount, c.Chunks)
		}
	}
	return out, nil
}

// Run runs a collect_all task of a provider and then every task it fanned
// out, through handlers as a worker would, and returns the output.
func Run(ctx context.Context, handlers map[string]tasks.Handler, provider string, collectAll any) (*Output, error) {
	body, err := json.Marshal(collectAll)
	if err != nil {
		return nil, err
	}
	root := &fleetv1.Task{Id: "root", Type: provider + ".collect_all", Payload: body, Priority: fleetv1.Priority_PRIORITY_NORMAL, Attempt: 1}
	fan := &Output{}
	if err := run(ctx, handlers, root, fan); err != nil {
		return nil, err
	}
	out := &Output{Tasks: fan.Tasks}
	for i, t := range fan.Tasks {
		t.Id, t.Attempt, t.ParentId = fmt.Sprintf("root-%d", i), 1, root.Id
		if err := run(ctx, handlers, t, out); err != nil {
			return out, err
		}
	}
	return out, nil
}

func run(ctx context.Context, handlers map[string]tasks.Handler, t *fleetv1.Task, out tasks.Output) error {
	h, ok := handlers[t.GetType()]
	if !ok {
		return fmt.Errorf("no handler for task type %q", t.GetType())
	}
	if err := h.Run(ctx, t, out); err != nil {
		return fmt.Errorf("task %s (%s %s): %w", t.GetId(), t.GetType(), t.GetPayload(), err)
	}
	return nil
}
