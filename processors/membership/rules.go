// Package membership is the process manager that carries what happens to
// a host over to the clusters, SAP systems and databases it is part of:
// heartbeat loss marks the host's cluster membership and instances stale,
// a new heartbeat marks them in sync again, and deregistration removes
// them.
//
// # Keying
//
// The process manager reads fleet.events.v1, keyed by aggregate id, and
// keeps one goka table keyed the same way, with two sides:
//
//   - the aggregate side, at a cluster, SAP system or database id: its
//     member hosts (with how stale their entries are) as of its last
//     event. Events carry the aggregate's state after them, not before, so
//     this is what tells which hosts left.
//   - the host side, at a host id: the aggregates the host is part of, and
//     whether its heartbeat is lost and whether it is deregistered.
//
// An aggregate event that changes a host's membership or staleness sends
// a MembershipUpdate keyed by that host on the group's loop topic. Host
// events need no hop: they are keyed by host id already.
//
// # Order
//
// The events of one aggregate arrive in version order on one partition,
// but those of different aggregates, the host's own events and the loop
// messages interleave in any order. Every decision is therefore made on
// the host side, from its current knowledge, and repeated whenever that
// knowledge changes:
//
//   - a host event that loses or regains the heartbeat, or deregisters the
//     host, sends the matching command to every aggregate the host is a
//     member of;
//   - an update that reports the host as a member of an aggregate
//     reconciles: a deregistered host is deregistered from it, a host
//     whose heartbeat is lost is marked stale if its entries are not all
//     stale, and a live host is marked in sync if any entry is stale. So a
//     host that joins a cluster while its heartbeat is lost is marked at
//     once, and a command overtaken by a newer state is repaired when that
//     state is reported.
//
// Updates carry the aggregate's version; the host side remembers it per
// aggregate (also for aggregates it left), so a redelivered older update
// changes nothing. The commands are idempotent at the aggregates (no
// change, no event), and a command about a host that is not, or no longer,
// a member is a no-op there, so sending one twice or late is harmless.
// Convergence needs no more than that: every aggregate state that
// disagrees with the host's is reported to the host, which answers it.
//
// Rules are pure functions in this file; group.go wires them to Kafka.
package membership

