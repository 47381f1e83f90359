package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/connectors/agent/sim"
	"github.com/fleetstream/fleetstream/internal/kafka"
	checkproc "github.com/fleetstream/fleetstream/processors/checks"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

var (
	topics = kafka.DefaultTopics()
	table  = goka.GroupTable(checkproc.Group(topics))
	t0     = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

func at(minute int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(minute) * time.Minute))
}

// processor is continuous evaluation's group as production builds it
// (checks.NewProcessor), on goka's tester: every record goes through the
// group's callbacks, the table codec and the rules, without Kafka.
type processor struct {
	tt   *tester.Tester
	reg  *prometheus.Registry
	stop func() error
}

func startProcessor(t tester.T, rules *checkproc.Rules) (*processor, error) {
	tt := tester.New(t)
	reg := prometheus.NewRegistry()
	p, err := checkproc.NewProcessor(nil, topics, rules, checkproc.NewMetrics(reg), slog.New(slog.DiscardHandler), goka.WithTester(tt))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return &processor{tt: tt, reg: reg, stop: func() error { cancel(); return <-done }}, nil
}

// record is one input record of the processor.
type record struct {
	topic, key string
	value      []byte
}

func (p *processor) consume(recs []record) {
	for _, r := range recs {
		p.tt.Consume(r.topic, r.key, r.value)
	}
}

func marshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func discovery(h *host, typ string, minute int, body []byte) record {
	return record{topics.Discoveries, h.id, marshal(&fleetv1.Discovery{
		AgentId: h.id, DiscoveryType: typ, CollectedAt: at(minute), Payload: body, Source: "agent",
	})}
}

// setupRecords bring a fleet into the processor as production does: every
// host's registration (its host aggregate's event), its discoveries and
// gathered facts, then every cluster's event with its two nodes (the
// processor tells each node over its loop topic, and each answers with the
// facts cluster checks use).
func (f *fleet) setupRecords() []record {
	var out []record
	for _, h := range f.hosts {
		hd := &fleetv1.Host{Id: h.id, Version: 1, Details: h.details}
		out = append(out, record{topics.Events, h.id, marshal(&fleetv1.Event{
			EventId: "host-" + h.id + "-1", AggregateType: "host", AggregateId: h.id, Version: 1, OccurredAt: at(0),
			Payload: &fleetv1.Event_HostRegistered{HostRegistered: &fleetv1.HostRegistered{Details: h.details}},
			State:   &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: hd}},
		})})
		for _, typ := range []string{payload.CloudDiscovery, payload.HostDiscovery, payload.SubscriptionDiscovery,
			payload.SaptuneDiscovery, payload.SAPSystemDiscovery, payload.HAClusterDiscovery} {
			out = append(out, discovery(h, typ, 1, h.discoveries[typ]))
		}
		out = append(out, record{topics.Facts, h.id, marshal(&fleetv1.FactsGathered{AgentId: h.id, Facts: h.gathered, GatheredAt: at(1)})})
	}
	for _, c := range f.clusters {
		cl := &fleetv1.Cluster{Id: c.id, Name: c.name, Type: c.typ, Version: 1, Details: c.details}
		for _, hi := range c.members {
			cl.Hosts = append(cl.Hosts, &fleetv1.ClusterHost{HostId: f.hosts[hi].id, Name: f.hosts[hi].details.GetHostname(), Online: true})
		}
		out = append(out, record{topics.Events, c.id, marshal(&fleetv1.Event{
			EventId: "cluster-" + c.id + "-1", AggregateType: "cluster", AggregateId: c.id, Version: 1, OccurredAt: at(0),
			State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Cluster{Cluster: cl}},
		})})
	}
	return out
}

// triggers are what changes on each node in a re-evaluation round: the
// first node's ha_cluster_discovery (crm_mon's last change moves: the node
// and its cluster re-evaluate), the second node's discovery of a type no
// cluster check reads (sim's next change of the host: only the node
// re-evaluates). Each has two variants a round alternates between.
type triggers struct {
	hostType string // the second node's discovery type
	// clusterToo: hostType is a cluster check's fact as well, so the
	// cluster re-evaluates twice a round.
	clusterToo bool
	variants   [2]map[string][]byte // host id -> payload
}

var triggerCache sync.Map // *fleet -> *triggers

