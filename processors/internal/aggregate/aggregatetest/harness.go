// Package aggregatetest runs an aggregate's processor on goka's tester,
// built exactly as production builds it, for the aggregates' tests.
package aggregatetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Harness is one aggregate processor running on goka's tester, with its
// metrics of type M.
type Harness[M any] struct {
	Tester  *tester.Tester
	Metrics M
	// Processor is the running processor, e.g. for aggregate.VisitAll.
	Processor *goka.Processor
	// Events and DLQ follow the events and dead-letter topics.
	Events *tester.QueueTracker
	DLQ    *tester.QueueTracker

	commands string
}

// NewProcessor is the signature of every aggregate's NewProcessor.
type NewProcessor[M any] func(brokers []string, topics kafka.Topics, m M, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error)

// Run starts the processor newProcessor builds with m, on goka's tester,
// reading commands from the topic commands of topics, and stops it when
// the test ends.
func Run[M any](t *testing.T, topics kafka.Topics, commands string, newProcessor NewProcessor[M], m M) *Harness[M] {
	t.Helper()
	tt := tester.New(t)
	proc, err := newProcessor(nil, topics, m, slog.New(slog.DiscardHandler), goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	GoRun(t, proc.Run)
	return &Harness[M]{
		Tester: tt, Metrics: m, Processor: proc,
		Events: tt.NewQueueTracker(topics.Events), DLQ: tt.NewQueueTracker(topics.DLQ),
		commands: commands,
	}
}

// GoRun runs a goka processor or view until the test ends, and fails the
// test if it stops with an error.
func GoRun(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stopped with %v", err)
		}
	})
}

// Send processes c, keyed by its aggregate id as senders must.
func (h *Harness[M]) Send(t *testing.T, c *fleetv1.Command) {
	t.Helper()
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	h.Tester.Consume(h.commands, c.GetAggregateId(), b)
}

// Drain returns the events emitted since the last call. An event keyed
// other than by its aggregate id fails the test.
func (h *Harness[M]) Drain(t *testing.T) []*fleetv1.Event {
	t.Helper()
	var out []*fleetv1.Event
	for {
		key, value, ok := h.Events.Next()
		if !ok {
			return out
		}
		e := value.(*fleetv1.Event)
		if key != e.GetAggregateId() {
			t.Errorf("event keyed %q for %q", key, e.GetAggregateId())
		}
		out = append(out, e)
	}
}