import (
	"cmp"
	"slices"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Aggregate types the process manager follows, as MembershipUpdate and
// AggregateMembers name them.
const (
	TypeCluster   = "cluster"
	TypeSapSystem = "sap_system"
	TypeDatabase  = "database"
)

// heartbeatCritical is the host state's heartbeat once it is lost.
const heartbeatCritical = "critical"

// send is a loop message for the host keyed key.
type send struct {
	key string
	msg *fleetv1.MembershipUpdate
}

// target is a command for an aggregate of type typ.
type target struct {
	typ string
	cmd *fleetv1.Command
}

// result is what one input does.
type result struct {
	// state is the table value after the input, nil when it need not be
	// written.
	state    *fleetv1.Membership
	commands []target
	sends    []send
	outcome  outcome
}

type outcome string

const (
	outcomeApplied   outcome = "applied"   // the table changed
	outcomeUnchanged outcome = "unchanged" // nothing to do
	outcomeStale     outcome = "stale"     // older than what was applied
	outcomeIgnored   outcome = "ignored"   // not about membership
)

// applyEvent follows an event of the aggregate keyed key: a host's, a
// cluster's, a SAP system's or a database's. An aggregate's members are the
// hosts of its entries whether or not it is deregistered: a SAP system or
// database deregistered for lack of a message server or primary may still
// hold instances, which its hosts' fate must still reach so that it can be
// emptied and tombstoned.
func applyEvent(state *fleetv1.Membership, key string, e *fleetv1.Event) result {
	if _, rejected := e.GetPayload().(*fleetv1.Event_CommandRejected); rejected {
		return result{outcome: outcomeIgnored} // nothing changed
	}
	switch s := e.GetState().GetState().(type) {
	case *fleetv1.AggregateState_Host:
		return applyHostEvent(state, key, e)
	case *fleetv1.AggregateState_Cluster:
		var members []*fleetv1.AggregateMember
		for _, h := range s.Cluster.GetHosts() {
			members = append(members, &fleetv1.AggregateMember{HostId: h.GetHostId(), AllStale: h.GetStale(), AnyStale: h.GetStale()})
		}
		return applyAggregateEvent(state, key, TypeCluster, members, e)
	case *fleetv1.AggregateState_SapSystem:
		var members []*fleetv1.AggregateMember
		for _, in := range s.SapSystem.GetApplicationInstances() {
			members = append(members, &fleetv1.AggregateMember{HostId: in.GetHostId(), AllStale: in.GetStale(), AnyStale: in.GetStale()})
		}
		return applyAggregateEvent(state, key, TypeSapSystem, members, e)
	case *fleetv1.AggregateState_Database:
		var members []*fleetv1.AggregateMember
		for _, in := range s.Database.GetInstances() {
			members = append(members, &fleetv1.AggregateMember{HostId: in.GetHostId(), AllStale: in.GetStale(), AnyStale: in.GetStale()})
		}
		return applyAggregateEvent(state, key, TypeDatabase, members, e)
	default:
		return result{outcome: outcomeIgnored}
	}
}

// applyAggregateEvent records the members of the aggregate keyed key after
// e and tells every host whose membership or staleness changed.
func applyAggregateEvent(state *fleetv1.Membership, key, typ string, entries []*fleetv1.AggregateMember, e *fleetv1.Event) result {
	old := state.GetAggregate()
	if old != nil && e.GetVersion() <= old.GetVersion() {
		return result{outcome: outcomeStale} // redelivered
	}
	members := mergeMembers(entries)
	var sends []send
	update := func(m *fleetv1.AggregateMember, member bool) {
		sends = append(sends, send{key: m.GetHostId(), msg: &fleetv1.MembershipUpdate{
			AggregateType: typ, AggregateId: key, Version: e.GetVersion(),
			Member: member, AllStale: member && m.GetAllStale(), AnyStale: member && m.GetAnyStale(),
			Cause: e.GetEventId(), At: e.GetOccurredAt(),
		}})
	}
	for _, m := range members {
		i, found := slices.BinarySearchFunc(old.GetMembers(), m.GetHostId(), byHostID)
		if !found || !proto.Equal(old.GetMembers()[i], m) {
			update(m, true)
		}
	}
	for _, m := range old.GetMembers() {
		if _, found := slices.BinarySearchFunc(members, m.GetHostId(), byHostID); !found {
			update(m, false)
		}
	}
	if len(sends) == 0 {
		// Only membership changes are recorded: most events (health,
		// details) change none, and the table need not be rewritten.
		return result{outcome: outcomeUnchanged}
	}
	next := new(fleetv1.Membership)
	if state != nil {
		next = proto.CloneOf(state)
	}
	next.Aggregate = &fleetv1.AggregateMembers{Type: typ, Version: e.GetVersion(), Members: members}
	return result{state: next, sends: sends, outcome: outcomeApplied}
}

// mergeMembers sorts entries by host and merges those of one host (a SAP
// system may have several instances on one host).
func mergeMembers(entries []*fleetv1.AggregateMember) []*fleetv1.AggregateMember {
	slices.SortStableFunc(entries, func(a, b *fleetv1.AggregateMember) int { return cmp.Compare(a.GetHostId(), b.GetHostId()) })
	var out []*fleetv1.AggregateMember
	for _, m := range entries {
		if m.GetHostId() == "" {
			continue
		}
		if n := len(out); n > 0 && out[n-1].GetHostId() == m.GetHostId() {
			out[n-1].AllStale = out[n-1].GetAllStale() && m.GetAllStale()
			out[n-1].AnyStale = out[n-1].GetAnyStale() || m.GetAnyStale()
			continue
		}
		out = append(out, m)
	}
	return out
}

func byHostID(m *fleetv1.AggregateMember, id string) int { return cmp.Compare(m.GetHostId(), id) }

// applyHostEvent follows the host's heartbeat and registration and, when
// either changes, sends the matching command to every aggregate the host
// is a member of.
func applyHostEvent(state *fleetv1.Membership, key string, e *fleetv1.Event) result {
	h := state.GetHost()
	if e.GetVersion() <= h.GetVersion() {
		return result{outcome: outcomeStale}
	}
	next := new(fleetv1.Membership)
	if state != nil {
		next = proto.CloneOf(state)
	}
	if next.Host == nil {
		next.Host = new(fleetv1.HostMemberships)
	}
	nh := next.Host
	nh.Version = e.GetVersion()
	switch e.GetPayload().(type) {
	case *fleetv1.Event_HeartbeatFailed:
		nh.HeartbeatLost = true
	case *fleetv1.Event_HeartbeatSucceeded:
		nh.HeartbeatLost = false
	case *fleetv1.Event_HostDeregistered:
		nh.Deregistered = true
	case *fleetv1.Event_HostRestored, *fleetv1.Event_HostRegistered:
		nh.Deregistered = false
		// The host state says whether its heartbeat came back with it.
		nh.HeartbeatLost = e.GetState().GetHost().GetHeartbeat() == heartbeatCritical
	}
	c := cause{id: e.GetEventId(), at: e.GetOccurredAt(), traceID: e.GetTraceId(), host: key}
	var commands []target
	switch {
	case nh.GetDeregistered() && !h.GetDeregistered():
		commands = c.forMembers(nh, func(*fleetv1.AggregateMembership) action { return actionDeregister })
	case nh.GetDeregistered() || h.GetDeregistered():
		// Its memberships were removed when it was deregistered: a
		// heartbeat change has nothing left to mark, and those a restored
		// host gains again are reconciled as they are reported.
	case nh.GetHeartbeatLost() != h.GetHeartbeatLost():
		// Sent whatever the aggregates last reported: a report may be
		// overtaken by a command in flight, and a repeated command is a
		// no-op.
		a := actionInSync
		if nh.GetHeartbeatLost() {
			a = actionStale
		}
		commands = c.forMembers(nh, func(*fleetv1.AggregateMembership) action { return a })
	}
	// Only the version moved: still written, so a redelivered host event
	// is recognised as such.
	return result{state: next, commands: commands, outcome: outcomeApplied}
}

// applyUpdate follows an aggregate's update about the host keyed key.
func applyUpdate(state *fleetv1.Membership, key string, u *fleetv1.MembershipUpdate, traceID string) result {
	list := func(h *fleetv1.HostMemberships) *[]*fleetv1.AggregateMembership {
		switch u.GetAggregateType() {
		case TypeCluster:
			return &h.Clusters
		case TypeSapSystem:
			return &h.SapSystems
		case TypeDatabase:
			return &h.Databases
		}
		return nil
	}
	if list(new(fleetv1.HostMemberships)) == nil || u.GetAggregateId() == "" {
		return result{outcome: outcomeIgnored}
	}
	next := new(fleetv1.Membership)
	if state != nil {
		next = proto.CloneOf(state)
	}
	if next.Host == nil {
		next.Host = new(fleetv1.HostMemberships)
	}
	l := list(next.Host)
	entry := &fleetv1.AggregateMembership{
		Id: u.GetAggregateId(), Version: u.GetVersion(),
		Member: u.GetMember(), AllStale: u.GetAllStale(), AnyStale: u.GetAnyStale(),
	}
	i, found := slices.BinarySearchFunc(*l, entry.GetId(), byID)
	switch {
	case found && u.GetVersion() <= (*l)[i].GetVersion():
		return result{outcome: outcomeStale}
	case found:
		(*l)[i] = entry
	default:
		*l = slices.Insert(*l, i, entry)
	}
	c := cause{id: u.GetCause(), at: u.GetAt(), traceID: traceID, host: key}
	var commands []target
	if cmd := c.command(u.GetAggregateType(), entry, reconcile(entry, next.Host)); cmd != nil {
		commands = append(commands, *cmd)
	}
	return result{state: next, commands: commands, outcome: outcomeApplied}
}

func byID(m *fleetv1.AggregateMembership, id string) int { return cmp.Compare(m.GetId(), id) }

// action is what the host side asks of an aggregate about the host.
type action int

const (
	actionNone       action = iota
	actionDeregister        // remove the host's entries
	actionStale             // mark them stale
	actionInSync            // mark them in sync
)

// reconcile is what membership m needs for the host's state to hold.
func reconcile(m *fleetv1.AggregateMembership, h *fleetv1.HostMemberships) action {
	switch {
	case !m.GetMember():
		return actionNone
	case h.GetDeregistered():
		return actionDeregister
	case h.GetHeartbeatLost() && !m.GetAllStale():
		return actionStale
	case !h.GetHeartbeatLost() && m.GetAnyStale():
		return actionInSync
	}
	return actionNone
}

// cause is the input record commands derive from: their ids, time and
// trace come from it, never from the clock.
type cause struct {
	id      string
	at      *timestamppb.Timestamp
	traceID string
	host    string
}

// forMembers returns the commands of action for every aggregate the host
// is a member of.
func (c cause) forMembers(h *fleetv1.HostMemberships, action func(*fleetv1.AggregateMembership) action) []target {
	var out []target
	for _, group := range []struct {
		typ  string
		list []*fleetv1.AggregateMembership
	}{{TypeCluster, h.GetClusters()}, {TypeSapSystem, h.GetSapSystems()}, {TypeDatabase, h.GetDatabases()}} {
		for _, m := range group.list {
			if !m.GetMember() {
				continue
			}
			if cmd := c.command(group.typ, m, action(m)); cmd != nil {
				out = append(out, *cmd)
			}
		}
	}
	return out
}

// command is the command of a for the host's membership m of an aggregate
// of type typ; nil when a asks for nothing.
func (c cause) command(typ string, m *fleetv1.AggregateMembership, a action) *target {
	host := c.host
	cmd := new(fleetv1.Command)
	switch a {
	case actionNone:
		return nil
	case actionDeregister:
		switch typ {
		case TypeCluster:
			cmd.Body = &fleetv1.Command_DeregisterClusterHost{DeregisterClusterHost: &fleetv1.DeregisterClusterHost{HostId: host}}
		case TypeSapSystem:
			cmd.Body = &fleetv1.Command_DeregisterApplicationInstances{DeregisterApplicationInstances: &fleetv1.DeregisterApplicationInstances{HostId: host}}
		case TypeDatabase:
			cmd.Body = &fleetv1.Command_DeregisterDatabaseInstances{DeregisterDatabaseInstances: &fleetv1.DeregisterDatabaseInstances{HostId: host}}
		}
	case actionStale, actionInSync:
		stale := a == actionStale
		switch typ {
		case TypeCluster:
			cmd.Body = &fleetv1.Command_MarkClusterHostStale{MarkClusterHostStale: &fleetv1.MarkClusterHostStale{HostId: host, Stale: stale}}
		case TypeSapSystem:
			cmd.Body = &fleetv1.Command_MarkApplicationInstancesStale{MarkApplicationInstancesStale: &fleetv1.MarkApplicationInstancesStale{HostId: host, Stale: stale}}
		case TypeDatabase:
			cmd.Body = &fleetv1.Command_MarkDatabaseInstancesStale{MarkDatabaseInstancesStale: &fleetv1.MarkDatabaseInstancesStale{HostId: host, Stale: stale}}
		}
	}
	if cmd.Body == nil {
		return nil
	}
	cmd.AggregateId = m.GetId()
	cmd.CommandId = commandID(c.id, m.GetId(), host, aggregate.CommandName(cmd))
	cmd.IssuedAt = c.at
	cmd.TraceId = c.traceID
	return &target{typ: typ, cmd: cmd}
}

// commandNamespace is the UUIDv5 namespace of command ids, the one
// scenario detection uses: UUIDv5(URL namespace, "urn:fleetstream:command").
var commandNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:command"))

// commandID is UUIDv5 of "membership/<cause>/<aggregate>/<host>/<command>":
// the same input yields the same id, and one input's commands differ.
func commandID(cause, aggregateID, hostID, name string) string {
	return uuid.NewSHA1(commandNamespace, []byte("membership/"+cause+"/"+aggregateID+"/"+hostID+"/"+name)).String()
}