func (f *fleet) triggers() (*triggers, error) {
	if t, ok := triggerCache.Load(f); ok {
		return t.(*triggers), nil
	}
	used := map[string]bool{}
	for _, c := range f.cat.Checks() {
		if c.TargetType() == checkproc.TargetCluster {
			for _, cf := range c.Facts {
				used[cf.Gatherer] = true
			}
		}
	}
	if !used[checkproc.DerivedGatherer(payload.HAClusterDiscovery)] {
		return nil, fmt.Errorf("no cluster check reads %s: the re-evaluation round needs another trigger", checkproc.DerivedGatherer(payload.HAClusterDiscovery))
	}
	tr := &triggers{hostType: payload.HostDiscovery, variants: [2]map[string][]byte{{}, {}}}
	for _, typ := range []string{payload.HostDiscovery, payload.SaptuneDiscovery, payload.SubscriptionDiscovery} {
		if !used[checkproc.DerivedGatherer(typ)] {
			tr.hostType = typ
			break
		}
	}
	tr.clusterToo = used[checkproc.DerivedGatherer(tr.hostType)]
	changing, err := sim.New(sim.Config{N: len(f.hosts), Seed: fleetSeed, ChangeRate: 1, DiscoveryTypes: sim.AgentDiscoveryTypes()})
	if err != nil {
		return nil, err
	}
	for i, h := range f.hosts {
		switch h.node {
		case 0:
			var p map[string]any
			if err := json.Unmarshal(h.discoveries[payload.HAClusterDiscovery], &p); err != nil {
				return nil, err
			}
			if s, ok := p["Crmmon"].(map[string]any)["Summary"].(map[string]any); ok {
				s["LastChange"] = map[string]any{"Time": fmt.Sprintf("Sun Mar  1 12:%02d:00 2026", h.cluster%60)}
			}
			raw, err := json.Marshal(p)
			if err != nil {
				return nil, err
			}
			tr.variants[0][h.id], tr.variants[1][h.id] = h.discoveries[payload.HAClusterDiscovery], raw
		default:
			next, changed := changing.NextJSON(i, tr.hostType)
			if !changed {
				return nil, fmt.Errorf("host %d: sim did not change its %s", i, tr.hostType)
			}
			tr.variants[0][h.id], tr.variants[1][h.id] = h.discoveries[tr.hostType], bytes.Clone(next)
		}
	}
	triggerCache.Store(f, tr)
	return tr, nil
}

// roundRecords are round r's (from 1) inputs: one changed discovery per
// host.
func (f *fleet) roundRecords(tr *triggers, r int) []record {
	out := make([]record, 0, len(f.hosts))
	for _, h := range f.hosts {
		typ := payload.HAClusterDiscovery
		if h.node != 0 {
			typ = tr.hostType
		}
		out = append(out, discovery(h, typ, 1+r, tr.variants[r%2][h.id]))
	}
	return out
}

// populated is the processor's table after setupRecords, per fleet.
var populated sync.Map // *fleet -> map[string]*fleetv1.ChecksTarget

func (f *fleet) populate(t tester.T) (map[string]*fleetv1.ChecksTarget, error) {
	if s, ok := populated.Load(f); ok {
		return s.(map[string]*fleetv1.ChecksTarget), nil
	}
	p, err := startProcessor(t, checkproc.NewRules(f.cat))
	if err != nil {
		return nil, err
	}
	p.consume(f.setupRecords())
	state := map[string]*fleetv1.ChecksTarget{}
	for _, k := range p.tt.GetTableKeys(table) {
		v, ok := p.tt.TableValue(table, k).(*fleetv1.ChecksTarget)
		if !ok {
			return nil, fmt.Errorf("table value of %s is %T", k, p.tt.TableValue(table, k))
		}
		state[k] = v
	}
	if err := p.stop(); err != nil {
		return nil, fmt.Errorf("processor stopped with %w", err)
	}
	populated.Store(f, state)
	return state, nil
}

// seeded starts a processor whose table holds state.
func seeded(t tester.T, f *fleet, state map[string]*fleetv1.ChecksTarget) (*processor, error) {
	p, err := startProcessor(t, checkproc.NewRules(f.cat))
	if err != nil {
		return nil, err
	}
	for k, v := range state {
		p.tt.SetTableValue(table, k, v)
	}
	return p, nil
}
