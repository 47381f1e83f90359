package host

import (
	"testing"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var topics = kafka.DefaultTopics()

var hostTable = goka.GroupTable(goka.Group(topics.Group(kafka.HostGroup)))

type harness = aggregatetest.Harness[*Metrics]

// run starts the processor exactly as production builds it, on goka's tester.
func run(t *testing.T) *harness {
	return aggregatetest.Run(t, topics, topics.HostCommands, NewProcessor, NewMetrics(prometheus.NewRegistry()))
}

// tableHost is the host with id in h's table.
func tableHost(h *harness, id string) *fleetv1.Host {
	v, _ := h.Tester.TableValue(hostTable, id).(*fleetv1.Host)
	return v
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestHostLifecycle(t *testing.T) {
	h := run(t)

	h.Send(t, register("c1", t0, sampleDetails()))
	headers, key, value, ok := h.Events.NextWithHeaders()
	if !ok {
		t.Fatal("no event for RegisterHost")
	}
	e := value.(*fleetv1.Event)
	if key != hostID || e.Version != 1 || e.GetHostRegistered() == nil || !proto.Equal(e.State.GetHost(), registered()) {
		t.Fatalf("event keyed %q: %v", key, e)
	}
	if string(headers[kafka.HeaderSchema]) != "fleetstream.v1.Event" || string(headers[kafka.HeaderTraceID]) != "trace-c1" {
		t.Errorf("headers %v", headers)
	}
	if !proto.Equal(tableHost(h, hostID), registered()) {
		t.Fatalf("table value %v", tableHost(h, hostID))
	}

	h.Send(t, register("c2", t1, sampleDetails()))
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("duplicate register emitted %v", evs)
	}

	h.Send(t, update("c3", t1, &fleetv1.HostDetails{CpuCount: 8}, "cpu_count"))
	evs := h.Drain(t)
	if len(evs) != 1 || evs[0].Version != 2 || evs[0].GetHostDetailsUpdated() == nil {
		t.Fatalf("update emitted %v", evs)
	}
	if u := evs[0].GetHostDetailsUpdated(); len(u.ChangedFields) != 1 || u.ChangedFields[0] != "cpu_count" || u.Details.CpuCount != 8 || u.Details.Hostname != "suse" {
		t.Fatalf("HostDetailsUpdated %v", u)
	}

	h.Send(t, heartbeatAt("c4", t1))
	evs = h.Drain(t)
	if len(evs) != 2 || evs[0].Version != 3 || !evs[0].GetHeartbeatSucceeded().GetAt().AsTime().Equal(t1) ||
		evs[1].Version != 4 || evs[1].GetHostHealthChanged().GetHealth() != HealthPassing {
		t.Fatalf("first heartbeat emitted %v", evs)
	}
	h.Send(t, heartbeatAt("c5", t2))
	if evs := h.Drain(t); len(evs) != 0 {
		t.Fatalf("second heartbeat emitted %v", evs)
	}
	stored := tableHost(h, hostID)
	if !stored.LastHeartbeatAt.AsTime().Equal(t2) || stored.Version != 4 || stored.Heartbeat != HealthPassing || stored.Health != HealthPassing {
		t.Fatalf("table after the second heartbeat: %v", stored)
	}

	for outcome, want := range map[aggregate.Outcome]float64{aggregate.Accepted: 1, aggregate.Noop: 1} {
		if got := counter(t, h.Metrics.Commands.WithLabelValues("RegisterHost", string(outcome))); got != want {
			t.Errorf("RegisterHost %s counted %v, want %v", outcome, got, want)
		}
	}
	if got := counter(t, h.Metrics.Commands.WithLabelValues("UpdateHeartbeat", string(aggregate.Accepted))); got != 2 {
		t.Errorf("accepted heartbeats counted %v, want 2", got)
	}
	if got := counter(t, h.Metrics.Events.WithLabelValues("HeartbeatSucceeded")); got != 1 {
		t.Errorf("HeartbeatSucceeded counted %v, want 1", got)
	}
}

func TestUnknownHostIsRejected(t *testing.T) {
	h := run(t)
	h.Send(t, update("c1", t0, &fleetv1.HostDetails{CpuCount: 8}, "cpu_count"))
	evs := h.Drain(t)
	if len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
	want := &fleetv1.CommandRejected{Command: "UpdateHostDetails", Reason: "host h1 is not registered"}
	if !proto.Equal(evs[0].GetCommandRejected(), want) || evs[0].Version != 0 || evs[0].CommandId != "c1" {
		t.Fatalf("event %v, want %v", evs[0], want)
	}
	if v := h.Tester.TableValue(hostTable, hostID); v != nil {
		t.Fatalf("a rejection wrote the table: %v", v)
	}
	if got := counter(t, h.Metrics.Commands.WithLabelValues("UpdateHostDetails", string(aggregate.Rejected))); got != 1 {
		t.Errorf("rejections counted %v", got)
	}
}

// The same commands through a fresh processor (a crash and reprocessing)
// yield byte-identical events.
func TestReprocessingEmitsIdenticalEvents(t *testing.T) {
	commands := []*fleetv1.Command{
		register("c1", t0, sampleDetails()),
		update("c2", t1, &fleetv1.HostDetails{Arch: "aarch64"}, "arch"),
		heartbeatAt("c3", t1),
		update("c4", t2, &fleetv1.HostDetails{}, "bogus"),
	}
	emitted := func() [][]byte {
		h := run(t)
		for _, c := range commands {
			h.Send(t, c)
		}
		var out [][]byte
		for {
			_, raw, ok := h.Events.NextRaw()
			if !ok {
				return out
			}
			out = append(out, raw)
		}
	}
	first, second := emitted(), emitted()
	if len(first) != 5 { // the heartbeat's with HostHealthChanged
		t.Fatalf("%d events, want 5", len(first))
	}
	for i := range first {
		if string(first[i]) != string(second[i]) {
			t.Errorf("event %d differs between runs", i)
		}
	}
}

func TestBadCommandsAreDeadLettered(t *testing.T) {
	h := run(t)
	h.Tester.Consume(topics.HostCommands, hostID, []byte("not a command"))
	headers, key, value, ok := h.DLQ.NextRawWithHeaders()
	if !ok || key != hostID || string(value) != "not a command" {
		t.Fatalf("dead letter %q=%q (%v)", key, value, ok)
	}
	if string(headers[kafka.HeaderDLQStage]) != "host" || len(headers[kafka.HeaderDLQReason]) == 0 {
		t.Errorf("headers %v", headers)
	}
	if evs := h.Drain(t); len(evs) != 0 {
		t.Errorf("events %v", evs)
	}
	if got := counter(t, h.Metrics.DeadLetters.WithLabelValues("not_protobuf")); got != 1 {
		t.Errorf("dead letters counted %v", got)
	}
	// Still running.
	h.Send(t, register("c1", t0, sampleDetails()))
	if evs := h.Drain(t); len(evs) != 1 {
		t.Fatalf("after a bad record: %v", evs)
	}
}

func TestReader(t *testing.T) {
	h := run(t)
	view, err := NewView(nil, topics, goka.WithViewTester(h.Tester))
	if err != nil {
		t.Fatal(err)
	}
	aggregatetest.GoRun(t, view.Run)
	r := NewReader(view)

	h.Send(t, register("c1", t0, sampleDetails()))
	got, err := r.Get(hostID)
	if err != nil || !proto.Equal(got, registered()) {
		t.Fatalf("Get(%s) = %v, %v", hostID, got, err)
	}
	got, err = r.Get("nope")
	if got != nil || err != nil {
		t.Fatalf("Get(nope) = %v, %v; want nil, nil", got, err)
	}
}
