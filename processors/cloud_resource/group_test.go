package cloudresource

import (
	"slices"
	"testing"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var topics = kafka.DefaultTopics()

type harness = aggregatetest.Harness[*Metrics]

// run starts the processor exactly as production builds it, on goka's tester.
func run(t *testing.T) *harness {
	return aggregatetest.Run(t, topics, topics.CloudResourceCommands, NewProcessor, NewMetrics(prometheus.NewRegistry()))
}

// names are the names of events.
func names(events []*fleetv1.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, aggregate.EventName(e))
	}
	return out
}

func TestResourceLifecycle(t *testing.T) {
	h := run(t)
	view, err := NewView(nil, topics, goka.WithViewTester(h.Tester))
	if err != nil {
		t.Fatal(err)
	}
	aggregatetest.GoRun(t, view.Run)
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
		h.Send(t, s.cmd)
		if got := names(h.Drain(t)); !slices.Equal(got, s.events) {
			t.Fatalf("step %d (%s): events %v, want %v", i, aggregate.CommandName(s.cmd), got, s.events)
		}
	}
	got, err := r.Get(resourceID)
	if err != nil || got.GetVersion() != 3 || got.GetDeleted() || !proto.Equal(got.GetSpec(), sampleSpec()) {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if got, err := r.Get("aws:111:nope"); got != nil || err != nil {
		t.Fatalf("Get(unknown) = %v, %v", got, err)
	}
	if n := testutil.ToFloat64(h.Metrics.Commands.WithLabelValues("DeleteResource", string(outcomeStale))); n != 1 {
		t.Errorf("stale deletions counted %v", n)
	}
	if n := testutil.ToFloat64(h.Metrics.Events.WithLabelValues("ResourceDiscovered")); n != 2 {
		t.Errorf("ResourceDiscovered counted %v", n)
	}
}

func TestBadCommandsAreDeadLettered(t *testing.T) {
	h := run(t)
	h.Tester.Consume(topics.CloudResourceCommands, resourceID, []byte("not a command"))
	headers, key, value, ok := h.DLQ.NextRawWithHeaders()
	if !ok || key != resourceID || string(value) != "not a command" || string(headers[kafka.HeaderDLQStage]) != "cloud_resource" {
		t.Fatalf("dead letter %q=%q %v (%v)", key, value, headers, ok)
	}
	h.Send(t, discoverCmd("c1", t0, sampleSpec()))
	if got := names(h.Drain(t)); !slices.Equal(got, []string{"ResourceDiscovered"}) {
		t.Fatalf("after a bad record: %v", got)
	}
}
