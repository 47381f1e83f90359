package membership

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sim runs the rules against models of the host, cluster, SAP system and
// database aggregates. Every key has its own queues (its events, its loop
// messages, its commands), each in order as one Kafka partition delivers
// it; which queue goes next is chosen at random, so every interleaving of
// partitions is possible. With dup set, some records are delivered twice
// (at-least-once): the process manager's inputs, not the actions of the
// script.
type sim struct {
	t      *testing.T
	rnd    *rand.Rand
	dup    bool
	pm     map[string]*fleetv1.Membership
	hosts  map[string]*simHost
	aggs   map[string]*simAggregate
	queues map[string][]func()
	// uncommitted are the records of each queue delivered since its last
	// commit: a crash delivers them again.
	uncommitted map[string][]func()
	// sent are the commands the process manager sent, in order.
	sent []*fleetv1.Command
}

type simHost struct {
	version      uint64
	lost         bool
	deregistered bool
}

// simAggregate is a cluster, SAP system or database: its member entries
// (host id and stale) in order, as the real aggregates apply the cascade
// commands (idempotent, a no-op for non-members, tombstoned when emptied).
type simAggregate struct {
	typ          string
	version      uint64
	entries      []simEntry
	deregistered bool
}

// simEntry is a cluster member or an instance (inst) on a host.
type simEntry struct {
	host  string
	inst  string
	stale bool
}

func newSim(t *testing.T, seed uint64, dup bool) *sim {
	return &sim{
		t: t, rnd: rand.New(rand.NewPCG(seed, seed)), dup: dup,
		pm: map[string]*fleetv1.Membership{}, hosts: map[string]*simHost{}, aggs: map[string]*simAggregate{},
		queues: map[string][]func(){}, uncommitted: map[string][]func(){},
	}
}

func (s *sim) enqueue(queue string, f func()) {
	s.queues[queue] = append(s.queues[queue], f)
}

// run delivers records until every queue is empty.
func (s *sim) run() {
	for steps := 0; ; steps++ {
		if steps > 100000 {
			s.t.Fatal("no quiescence: the process manager and the aggregates keep messaging")
		}
		var names []string
		for n, q := range s.queues {
			if len(q) > 0 {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return
		}
		slices.Sort(names) // map order is not seeded
		n := names[s.rnd.IntN(len(names))]
		f := s.queues[n][0]
		s.queues[n] = s.queues[n][1:]
		f()
		if !s.dup || strings.HasPrefix(n, "commands/") || strings.HasPrefix(n, "host/") {
			continue
		}
		s.uncommitted[n] = append(s.uncommitted[n], f)
		switch s.rnd.IntN(8) {
		case 0:
			// A crash before the offset was committed: what was delivered
			// since the last commit comes again, in order.
			s.queues[n] = append(s.uncommitted[n], s.queues[n]...)
			s.uncommitted[n] = nil
		case 1, 2, 3:
			s.uncommitted[n] = nil
		}
	}
}

// deliverEvent hands e, keyed by its aggregate, to the process manager.
func (s *sim) deliverEvent(e *fleetv1.Event) {
	s.enqueue("events/"+e.GetAggregateId(), func() {
		s.apply(e.GetAggregateId(), applyEvent(s.pm[e.GetAggregateId()], e.GetAggregateId(), e))
	})
}

func (s *sim) apply(key string, r result) {
	if r.state != nil {
		s.pm[key] = r.state
	}
	for _, snd := range r.sends {
		s.enqueue("loop/"+snd.key, func() {
			s.apply(snd.key, applyUpdate(s.pm[snd.key], snd.key, snd.msg, "trace-loop"))
		})
	}
	for _, c := range r.commands {
		s.sent = append(s.sent, c.cmd)
		if c.cmd.GetIssuedAt() == nil || c.cmd.GetCommandId() == "" {
			s.t.Errorf("command without envelope: %v", c.cmd)
		}
		s.enqueue("commands/"+c.cmd.GetAggregateId(), func() { s.command(c.typ, c.cmd) })
	}
}

// Host events of the script.
const (
	hostRegistered   = "registered"
	heartbeatFailed  = "heartbeat failed"
	heartbeatOK      = "heartbeat succeeded"
	hostDeregistered = "deregistered"
	hostRestored     = "restored"
)

// hostEvent changes host id as what says and emits its event.
func (s *sim) hostEvent(id, what string) {
	s.enqueue("host/"+id, func() {
		h := s.hosts[id]
		if h == nil {
			h = new(simHost)
			s.hosts[id] = h
		}
		h.version++
		e := &fleetv1.Event{
			EventId: fmt.Sprintf("%s/%d", id, h.version), AggregateType: "host", AggregateId: id, Version: h.version,
			OccurredAt: timestamppb.New(t0.Add(time.Duration(h.version) * time.Second)), TraceId: "trace-" + id,
		}
		switch what {
		case hostRegistered:
			e.Payload = &fleetv1.Event_HostRegistered{HostRegistered: &fleetv1.HostRegistered{}}
		case heartbeatFailed:
			h.lost = true
			e.Payload = &fleetv1.Event_HeartbeatFailed{HeartbeatFailed: &fleetv1.HeartbeatFailed{}}
		case heartbeatOK:
			h.lost = false
			e.Payload = &fleetv1.Event_HeartbeatSucceeded{HeartbeatSucceeded: &fleetv1.HeartbeatSucceeded{}}
		case hostDeregistered:
			h.deregistered = true
			e.Payload = &fleetv1.Event_HostDeregistered{HostDeregistered: &fleetv1.HostDeregistered{}}
		case hostRestored:
			h.deregistered = false
			e.Payload = &fleetv1.Event_HostRestored{HostRestored: &fleetv1.HostRestored{}}
		default:
			s.t.Fatalf("unknown host event %q", what)
		}
		heartbeat := "passing"
		if h.lost {
			heartbeat = heartbeatCritical
		}
		e.State = &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: &fleetv1.Host{Id: id, Heartbeat: heartbeat, Version: h.version}}}
		s.deliverEvent(e)
	})
}

