package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// cancels is the set of cancellation requests, read from the whole
// compacted cancellation topic by every worker.
type cancels struct {
	client *kgo.Client
	topic  string
	log    *slog.Logger

	mu        sync.Mutex
	requested map[string]*fleetv1.TaskCancel
	notify    func(*fleetv1.TaskCancel)
	up        *catchUp
}

func newCancels(ctx context.Context, seeds []string, topic string, log *slog.Logger, opts []kgo.Opt) (*cancels, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("cancellation reader: %w", err)
	}
	up, err := newCatchUp(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("cancellation reader: %w", err)
	}
	return &cancels{client: cl, topic: topic, log: log, requested: map[string]*fleetv1.TaskCancel{}, up: up}, nil
}

// onCancel sets the function called with each new request (after start).
func (c *cancels) onCancel(fn func(*fleetv1.TaskCancel)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.notify = fn
}

// run reads requests until ctx ends.
func (c *cancels) run(ctx context.Context) {
	defer c.client.Close()
	for {
		fs := c.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			c.log.Warn("read cancellations", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			c.apply(r)
			c.up.observe(r)
		})
	}
}

func (c *cancels) apply(r *kgo.Record) {
	if r.Value == nil {
		c.mu.Lock()
		delete(c.requested, string(r.Key))
		c.mu.Unlock()
		return
	}
	req := &fleetv1.TaskCancel{}
	if err := proto.Unmarshal(r.Value, req); err != nil {
		c.log.Warn("undecodable cancellation request ignored", "task_id", string(r.Key), "offset", r.Offset, "err", err)
		return
	}
	c.mu.Lock()
	c.requested[string(r.Key)] = req
	notify := c.notify
	c.mu.Unlock()
	// Outside the lock: notify takes the worker's lock, which is held
	// while get is called.
	if notify != nil {
		notify(req)
	}
}

// get returns the cancellation request of task id, if any.
func (c *cancels) get(id string) *fleetv1.TaskCancel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requested[id]
}

// wait blocks until the requests present at start are read.
func (c *cancels) wait(ctx context.Context) error { return c.up.wait(ctx) }
