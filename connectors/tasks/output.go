package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// output is what a running task produces through its worker.
type output struct {
	w      *Worker
	parent *fleetv1.Task
}

// Enqueue fans out children: each gets the parent's id as parent_id, its
// priority when none is set, and an id derived from the parent's and its
// own type and payload, so a parent that runs again enqueues the same ids.
func (o output) Enqueue(ctx context.Context, tasks ...*fleetv1.Task) error {
	for _, t := range tasks {
		if t.ParentId == "" {
			t.ParentId = o.parent.Id
		}
		if t.Priority == fleetv1.Priority_PRIORITY_UNSPECIFIED {
			t.Priority = o.parent.Priority
		}
		if t.Id == "" {
			t.Id = childID(o.parent.Id, t)
		}
		if t.Source == "" {
			t.Source = "fanout:" + o.parent.Type
		}
	}
	if err := o.w.queue.Enqueue(ctx, tasks...); err != nil {
		return fmt.Errorf("task %s: fan out: %w", o.parent.Id, err)
	}
	return nil
}

// Discover publishes discoveries keyed by agent id; the partitioner is
// goka's (kafka.NewClient), so downstream views find them.
func (o output) Discover(ctx context.Context, ds ...*fleetv1.Discovery) error {
	recs := make([]*kgo.Record, len(ds))
	trace := traceFrom(ctx, o.parent.Id)
	for i, d := range ds {
		if d.GetAgentId() == "" || d.GetDiscoveryType() == "" {
			return errors.New("discover: a discovery needs an agent_id (the resource's stable id) and a discovery_type")
		}
		if d.Source == "" {
			d.Source = "collector:" + o.parent.Type
		}
		value, err := proto.Marshal(d)
		if err != nil {
			return fmt.Errorf("discover %s: %w", d.AgentId, err)
		}
		recs[i] = &kgo.Record{Topic: o.w.opts.Topics.Discoveries, Key: []byte(d.AgentId), Value: value,
			Headers: kafka.RecordHeaders(kafka.Headers(d, trace))}
	}
	if err := o.w.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("task %s: publish %d discoveries: %w", o.parent.Id, len(ds), err)
	}
	return nil
}
