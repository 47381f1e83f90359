package checks

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

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
	tt         *tester.Tester
	m          *Metrics
	exec       *goka.Processor
	events     *tester.QueueTracker
	results    *tester.QueueTracker
	clusters   *tester.QueueTracker
	requests   *tester.QueueTracker
	dlq        *tester.QueueTracker
	reader     *Reader
	targetView *goka.View
}

// run starts both processors and the views as production builds them, on
// goka's tester.
func run(t *testing.T) *harness {
	t.Helper()
	tt := tester.New(t)
	m := NewMetrics(prometheus.NewRegistry())
	log := slog.New(slog.DiscardHandler)
	proc, err := NewProcessor(nil, topics, rules(t), m, log, goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	exec, err := NewExecutionsProcessor(nil, topics, rules(t), ExecutionsOptions{}, m, log, goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	tv, err := NewView(nil, topics, goka.WithViewTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := NewExecutionsView(nil, topics, goka.WithViewTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []func(context.Context) error{proc.Run, exec.Run, tv.Run, ev.Run} {
		goRun(t, r)
	}
	return &harness{
		tt: tt, m: m, exec: exec,
		events: tt.NewQueueTracker(topics.Events), results: tt.NewQueueTracker(topics.ChecksResults),
		clusters: tt.NewQueueTracker(topics.ClusterCommands), requests: tt.NewQueueTracker(topics.AgentRequests),
		dlq: tt.NewQueueTracker(topics.DLQ), reader: NewReader(tv, ev), targetView: tv,
	}
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

func (h *harness) consume(t *testing.T, topic, key string, m proto.Message) {
	t.Helper()
	h.tt.Consume(topic, key, marshal(t, m))
}

// checkEvents returns the checks and execution events emitted since the
// last call.
func (h *harness) checkEvents(t *testing.T) []*fleetv1.Event {
	t.Helper()
	var out []*fleetv1.Event
	for {
		key, value, ok := h.events.Next()
		if !ok {
			return out
		}
		e := new(fleetv1.Event)
		if err := proto.Unmarshal(value.([]byte), e); err != nil {
			continue // TestBadRecords' own garbage
		}
		if t := e.GetAggregateType(); t != AggregateType && t != ExecutionAggregateType {
			continue
		}
		if key != e.GetAggregateId() {
			t.Errorf("event keyed %q for %q", key, e.GetAggregateId())
		}
		out = append(out, e)
	}
}

func (h *harness) clusterHealth(t *testing.T) []string {
	t.Helper()
	var out []string
	for {
		key, value, ok := h.clusters.Next()
		if !ok {
			return out
		}
		c := new(fleetv1.Command)
		if err := proto.Unmarshal(value.([]byte), c); err != nil || key != cluster {
			t.Fatalf("cluster command %q: %v", key, err)
		}
		out = append(out, c.GetUpdateClusterChecksHealth().GetHealth())
	}
}

func (h *harness) agentRequests(t *testing.T) []*fleetv1.FactsGatheringRequested {
	t.Helper()
	var out []*fleetv1.FactsGatheringRequested
	for {
		key, value, ok := h.requests.Next()
		if !ok {
			return out
		}
		r := new(fleetv1.FactsGatheringRequested)
		if err := proto.Unmarshal(value.([]byte), r); err != nil || key != r.GetAgentId() {
			t.Fatalf("agent request keyed %q: %v %v", key, r, err)
		}
		out = append(out, r)
	}
}

// clusterOfTwo registers hosts A and B and their cluster with the cluster
// checks TST003 and TST004 selected.
func (h *harness) clusterOfTwo(t *testing.T) {
	t.Helper()
	h.consume(t, topics.Events, hostA, hostEvent(hostA, 1, "hana01"))
	h.consume(t, topics.Events, hostB, hostEvent(hostB, 1, "hana02"))
	h.consume(t, topics.Events, cluster, clusterEvent(1, hostA, hostB))
	h.consume(t, topics.ChecksCommands, cluster, command(cluster, "sel", 0, &fleetv1.SelectChecks{CheckIds: []string{"TST003", "TST004"}, TargetType: TargetCluster}))
}

// clusterChanges are the changes of the cluster's checks among events.
func clusterChanges(events []*fleetv1.Event) []string {
	return changes(slices.DeleteFunc(slices.Clone(events), func(e *fleetv1.Event) bool { return e.GetAggregateId() != cluster }))
}

func TestClusterChecksOverMemberFacts(t *testing.T) {
	h := run(t)
	h.clusterOfTwo(t)
	h.consume(t, topics.Discoveries, hostA, hostDiscovery(t, hostA, 1, 4096, "x86_64"))
	if got := clusterChanges(h.checkEvents(t)); len(got) != 0 {
		t.Fatalf("evaluated with one member's facts: %v", got)
	}
	h.consume(t, topics.Discoveries, hostB, hostDiscovery(t, hostB, 1, 4096, "x86_64"))
	if got := clusterChanges(h.checkEvents(t)); !slices.Equal(got, []string{"TST004 ->passing"}) {
		t.Fatalf("changes %v", got)
	}
	token := func(host string, minute int, v string) {
		h.consume(t, topics.Facts, host, factsGathered(host, minute, "", fact("corosync.conf@v1", "totem.token", v)))
	}
	token(hostA, 2, "30000")
	token(hostB, 2, "30000")
	if got := clusterChanges(h.checkEvents(t)); !slices.Equal(got, []string{"TST003 ->passing"}) {
		t.Fatalf("changes %v", got)
	}
	if got := h.clusterHealth(t); !slices.Equal(got, []string{"passing"}) {
		t.Fatalf("cluster health commands %v", got)
	}

	token(hostB, 3, "5000")
	evs := h.checkEvents(t)
	if got := clusterChanges(evs); !slices.Equal(got, []string{"TST003 passing->critical"}) {
		t.Fatalf("changes %v", got)
	}
	if got := h.clusterHealth(t); !slices.Equal(got, []string{"critical"}) {
		t.Fatalf("cluster health commands %v", got)
	}
	// The record on the results topic is the event's result.
	var last *fleetv1.CheckResult
	for {
		key, value, ok := h.results.Next()
		if !ok {
			break
		}
		r := new(fleetv1.CheckResult)
		if err := proto.Unmarshal(value.([]byte), r); err != nil || key != r.GetEntityId() {
			t.Fatalf("result keyed %q: %v %v", key, r, err)
		}
		if key == cluster {
			last = r
		}
	}
	if want := evs[0].GetCheckResultChanged().GetResult(); !proto.Equal(last, want) || len(last.GetTargets()) != 2 {
		t.Fatalf("last result %v, want %v", last, want)
	}
	// Unchanged facts: nothing.
	token(hostB, 4, "5000")
	if evs := clusterChanges(h.checkEvents(t)); len(evs) != 0 {
		t.Fatalf("unchanged facts emitted %v", evs)
	}

	// B leaves: the cluster is evaluated over A alone, and B no longer
	// forwards its facts.
	// TST004's result changes only in its targets: that is a change too.
	h.consume(t, topics.Events, cluster, clusterEvent(2, hostA))
	if got := clusterChanges(h.checkEvents(t)); !slices.Equal(got, []string{"TST003 critical->passing", "TST004 passing->passing"}) {
		t.Fatalf("changes %v", got)
	}
	token(hostB, 5, "1")
	if evs := clusterChanges(h.checkEvents(t)); len(evs) != 0 {
		t.Fatalf("a former member's facts changed the cluster: %v", evs)
	}
	st, members, err := h.reader.Target(cluster)
	if err != nil || st.GetHealth() != "passing" || !slices.Equal(members, []string{hostA}) || st.GetTargetType() != TargetCluster {
		t.Fatalf("Target(cluster) = %v %v %v", st, members, err)
	}
	if v, _ := h.targetView.Get(hostB); v.(*fleetv1.ChecksTarget).GetClusterId() != "" {
		t.Errorf("host B still thinks it is in a cluster: %v", v)
	}
	if got := h.clusterHealth(t); !slices.Equal(got, []string{"passing"}) {
		t.Fatalf("cluster health commands when B left %v", got)
	}

	// B rejoins: until its facts are forwarded again the checks keep
	// their results (no removal and re-adding), then are evaluated over
	// both.
	h.consume(t, topics.Events, cluster, clusterEvent(3, hostA, hostB))
	if got := clusterChanges(h.checkEvents(t)); !slices.Equal(got, []string{"TST003 passing->critical", "TST004 passing->passing"}) {
		t.Fatalf("changes when B rejoined %v", got)
	}
	if got := h.clusterHealth(t); !slices.Equal(got, []string{"critical"}) {
		t.Fatalf("cluster health commands when B rejoined %v", got)
	}
}

func TestExecutionWithOneSilentAgent(t *testing.T) {
	h := run(t)
	h.clusterOfTwo(t)
	for _, id := range []string{hostA, hostB} {
		h.consume(t, topics.Discoveries, id, hostDiscovery(t, id, 1, 4096, "x86_64"))
	}
	h.checkEvents(t)

	h.consume(t, topics.ChecksCommands, cluster, command(cluster, "req-1", 10, &fleetv1.RequestExecution{ExecutionId: "x1", Actor: "alice"}))
	evs := h.checkEvents(t)
	if len(evs) != 1 || evs[0].GetExecutionRequested() == nil {
		t.Fatalf("events %v", evs)
	}
	exec := evs[0].GetExecutionRequested().GetExecution()
	if !slices.Equal(exec.GetTargets(), []string{hostA, hostB}) || !slices.Equal(exec.GetCheckIds(), []string{"TST003", "TST004"}) ||
		exec.GetStatus() != StatusRunning || !exec.GetDeadline().AsTime().Equal(at(10).AsTime().Add(DefaultExecutionTimeout)) {
		t.Fatalf("execution %v", exec)
	}
	reqs := h.agentRequests(t)
	if len(reqs) != 2 || reqs[0].GetAgentId() != hostA || reqs[1].GetAgentId() != hostB {
		t.Fatalf("requests %v", reqs)
	}
	// Derived facts are not asked of agents.
	if f := reqs[0].GetFacts(); len(f) != 1 || f[0].GetGatherer() != "corosync.conf@v1" || f[0].GetArgument() != "totem.token" || f[0].GetCheckId() != "TST003" {
		t.Fatalf("facts asked %v", f)
	}

	// A second request while x1 runs is refused, naming x1.
	h.consume(t, topics.ChecksCommands, cluster, command(cluster, "req-2", 11, &fleetv1.RequestExecution{ExecutionId: "x2"}))
	evs = h.checkEvents(t)
	if len(evs) != 1 || !strings.Contains(evs[0].GetCommandRejected().GetReason(), "execution x1 is running") {
		t.Fatalf("events %v", evs)
	}
	g, err := h.reader.Executions(cluster)
	if err != nil || g.GetRunning().GetId() != "x1" || g.GetRejectedExecutionId() != "x2" || g.GetRejectedBecauseOf() != "x1" {
		t.Fatalf("executions %v %v", g, err)
	}

	answer := factsGathered(hostA, 11, "x1", fact("corosync.conf@v1", "totem.token", "30000"))
	h.consume(t, topics.Facts, hostA, answer)
	if evs := h.checkEvents(t); len(evs) != 0 {
		t.Fatalf("completed with one answer of two: %v", evs)
	}
	// Continuous evaluation does not take an execution's answers.
	if st, _, _ := h.reader.Target(cluster); len(st.GetResults()) != 1 {
		t.Fatalf("continuous results %v", st.GetResults())
	}

	visit := func(at time.Time) {
		t.Helper()
		if err := h.exec.VisitAll(context.Background(), visitExpire, at); err != nil {
			t.Fatal(err)
		}
		h.tt.Catchup()
	}
	visit(exec.GetDeadline().AsTime().Add(-time.Second))
	if evs := h.checkEvents(t); len(evs) != 0 {
		t.Fatalf("completed before the deadline: %v", evs)
	}
	visit(exec.GetDeadline().AsTime().Add(time.Minute))
	evs = h.checkEvents(t)
	if len(evs) != 1 || evs[0].GetExecutionCompleted() == nil {
		t.Fatalf("events %v", evs)
	}
	done := evs[0].GetExecutionCompleted().GetExecution()
	if done.GetStatus() != StatusCompleted || done.GetResult() != "critical" || !slices.Equal(done.GetTimedOut(), []string{hostB}) ||
		!slices.Equal(done.GetAnswered(), []string{hostA}) || !done.GetCompletedAt().AsTime().Equal(exec.GetDeadline().AsTime()) {
		t.Fatalf("completed %v", done)
	}
	for _, r := range done.GetCheckResults() {
		if r.GetResult() != "critical" || r.GetExecutionId() != "x1" || r.GetEntityId() != cluster || len(r.GetTargets()) != 2 {
			t.Errorf("check result %v", r)
		}
		if ta, tb := r.GetTargets()[0], r.GetTargets()[1]; ta.GetTargetId() != hostA || ta.GetTimedOut() || tb.GetTargetId() != hostB || !tb.GetTimedOut() || tb.GetResult() != "critical" {
			t.Errorf("%s targets %v", r.GetCheckId(), r.GetTargets())
		}
	}
	if n := testutil.ToFloat64(h.m.executions.WithLabelValues("critical")); n != 1 {
		t.Errorf("executions metric %v", n)
	}
	// A late answer changes nothing; the next request runs.
	h.consume(t, topics.Facts, hostB, factsGathered(hostB, 20, "x1", fact("corosync.conf@v1", "totem.token", "30000")))
	if evs := h.checkEvents(t); len(evs) != 0 {
		t.Fatalf("late answer: %v", evs)
	}
	h.consume(t, topics.ChecksCommands, cluster, command(cluster, "req-3", 30, &fleetv1.RequestExecution{ExecutionId: "x3", Targets: []string{hostA}, CheckIds: []string{"TST003"}}))
	h.consume(t, topics.Facts, hostA, factsGathered(hostA, 30, "x3", fact("corosync.conf@v1", "totem.token", "30000")))
	evs = h.checkEvents(t)
	if len(evs) != 2 || evs[1].GetExecutionCompleted().GetExecution().GetResult() != "passing" {
		t.Fatalf("events %v", evs)
	}
	g, _ = h.reader.Executions(cluster)
	if g.GetRunning() != nil || g.GetLast().GetId() != "x3" {
		t.Fatalf("executions %v", g)
	}
}

func TestBadRecords(t *testing.T) {
	h := run(t)
	h.tt.Consume(topics.Events, "x", []byte("not an event"))
	h.tt.Consume(topics.Discoveries, "x", []byte("not a discovery"))
	h.tt.Consume(topics.Facts, "x", []byte("not facts"))
	h.tt.Consume(topics.ChecksCommands, "x", []byte("not a command"))
	h.consume(t, topics.ChecksCommands, "y", command("x", "c", 0, &fleetv1.SelectChecks{}))
	var stages []string
	for {
		headers, _, _, ok := h.dlq.NextRawWithHeaders()
		if !ok {
			break
		}
		stages = append(stages, string(headers[kafka.HeaderDLQStage])+"/"+string(headers[kafka.HeaderDLQTopic]))
	}
	want := []string{"checks/" + topics.Facts, "checks/" + topics.ChecksCommands, "checks/" + topics.ChecksCommands}
	if !slices.Equal(stages, want) {
		t.Fatalf("dead letters %v, want %v", stages, want)
	}
	// Still running.
	h.consume(t, topics.Discoveries, hostA, hostDiscovery(t, hostA, 1, 4096, "x86_64"))
	if got := changes(h.checkEvents(t)); !slices.Contains(got, "TST001 ->passing") {
		t.Fatalf("after bad records: %v", got)
	}
}

// fleetstream_checks_evaluations_total counts every evaluation, also those
// that change no result; fleetstream_checks_result_changes_total the
// changes.
func TestEvaluationsMetric(t *testing.T) {
	h := run(t)
	h.clusterOfTwo(t)
	total := func(c *prometheus.CounterVec) float64 {
		var n float64
		for _, r := range []string{"passing", "warning", "critical", "error", "none"} {
			n += testutil.ToFloat64(c.WithLabelValues(r))
		}
		return n
	}
	h.consume(t, topics.Discoveries, hostA, hostDiscovery(t, hostA, 1, 4096, "x86_64"))
	h.consume(t, topics.Discoveries, hostB, hostDiscovery(t, hostB, 1, 4096, "x86_64"))
	evals, changed := total(h.m.evaluations), total(h.m.resultChanges)
	if evals == 0 || changed == 0 {
		t.Fatalf("evaluations %v, result changes %v", evals, changed)
	}
	// Less memory on B: B and the cluster evaluate again; TST004 stays
	// passing on the cluster (it changes nothing), TST001 turns critical on B.
	h.consume(t, topics.Discoveries, hostB, hostDiscovery(t, hostB, 2, 1024, "x86_64"))
	if got := testutil.ToFloat64(h.m.evaluations.WithLabelValues("critical")); got < 1 {
		t.Errorf("critical evaluations %v", got)
	}
	if e, c := total(h.m.evaluations)-evals, total(h.m.resultChanges)-changed; e <= c {
		t.Errorf("a round of %v evaluations changed %v results: evaluations not counted apart from changes", e, c)
	}
}