// join registers entry inst of host on the aggregate id of typ (a
// discovery through scenario detection, in production); registering it
// again changes nothing.
func (s *sim) join(typ, id, host, inst string) {
	s.enqueue("commands/"+id, func() {
		a := s.aggregate(typ, id)
		if slices.ContainsFunc(a.entries, func(e simEntry) bool { return e.host == host && e.inst == inst }) {
			return
		}
		a.entries = append(a.entries, simEntry{host: host, inst: inst})
		a.deregistered = false
		s.emit(id, a)
	})
}

// leave removes host's entries from the aggregate (the discovery no longer
// reports them).
func (s *sim) leave(typ, id, host string) {
	s.enqueue("commands/"+id, func() {
		s.command(typ, deregisterCommand(typ, id, host))
	})
}

func deregisterCommand(typ, id, host string) *fleetv1.Command {
	c := &fleetv1.Command{AggregateId: id}
	switch typ {
	case TypeCluster:
		c.Body = &fleetv1.Command_DeregisterClusterHost{DeregisterClusterHost: &fleetv1.DeregisterClusterHost{HostId: host}}
	case TypeSapSystem:
		c.Body = &fleetv1.Command_DeregisterApplicationInstances{DeregisterApplicationInstances: &fleetv1.DeregisterApplicationInstances{HostId: host}}
	case TypeDatabase:
		c.Body = &fleetv1.Command_DeregisterDatabaseInstances{DeregisterDatabaseInstances: &fleetv1.DeregisterDatabaseInstances{HostId: host}}
	}
	return c
}

func (s *sim) aggregate(typ, id string) *simAggregate {
	a := s.aggs[id]
	if a == nil {
		a = &simAggregate{typ: typ}
		s.aggs[id] = a
	}
	if a.typ != typ {
		s.t.Fatalf("aggregate %s is a %s, not a %s", id, a.typ, typ)
	}
	return a
}

// command applies a cascade command as the aggregates do.
func (s *sim) command(typ string, cmd *fleetv1.Command) {
	a := s.aggregate(typ, cmd.GetAggregateId())
	var host string
	var stale, deregister bool
	switch b := cmd.GetBody().(type) {
	case *fleetv1.Command_DeregisterClusterHost:
		host, deregister = b.DeregisterClusterHost.GetHostId(), true
	case *fleetv1.Command_DeregisterApplicationInstances:
		host, deregister = b.DeregisterApplicationInstances.GetHostId(), true
	case *fleetv1.Command_DeregisterDatabaseInstances:
		host, deregister = b.DeregisterDatabaseInstances.GetHostId(), true
	case *fleetv1.Command_MarkClusterHostStale:
		host, stale = b.MarkClusterHostStale.GetHostId(), b.MarkClusterHostStale.GetStale()
	case *fleetv1.Command_MarkApplicationInstancesStale:
		host, stale = b.MarkApplicationInstancesStale.GetHostId(), b.MarkApplicationInstancesStale.GetStale()
	case *fleetv1.Command_MarkDatabaseInstancesStale:
		host, stale = b.MarkDatabaseInstancesStale.GetHostId(), b.MarkDatabaseInstancesStale.GetStale()
	default:
		s.t.Fatalf("unexpected command %v", cmd)
	}
	changed := false
	var kept []simEntry
	for _, e := range a.entries {
		switch {
		case e.host != host:
		case deregister:
			changed = true
			continue
		case e.stale != stale:
			e.stale, changed = stale, true
		}
		kept = append(kept, e)
	}
	if !changed {
		return // idempotent: no change, no event
	}
	a.entries = kept
	a.deregistered = len(kept) == 0
	s.emit(cmd.GetAggregateId(), a)
}

