package links

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
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	cloudresource "github.com/fleetstream/fleetstream/processors/cloud_resource"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var topics = kafka.DefaultTopics()

type harness struct {
	tt     *tester.Tester
	m      *Metrics
	events *tester.QueueTracker
	dlq    *tester.QueueTracker
	reader *Reader
}

// run starts the processor and a view exactly as production builds them,
// on goka's tester.
func run(t *testing.T) *harness {
	t.Helper()
	tt := tester.New(t)
	m := NewMetrics(prometheus.NewRegistry())
	proc, err := NewProcessor(nil, topics, m, slog.New(slog.DiscardHandler), goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	goRun(t, proc.Run)
	view, err := NewView(nil, topics, goka.WithViewTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	goRun(t, view.Run)
	return &harness{tt: tt, m: m, events: tt.NewQueueTracker(topics.Events), dlq: tt.NewQueueTracker(topics.DLQ), reader: NewReader(view)}
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

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// linkEvents returns the link events emitted since the last call, as the
// event store has them (the processor's own events come back to it as
// input and must be ignored).
func (h *harness) linkEvents(t *testing.T) []*fleetv1.Event {
	t.Helper()
	var out []*fleetv1.Event
	for {
		key, value, ok := h.events.Next()
		if !ok {
			return out
		}
		e := new(fleetv1.Event)
		if err := proto.Unmarshal(value.([]byte), e); err != nil || e.GetAggregateType() != AggregateType {
			continue
		}
		if key != e.GetAggregateId() {
			t.Errorf("event keyed %q for %q", key, e.GetAggregateId())
		}
		out = append(out, e)
	}
}

func resourceEvent(id string, version uint64, links ...*fleetv1.ResourceLink) *fleetv1.Event {
	spec := &fleetv1.ResourceSpec{Provider: "aws", Account: "111", Region: "eu-west-1", Kind: "ec2_instance", ResourceId: id, Links: links}
	key := "aws:111:" + id
	return &fleetv1.Event{
		EventId: "ev-" + id, AggregateType: cloudresource.AggregateType, AggregateId: key, Version: version,
		OccurredAt: timestamppb.New(t0), TraceId: "trace-" + id,
		Payload: &fleetv1.Event_ResourceDiscovered{ResourceDiscovered: &fleetv1.ResourceDiscovered{Spec: spec}},
		State:   &fleetv1.AggregateState{State: &fleetv1.AggregateState_CloudResource{CloudResource: &fleetv1.CloudResource{Id: key, Spec: spec, Version: version}}},
	}
}

func TestLinksThroughGoka(t *testing.T) {
	h := run(t)
	e := resourceEvent("i-1", 1, link("in_vpc", "vpc", "vpc-1"))
	h.tt.Consume(topics.Events, e.AggregateId, marshal(t, e), tester.WithHeaders(goka.Headers{kafka.HeaderTraceID: []byte("trace-x")}))

	evs := h.linkEvents(t)
	if len(evs) != 1 || evs[0].GetEntityLinked() == nil {
		t.Fatalf("events %v", evs)
	}
	got := evs[0]
	want := &fleetv1.Link{
		From:     &fleetv1.EntityRef{Type: EntityCloudResource, Id: "aws:111:i-1", Kind: "ec2_instance"},
		Relation: "in_vpc",
		To:       &fleetv1.EntityRef{Type: EntityCloudResource, Id: "aws:111:vpc-1", Kind: "vpc"},
		Active:   true, Version: 1, UpdatedAt: timestamppb.New(t0),
	}
	if !proto.Equal(got.GetState().GetLink(), want) || got.GetVersion() != 1 || got.GetCommandId() != "ev-i-1" || got.GetTraceId() != "trace-i-1" {
		t.Fatalf("EntityLinked %v", got)
	}
	// Both ends show the link through the view.
	for _, id := range []string{"aws:111:i-1", "aws:111:vpc-1"} {
		ls, err := h.reader.Links(id)
		if err != nil || len(ls) != 1 || ls[0].GetTo().GetId() != "aws:111:vpc-1" || ls[0].GetFrom().GetId() != "aws:111:i-1" {
			t.Fatalf("Links(%s) = %v, %v", id, ls, err)
		}
	}
	if ls, err := h.reader.Links("nope"); ls != nil || err != nil {
		t.Fatalf("Links(nope) = %v, %v", ls, err)
	}

	// A cloud_discovery links the host.
	d := cloudDiscovery(t, "cloud_discovery_aws.json", t0)
	h.tt.Consume(topics.Discoveries, agentID, marshal(t, d))
	evs = h.linkEvents(t)
	if len(evs) != 1 || evs[0].GetEntityLinked().GetTo().GetId() != "aws:12345:i-12345" || evs[0].GetAggregateId() != agentID {
		t.Fatalf("host link events %v", evs)
	}
	if n := testutil.ToFloat64(h.m.inputs.WithLabelValues(inputEvent, string(outcomeIgnored))); n != 2 {
		t.Errorf("own events ignored %v times, want 2", n)
	}
}

func TestBadRecords(t *testing.T) {
	h := run(t)
	h.tt.Consume(topics.Events, "x", []byte("not an event"))
	h.tt.Consume(topics.Discoveries, "x", []byte("not a discovery"))
	if n := testutil.ToFloat64(h.m.skipped.WithLabelValues(inputEvent)) + testutil.ToFloat64(h.m.skipped.WithLabelValues(inputDiscovery)); n != 2 {
		t.Errorf("skipped %v, want 2", n)
	}
	if _, _, _, ok := h.dlq.NextRawWithHeaders(); ok {
		t.Fatal("records of shared topics dead-lettered by links")
	}

	bad := cloudDiscovery(t, "cloud_discovery_aws.json", t0)
	bad.Payload = []byte(`{"Provider":"aws","Metadata":{"instance_id":7}}`)
	h.tt.Consume(topics.Discoveries, agentID, marshal(t, bad))
	h.tt.Consume(kafka.LoopTopic(string(Group(topics))), "x", []byte("garbage"))
	var stages []string
	for {
		headers, _, _, ok := h.dlq.NextRawWithHeaders()
		if !ok {
			break
		}
		stages = append(stages, string(headers[kafka.HeaderDLQStage])+"/"+string(headers[kafka.HeaderDLQTopic]))
	}
	want := []string{"links/" + topics.Discoveries, "links/" + kafka.LoopTopic(string(Group(topics)))}
	if !slices.Equal(stages, want) {
		t.Fatalf("dead letters %v, want %v", stages, want)
	}
	// Still running.
	e := resourceEvent("i-1", 1, link("in_vpc", "vpc", "vpc-1"))
	h.tt.Consume(topics.Events, e.AggregateId, marshal(t, e))
	if evs := h.linkEvents(t); len(evs) != 1 {
		t.Fatalf("after bad records: %v", evs)
	}
}
