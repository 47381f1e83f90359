package checks

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/checks/catalog"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	hostA   = "0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4"
	hostB   = "7c1c6a4e-5d3e-4bfa-9f1f-4c3d2e1f0a9b"
	cluster = "5ab1b7f6f6b6e6b8f1c8e7e7a3b2c1d0"
)

// testRules are the rules of the embedded catalog plus the test checks in
// testdata/checks (ids TST*, groups Test and TestCluster), whose results
// the tests assert; the embedded checks may add others.
var testRules = sync.OnceValues(func() (*Rules, error) {
	cat, err := catalog.Load("testdata/checks")
	if err != nil {
		return nil, err
	}
	return NewRules(cat), nil
})

func rules(t testing.TB) *Rules {
	t.Helper()
	r, err := testRules()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func at(minutes int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(minutes) * time.Minute))
}

// hostDiscovery is the fixture host_discovery of agent id with its memory
// set to memoryMB and its arch to arch.
func hostDiscovery(t testing.TB, id string, minute int, memoryMB int, arch string) *fleetv1.Discovery {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/fixtures/trento/discovery/host_discovery.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Payload map[string]any `json:"payload"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc.Payload["total_memory_mb"] = memoryMB
	doc.Payload["arch"] = arch
	p, err := json.MarshalIndent(doc.Payload, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return &fleetv1.Discovery{AgentId: id, DiscoveryType: payload.HostDiscovery, CollectedAt: at(minute), Payload: p, Source: "agent"}
}

func factsGathered(id string, minute int, executionID string, facts ...*fleetv1.GatheredFact) *fleetv1.FactsGathered {
	fg := &fleetv1.FactsGathered{ExecutionId: executionID, AgentId: id, Facts: facts, GatheredAt: at(minute)}
	if executionID != "" {
		fg.GroupId = cluster
	}
	return fg
}

func fact(gatherer, argument string, value any) *fleetv1.GatheredFact {
	v, err := structpb.NewValue(value)
	if err != nil {
		panic(err)
	}
	return &fleetv1.GatheredFact{Gatherer: gatherer, Argument: argument, Value: v}
}

func command(key, id string, minute int, body any) *fleetv1.Command {
	c := &fleetv1.Command{CommandId: id, AggregateId: key, IssuedAt: at(minute), TraceId: "trace-" + id}
	switch b := body.(type) {
	case *fleetv1.SelectChecks:
		c.Body = &fleetv1.Command_SelectChecks{SelectChecks: b}
	case *fleetv1.OverrideCheckValue:
		c.Body = &fleetv1.Command_OverrideCheckValue{OverrideCheckValue: b}
	case *fleetv1.RequestExecution:
		c.Body = &fleetv1.Command_RequestExecution{RequestExecution: b}
	default:
		panic(fmt.Sprintf("no command body %T", body))
	}
	return c
}

func hostEvent(id string, version uint64, hostname string) *fleetv1.Event {
	h := &fleetv1.Host{Id: id, Version: version, Details: &fleetv1.HostDetails{Hostname: hostname, Arch: "x86_64", OsName: "SLES", OsVersion: "15-SP5"}}
	return &fleetv1.Event{
		EventId: fmt.Sprintf("host-%s-%d", id, version), AggregateType: "host", AggregateId: id, Version: version, OccurredAt: at(0),
		Payload: &fleetv1.Event_HostRegistered{HostRegistered: &fleetv1.HostRegistered{Details: h.Details}},
		State:   &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: h}},
	}
}

func clusterEvent(version uint64, hosts ...string) *fleetv1.Event {
	c := &fleetv1.Cluster{Id: cluster, Name: "hana_cluster", Type: "hana_scale_up", Version: version}
	for _, h := range hosts {
		c.Hosts = append(c.Hosts, &fleetv1.ClusterHost{HostId: h, Name: h[:4], Online: true})
	}
	return &fleetv1.Event{
		EventId: fmt.Sprintf("cluster-%d", version), AggregateType: "cluster", AggregateId: cluster, Version: version, OccurredAt: at(0),
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Cluster{Cluster: c}},
	}
}

// changes describes the CheckResultChanged events of the test checks
// among events as "check before->after".
func changes(events []*fleetv1.Event) []string {
	var out []string
	for _, e := range events {
		c := e.GetCheckResultChanged()
		if c == nil || !strings.HasPrefix(c.GetCheckId(), "TST") {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s->%s", c.GetCheckId(), c.GetBefore(), c.GetAfter()))
	}
	return out
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
