package cloudresource

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var topics = kafka.DefaultTopics()

type harness struct {
	tt     *tester.Tester
	m      *Metrics
	events *tester.QueueTracker
	dlq    *tester.QueueTracker
}

// run starts the processor exactly as production builds it, on goka's tester.
func run(t *testing.T) *harness {
	t.Helper()
	tt := tester.New(t)
	m := NewMetrics(prometheus.NewRegistry())
	proc, err := NewProcessor(nil, topics, m, slog.New(slog.DiscardHandler), goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	goRun(t, proc.Run)
	return &harness{tt: tt, m: m, events: tt.NewQueueTracker(topics.Events), dlq: tt.NewQueueTracker(topics.DLQ)}
}

func goRun(t *testing.T, run func(context.Context) error) {
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

func (h *harness) send(t *testing.T, c *fleetv1.Command) {
	t.Helper()
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	h.tt.Consume(topics.CloudResourceCommands, c.AggregateId, b)
}

// drain returns the names of the events emitted since the last call.
func (h *harness) drain(t *testing.T) []string {
	var out []string
	for {
		key, value, ok := h.events.Next()
		if !ok {
			return out
		}
		e := value.(*fleetv1.Event)
		if key != e.GetAggregateId() {
			t.Errorf("event keyed %q for %q", key, e.GetAggregateId())
		}
		out = append(out, eventName(e))
	}
}

func TestResourceLifecycle(t *testing.T) {
	h := run(t)
	view, err := NewView(nil, topics, goka.WithViewTester(h.tt))
	if err != nil {
		t.Fatal(err)
	}
	goRun(t, view.Run)
	r := NewReader(view)

	steps := []struct {
		cmd    *fleetv1.Command
		events []string
	}{
		{discoverCmd("c1", t0, sampleSpec()), []string{"ResourceDiscovered"}},
		{discoverCmd("c2", t0, sampleSpec()), nil}, // idempotent
		{deleteCmd("c3", t1, collection), []string{"ResourceDeleted"}},
		{deleteCmd("c3", t1, collection), nil}, // redelivered
		{discoverCmd("c4", t2, sampleSpec()), []string{"ResourceDiscovered"}},
		{deleteCmd("c5", t2, "aws:111:other:ec2_instance"), nil},
	}
	for i, s := range steps {
		h.send(t, s.cmd)
		if got := h.drain(t); !slices.Equal(got, s.events) {
			t.Fatalf("step %d (%s): events %v, want %v", i, commandName(s.cmd), got, s.events)
		}
	}
	got, err := r.Get(resourceID)
	if err != nil || got.GetVersion() != 3 || got.GetDeleted() || !proto.Equal(got.GetSpec(), sampleSpec()) {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if got, err := r.Get("aws:111:nope"); got != nil || err != nil {
		t.Fatalf("Get(unknown) = %v, %v", got, err)
	}
	if n := testutil.ToFloat64(h.m.commands.WithLabelValues("DeleteResource", string(outcomeStale))); n != 1 {
		t.Errorf("stale deletions counted %v", n)
	}
	if n := testutil.ToFloat64(h.m.events.WithLabelValues("ResourceDiscovered")); n != 2 {
		t.Errorf("ResourceDiscovered counted %v", n)
	}
}

func TestBadCommandsAreDeadLettered(t *testing.T) {
	h := run(t)
	h.tt.Consume(topics.CloudResourceCommands, resourceID, []byte("not a command"))
	headers, key, value, ok := h.dlq.NextRawWithHeaders()
	if !ok || key != resourceID || string(value) != "not a command" || string(headers[kafka.HeaderDLQStage]) != "cloud_resource" {
		t.Fatalf("dead letter %q=%q %v (%v)", key, value, headers, ok)
	}
	h.send(t, discoverCmd("c1", t0, sampleSpec()))
	if got := h.drain(t); !slices.Equal(got, []string{"ResourceDiscovered"}) {
		t.Fatalf("after a bad record: %v", got)
	}
}