// emit sends the aggregate's next event with its state.
func (s *sim) emit(id string, a *simAggregate) {
	a.version++
	e := &fleetv1.Event{
		EventId: fmt.Sprintf("%s/%d", id, a.version), AggregateType: a.typ, AggregateId: id, Version: a.version,
		OccurredAt: timestamppb.New(t0.Add(time.Duration(a.version) * time.Second)), TraceId: "trace-" + id,
		State: aggregateState(a.typ, id, a.version, a.deregistered, a.entries),
	}
	s.deliverEvent(e)
}

// aggregateState is the state the real aggregate of typ carries.
func aggregateState(typ, id string, version uint64, deregistered bool, entries []simEntry) *fleetv1.AggregateState {
	switch typ {
	case TypeCluster:
		c := &fleetv1.Cluster{Id: id, Version: version, Deregistered: deregistered}
		for _, e := range entries {
			c.Hosts = append(c.Hosts, &fleetv1.ClusterHost{HostId: e.host, Stale: e.stale, Online: true})
		}
		return &fleetv1.AggregateState{State: &fleetv1.AggregateState_Cluster{Cluster: c}}
	case TypeSapSystem:
		sys := &fleetv1.SapSystem{Id: id, Sid: "PRD", Version: version, Deregistered: deregistered}
		for _, e := range entries {
			sys.ApplicationInstances = append(sys.ApplicationInstances, &fleetv1.ApplicationInstance{HostId: e.host, InstanceNumber: e.inst, Stale: e.stale})
		}
		return &fleetv1.AggregateState{State: &fleetv1.AggregateState_SapSystem{SapSystem: sys}}
	default:
		d := &fleetv1.Database{Id: id, Sid: "HDB", Version: version, Deregistered: deregistered}
		for _, e := range entries {
			d.Instances = append(d.Instances, &fleetv1.DatabaseInstance{HostId: e.host, InstanceNumber: e.inst, Stale: e.stale})
		}
		return &fleetv1.AggregateState{State: &fleetv1.AggregateState_Database{Database: d}}
	}
}

// check asserts the converged state: every entry of a host is stale
// exactly when its heartbeat is lost, a deregistered host has no entries,
// and the process manager's view of each host matches the aggregates.
func (s *sim) check() {
	s.t.Helper()
	want := map[string]map[string]bool{} // host -> aggregate -> member
	for _, id := range slices.Sorted(maps.Keys(s.aggs)) {
		a := s.aggs[id]
		for _, e := range a.entries {
			h := s.hosts[e.host]
			if h == nil {
				h = new(simHost) // never had an event: alive, registered
			}
			if h.deregistered {
				s.t.Errorf("%s %s still has an entry of deregistered host %s", a.typ, id, e.host)
			}
			if e.stale != h.lost {
				s.t.Errorf("%s %s: host %s entry stale=%v, heartbeat lost=%v", a.typ, id, e.host, e.stale, h.lost)
			}
			if want[e.host] == nil {
				want[e.host] = map[string]bool{}
			}
			want[e.host][id] = true
		}
		if a.deregistered != (len(a.entries) == 0) {
			s.t.Errorf("%s %s: deregistered=%v with %d entries", a.typ, id, a.deregistered, len(a.entries))
		}
	}
	for _, host := range slices.Sorted(maps.Keys(s.pm)) {
		hm := s.pm[host].GetHost()
		if hm == nil {
			continue
		}
		got := map[string]bool{}
		for _, l := range [][]*fleetv1.AggregateMembership{hm.GetClusters(), hm.GetSapSystems(), hm.GetDatabases()} {
			for _, m := range l {
				if !m.GetMember() {
					continue
				}
				got[m.GetId()] = true
				if lost := s.hosts[host].lost; m.GetAllStale() != lost || m.GetAnyStale() != lost {
					s.t.Errorf("process manager: host %s in %s all_stale=%v any_stale=%v, heartbeat lost=%v", host, m.GetId(), m.GetAllStale(), m.GetAnyStale(), lost)
				}
			}
		}
		if !maps.Equal(got, want[host]) && (len(got) > 0 || len(want[host]) > 0) {
			s.t.Errorf("process manager: host %s member of %v, aggregates say %v", host, got, want[host])
		}
	}
}

