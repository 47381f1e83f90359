package membership

import (
	"context"
	"log/slog"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var topics = kafka.DefaultTopics()

type harness struct {
	tt       *tester.Tester
	m        *Metrics
	clusters *tester.QueueTracker
	sap      *tester.QueueTracker
	dbs      *tester.QueueTracker
	dlq      *tester.QueueTracker
}

// run starts the processor exactly as production builds it, on goka's
// tester, which delivers loop messages as the loop topic would.
func run(t *testing.T) *harness {
	t.Helper()
	tt := tester.New(t)
	m := NewMetrics(prometheus.NewRegistry())
	proc, err := NewProcessor(nil, topics, m, slog.New(slog.DiscardHandler), goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stopped with %v", err)
		}
	})
	return &harness{
		tt: tt, m: m,
		clusters: tt.NewQueueTracker(topics.ClusterCommands),
		sap:      tt.NewQueueTracker(topics.SapSystemCommands),
		dbs:      tt.NewQueueTracker(topics.DatabaseCommands),
		dlq:      tt.NewQueueTracker(topics.DLQ),
	}
}

func (h *harness) consume(t *testing.T, e *fleetv1.Event) {
	t.Helper()
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	h.tt.Consume(topics.Events, e.GetAggregateId(), b, tester.WithHeaders(goka.Headers{kafka.HeaderTraceID: []byte(e.GetTraceId())}))
}

// commands returns the commands written to q since the last call, checking
// each is keyed by its aggregate and carries the standard headers.
func commands(t *testing.T, q *tester.QueueTracker) []*fleetv1.Command {
	t.Helper()
	var out []*fleetv1.Command
	for {
		headers, key, value, ok := q.NextRawWithHeaders()
		if !ok {
			return out
		}
		c := new(fleetv1.Command)
		if err := proto.Unmarshal(value, c); err != nil {
			t.Fatal(err)
		}
		if key != c.GetAggregateId() || string(headers[kafka.HeaderSchema]) != "fleetstream.v1.Command" || string(headers[kafka.HeaderTraceID]) != c.GetTraceId() {
			t.Errorf("command keyed %q with headers %v: %v", key, headers, c)
		}
		out = append(out, c)
	}
}

func TestCascadeThroughGoka(t *testing.T) {
	h := run(t)
	cluster := &fleetv1.Event{
		EventId: "ev-c1", AggregateType: TypeCluster, AggregateId: "c1", Version: 1, OccurredAt: timestamppb.New(t0), TraceId: "trace-c1",
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Cluster{Cluster: &fleetv1.Cluster{Id: "c1", Hosts: []*fleetv1.ClusterHost{{HostId: "h1"}, {HostId: "h2"}}, Version: 1}}},
	}
	db := &fleetv1.Event{
		EventId: "ev-d1", AggregateType: TypeDatabase, AggregateId: "d1", Version: 4, OccurredAt: timestamppb.New(t0), TraceId: "trace-d1",
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Database{Database: &fleetv1.Database{Id: "d1", Instances: []*fleetv1.DatabaseInstance{{HostId: "h1"}}, Version: 4}}},
	}
	h.consume(t, cluster)
	h.consume(t, db)
	if n := testutil.ToFloat64(h.m.updates); n != 3 {
		t.Fatalf("%v loop messages, want 3", n)
	}
	hm, _ := h.tt.TableValue(goka.GroupTable(Group(topics)), "h1").(*fleetv1.Membership)
	if len(hm.GetHost().GetClusters()) != 1 || len(hm.GetHost().GetDatabases()) != 1 {
		t.Fatalf("h1 memberships %v", hm)
	}

	failed := hostEvent("h1", 2, heartbeatCritical)
	failed.Payload = &fleetv1.Event_HeartbeatFailed{HeartbeatFailed: &fleetv1.HeartbeatFailed{}}
	h.consume(t, failed)
	cs, ds := commands(t, h.clusters), commands(t, h.dbs)
	if len(cs) != 1 || !cs[0].GetMarkClusterHostStale().GetStale() || cs[0].GetMarkClusterHostStale().GetHostId() != "h1" || cs[0].GetAggregateId() != "c1" {
		t.Fatalf("cluster commands %v", cs)
	}
	if len(ds) != 1 || !ds[0].GetMarkDatabaseInstancesStale().GetStale() || ds[0].GetAggregateId() != "d1" {
		t.Fatalf("database commands %v", ds)
	}
	if sc := commands(t, h.sap); len(sc) != 0 {
		t.Fatalf("SAP commands %v", sc)
	}

	// h2 joins a SAP system while its heartbeat is lost: marked at once.
	failed2 := hostEvent("h2", 2, heartbeatCritical)
	failed2.Payload = &fleetv1.Event_HeartbeatFailed{HeartbeatFailed: &fleetv1.HeartbeatFailed{}}
	h.consume(t, failed2)
	if cs := commands(t, h.clusters); len(cs) != 1 || cs[0].GetMarkClusterHostStale().GetHostId() != "h2" {
		t.Fatalf("cluster commands for h2 %v", cs)
	}
	h.consume(t, sapEvent("s1", 1, &fleetv1.ApplicationInstance{HostId: "h2", InstanceNumber: "00"}))
	sc := commands(t, h.sap)
	if len(sc) != 1 || sc[0].GetMarkApplicationInstancesStale().GetHostId() != "h2" || !sc[0].GetMarkApplicationInstancesStale().GetStale() || sc[0].GetTraceId() != "trace-s1" {
		t.Fatalf("SAP commands %v", sc)
	}
	if n := testutil.ToFloat64(h.m.commands.WithLabelValues("MarkClusterHostStale")); n != 2 {
		t.Errorf("MarkClusterHostStale counted %v times, want 2", n)
	}
}

func TestBadRecords(t *testing.T) {
	h := run(t)
	h.tt.Consume(topics.Events, "x", []byte("not an event"))
	h.tt.Consume(topics.Events, "x", nil)
	if n := testutil.ToFloat64(h.m.skipped.WithLabelValues(inputEvent)); n != 2 {
		t.Errorf("skipped %v, want 2", n)
	}
	loop := kafka.LoopTopic(string(Group(topics)))
	h.tt.Consume(loop, "h1", []byte("garbage"))
	bad, err := proto.Marshal(&fleetv1.MembershipUpdate{AggregateType: "pool", AggregateId: "p1", Member: true})
	if err != nil {
		t.Fatal(err)
	}
	h.tt.Consume(loop, "h1", bad)
	for range 2 {
		headers, key, _, ok := h.dlq.NextRawWithHeaders()
		if !ok || key != "h1" || string(headers[kafka.HeaderDLQStage]) != deadLetterStage || string(headers[kafka.HeaderDLQTopic]) != loop {
			t.Fatalf("dead letter %v %q %v", headers, key, ok)
		}
	}
	if _, _, _, ok := h.dlq.NextRawWithHeaders(); ok {
		t.Fatal("more dead letters than bad loop records")
	}
	if n := testutil.ToFloat64(h.m.deadLetters.WithLabelValues(inputLoop)); n != 2 {
		t.Errorf("dead letters %v, want 2", n)
	}
	// Still running.
	h.consume(t, sapEvent("s1", 1, &fleetv1.ApplicationInstance{HostId: "h2"}))
	if n := testutil.ToFloat64(h.m.inputs.WithLabelValues(inputLoop, string(outcomeApplied))); n != 1 {
		t.Fatalf("loop inputs applied %v, want 1", n)
	}
}