// landscape is the script every interleaving runs: three hosts in a
// cluster, a SAP system (two instances on h1) and a database; h1 loses its
// heartbeat and regains it, h2 loses it and is deregistered (and a late
// discovery adds it again), h3 joins the cluster while its heartbeat is
// lost, then leaves the SAP system; h4 is deregistered from cluster c2,
// restored, joins again and regains its heartbeat.
func landscape(s *sim) {
	for _, h := range []string{"h1", "h2", "h3"} {
		s.hostEvent(h, hostRegistered)
	}
	s.join(TypeCluster, "c1", "h1", "")
	s.join(TypeCluster, "c1", "h2", "")
	s.join(TypeSapSystem, "s1", "h1", "00")
	s.join(TypeSapSystem, "s1", "h1", "01")
	s.join(TypeSapSystem, "s1", "h3", "02")
	s.join(TypeDatabase, "d1", "h2", "00")
	s.join(TypeDatabase, "d1", "h1", "00")

	s.hostEvent("h1", heartbeatFailed)
	s.hostEvent("h1", heartbeatOK)

	s.hostEvent("h2", heartbeatFailed)
	s.hostEvent("h2", hostDeregistered)
	s.join(TypeCluster, "c1", "h2", "")

	s.hostEvent("h3", heartbeatFailed)
	s.join(TypeCluster, "c1", "h3", "")
	s.leave(TypeSapSystem, "s1", "h3")

	s.join(TypeCluster, "c2", "h4", "")
	s.hostEvent("h4", heartbeatFailed)
	s.hostEvent("h4", hostDeregistered)
	s.hostEvent("h4", hostRestored)
	s.join(TypeCluster, "c2", "h4", "")
	s.hostEvent("h4", heartbeatOK)
}

func TestConvergesInEveryOrder(t *testing.T) {
	for seed := range uint64(300) {
		dup := seed%2 == 1
		t.Run(fmt.Sprintf("seed%d-dup%v", seed, dup), func(t *testing.T) {
			s := newSim(t, seed, dup)
			landscape(s)
			s.run()
			s.check()
			// What the script leaves, whatever the order.
			if got := s.aggs["c1"].entries; !slices.Equal(got, []simEntry{{"h1", "", false}, {"h3", "", true}}) {
				t.Errorf("cluster c1 entries %v", got)
			}
			// h4's second join may come before its deregistration, which
			// then removes it.
			if got := s.aggs["c2"].entries; len(got) > 0 && !slices.Equal(got, []simEntry{{"h4", "", false}}) {
				t.Errorf("cluster c2 entries %v", got)
			}
			if got := s.aggs["d1"].entries; !slices.Equal(got, []simEntry{{"h1", "00", false}}) {
				t.Errorf("database d1 entries %v", got)
			}
			if got := s.aggs["s1"].entries; !slices.Equal(got, []simEntry{{"h1", "00", false}, {"h1", "01", false}}) {
				t.Errorf("SAP system s1 entries %v", got)
			}
		})
	}
}

// TestEmptiedAggregateIsTombstoned: deregistering a database's only host
// empties it; the process manager forgets the host's membership.
func TestEmptiedAggregateIsTombstoned(t *testing.T) {
	s := newSim(t, 1, false)
	s.join(TypeDatabase, "d1", "h1", "00")
	s.hostEvent("h1", heartbeatFailed)
	s.run()
	if got := s.aggs["d1"].entries; !slices.Equal(got, []simEntry{{"h1", "00", true}}) {
		t.Fatalf("entries after heartbeat loss %v", got)
	}
	s.hostEvent("h1", hostDeregistered)
	s.run()
	s.check()
	if a := s.aggs["d1"]; !a.deregistered || len(a.entries) != 0 {
		t.Fatalf("database after its host's deregistration %+v", a)
	}
	want := &fleetv1.HostMemberships{
		Databases:     []*fleetv1.AggregateMembership{{Id: "d1", Version: 3}},
		HeartbeatLost: true, Deregistered: true, Version: 2,
	}
	if got := s.pm["h1"].GetHost(); !proto.Equal(got, want) {
		t.Fatalf("host memberships %v, want %v", got, want)
	}
	if got := s.pm["d1"].GetAggregate(); !proto.Equal(got, &fleetv1.AggregateMembers{Type: TypeDatabase, Version: 3}) {
		t.Fatalf("database members %v", got)
	}
}
