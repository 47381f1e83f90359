// Package cluster is the cluster aggregate: the goka group that validates
// cluster commands against the cluster's current state (its group table,
// keyed by the cluster id agents report) and emits the resulting domain
// events. Rules are pure functions in this file; group.go wires them to
// Kafka and view.go serves the table to readers.
//
// Membership comes from every host's discovery; the cluster's name, type,
// details and discovered health only from the designated controller's
// (DC), which alone sees the whole cluster consistently. When the last
// host leaves, the cluster is deregistered and tombstoned; a host
// registering again restores it.
package cluster

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// AggregateType is the aggregate_type of the cluster's events.
const AggregateType = "cluster"

// decision is what one command does to one cluster.
type decision = aggregate.Decision[*fleetv1.Cluster]

// decide applies cmd to the cluster's current state (nil: not registered).
// It never modifies current, derives everything from the command and the
// state, and applying a command twice changes nothing the second time.
func decide(current *fleetv1.Cluster, cmd *fleetv1.Command) decision {
	switch body := cmd.GetBody().(type) {
	case *fleetv1.Command_RegisterOnlineClusterHost:
		c := body.RegisterOnlineClusterHost
		return registerHost(current, cmd, membership{
			hostID: c.GetHostId(), clusterName: c.GetClusterName(), hostName: c.GetHostName(), online: true,
			dc: c.GetDesignatedController(), details: c.GetDetails(), health: c.GetDiscoveredHealth(),
		})
	case *fleetv1.Command_RegisterOfflineClusterHost:
		c := body.RegisterOfflineClusterHost
		return registerHost(current, cmd, membership{hostID: c.GetHostId(), clusterName: c.GetClusterName(), hostName: c.GetHostName()})
	}
	if current == nil {
		return rejected(nil, cmd, fmt.Sprintf("cluster %s is not registered: only a host registering creates it", cmd.GetAggregateId()))
	}
	switch body := cmd.GetBody().(type) {
	case *fleetv1.Command_DeregisterClusterHost:
		return deregisterHost(current, cmd, body.DeregisterClusterHost.GetHostId())
	case *fleetv1.Command_MarkClusterHostStale:
		return markStale(current, cmd, body.MarkClusterHostStale)
	case *fleetv1.Command_UpdateClusterChecksHealth:
		return updateChecksHealth(current, cmd, body.UpdateClusterChecksHealth.GetHealth())
	default:
		return rejected(current, cmd, fmt.Sprintf("%s is not a cluster command", aggregate.CommandName(cmd)))
	}
}

// membership is what a register command says about one host.
type membership struct {
	hostID, clusterName, hostName string
	online                        bool
	dc                            bool
	details                       *fleetv1.ClusterDetails
	health                        *fleetv1.ClusterDiscoveredHealth
}

func registerHost(current *fleetv1.Cluster, cmd *fleetv1.Command, m membership) decision {
	if m.hostID == "" {
		return rejected(current, cmd, aggregate.CommandName(cmd)+" has no host_id")
	}
	ch := change{cmd: cmd}
	switch {
	case current == nil:
		ch.next = &fleetv1.Cluster{
			Id: cmd.GetAggregateId(), Name: m.clusterName, Type: payload.ClusterTypeUnknown,
			Health: payload.HealthUnknown, ChecksHealth: payload.HealthUnknown, DiscoveredHealth: unknownHealth(),
			RegisteredAt: cmd.GetIssuedAt(),
		}
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterRegistered{ClusterRegistered: &fleetv1.ClusterRegistered{
			Name: m.clusterName, Type: payload.ClusterTypeUnknown,
		}}})
	case current.GetDeregistered():
		ch.next = proto.CloneOf(current)
		ch.next.Deregistered = false
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterRestored{ClusterRestored: &fleetv1.ClusterRestored{HostId: m.hostID}}})
	default:
		ch.next = proto.CloneOf(current)
	}
	i := hostIndex(ch.next, m.hostID)
	if h := ch.next.GetHosts(); i >= 0 && m.hostName != "" && h[i].GetName() != m.hostName {
		// A renamed host is no cluster event: the host aggregate reports
		// it. Stored first, so the events below carry the current name.
		h[i].Name = m.hostName
		ch.written = true
	}
	if m.online && m.dc && m.details != nil && !reportedBefore(cmd, ch.next) {
		ch.designatedController(m)
	}
	switch {
	case i < 0:
		ch.next.Hosts = append(ch.next.Hosts, &fleetv1.ClusterHost{HostId: m.hostID, Name: m.hostName, Online: m.online})
		slices.SortFunc(ch.next.Hosts, func(a, b *fleetv1.ClusterHost) int { return strings.Compare(a.GetHostId(), b.GetHostId()) })
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HostAddedToCluster{HostAddedToCluster: &fleetv1.HostAddedToCluster{
			HostId: m.hostID, Name: m.hostName, Online: m.online,
		}}})
	default:
		h := ch.next.Hosts[i]
		if h.GetOnline() != m.online {
			h.Online = m.online
			ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterHostStatusChanged{ClusterHostStatusChanged: &fleetv1.ClusterHostStatusChanged{
				HostId: m.hostID, Online: m.online,
			}}})
		}
	}
	ch.healthChanged(current.GetHealth())
	return ch.decision()
}

// reportedBefore: cmd's discovery was collected before the one that set
// the cluster's details. Two nodes' discoveries travel through different
// partitions, so an older DC report (the node was DC then) can arrive after
// a newer one; the newest report wins, whatever the delivery order.
func reportedBefore(cmd *fleetv1.Command, c *fleetv1.Cluster) bool {
	at := c.GetDcReportedAt()
	return at != nil && cmd.GetIssuedAt().AsTime().Before(at.AsTime())
}

// designatedController applies what the DC's discovery says about the
// whole cluster: name, type, details and discovered sub-healths.
func (c *change) designatedController(m membership) {
	n := c.next
	name := m.clusterName
	if name == "" {
		name = n.GetName() // an unnamed discovery does not erase a known name
	}
	typ := m.details.GetType()
	if typ == "" {
		typ = payload.ClusterTypeUnknown
	}
	healthChanged := m.health != nil && !proto.Equal(n.GetDiscoveredHealth(), m.health)
	detailsChanged := n.GetName() != name || n.GetType() != typ || n.GetDcHostId() != m.hostID || !proto.Equal(n.GetDetails(), m.details)
	if healthChanged || detailsChanged {
		// Stamped only with a change (a repeated report costs no write),
		// and first, so every event of this command carries it.
		n.DcReportedAt = c.cmd.GetIssuedAt()
	}
	if healthChanged {
		// Reported through ClusterHealthChanged when the overall health
		// moves; set first, so every event of this command carries it.
		n.DiscoveredHealth = proto.CloneOf(m.health)
		c.written = true
	}
	if detailsChanged {
		n.Name, n.Type, n.DcHostId, n.Details = name, typ, m.hostID, proto.CloneOf(m.details)
		c.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterDetailsChanged{ClusterDetailsChanged: &fleetv1.ClusterDetailsChanged{
			Name: name, Type: typ, Details: proto.CloneOf(m.details), DcHostId: m.hostID,
		}}})
	}
}

func deregisterHost(current *fleetv1.Cluster, cmd *fleetv1.Command, hostID string) decision {
	i := hostIndex(current, hostID)
	if i < 0 {
		// The process manager and the policy may both send it, in any
		// order: removing a non-member is done already.
		return decision{Outcome: aggregate.Noop}
	}
	ch := change{cmd: cmd, next: proto.CloneOf(current)}
	ch.next.Hosts = slices.Delete(ch.next.Hosts, i, i+1)
	if ch.next.GetDcHostId() == hostID {
		ch.next.DcHostId = "" // the next DC's discovery takes over
	}
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HostRemovedFromCluster{HostRemovedFromCluster: &fleetv1.HostRemovedFromCluster{HostId: hostID}}})
	if len(ch.next.Hosts) == 0 {
		ch.next.Deregistered = true
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterDeregistered{ClusterDeregistered: &fleetv1.ClusterDeregistered{}}})
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterTombstoned{ClusterTombstoned: &fleetv1.ClusterTombstoned{}}})
	}
	return ch.decision()
}

func markStale(current *fleetv1.Cluster, cmd *fleetv1.Command, c *fleetv1.MarkClusterHostStale) decision {
	i := hostIndex(current, c.GetHostId())
	if i < 0 || current.GetHosts()[i].GetStale() == c.GetStale() {
		return decision{Outcome: aggregate.Noop}
	}
	ch := change{cmd: cmd, next: proto.CloneOf(current)}
	ch.next.Hosts[i].Stale = c.GetStale()
	// Health does not move: a host whose heartbeat is lost makes its view
	// of the cluster stale, not the cluster critical.
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterHostStaleChanged{ClusterHostStaleChanged: &fleetv1.ClusterHostStaleChanged{
		HostId: c.GetHostId(), Stale: c.GetStale(),
	}}})
	return ch.decision()
}

func updateChecksHealth(current *fleetv1.Cluster, cmd *fleetv1.Command, h string) decision {
	if current.GetDeregistered() {
		return rejected(current, cmd, fmt.Sprintf("cluster %s is deregistered: only a host registering restores it", current.GetId()))
	}
	if _, ok := healthRank[h]; !ok {
		return rejected(current, cmd, fmt.Sprintf("health %q is none of unknown, passing, warning, critical", h))
	}
	if current.GetChecksHealth() == h {
		return decision{Outcome: aggregate.Noop}
	}
	ch := change{cmd: cmd, next: proto.CloneOf(current)}
	ch.next.ChecksHealth = h
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterChecksHealthChanged{ClusterChecksHealthChanged: &fleetv1.ClusterChecksHealthChanged{Health: h}}})
	ch.healthChanged(current.GetHealth())
	return ch.decision()
}

// Health is the worst of the cluster's sub-healths (replication,
// distribution, SBD, checks). Unknown only means "not evaluated" (an
// ASCS/ERS cluster has no replication): it is ignored unless every
// sub-health is unknown.
func Health(c *fleetv1.Cluster) string {
	d := c.GetDiscoveredHealth()
	worst := payload.HealthUnknown
	for _, sub := range []string{d.GetReplication(), d.GetDistribution(), d.GetSbd(), c.GetChecksHealth()} {
		if healthRank[sub] > healthRank[worst] {
			worst = sub
		}
	}
	return worst
}

var healthRank = map[string]int{payload.HealthUnknown: 0, payload.HealthPassing: 1, payload.HealthWarning: 2, payload.HealthCritical: 3}

func unknownHealth() *fleetv1.ClusterDiscoveredHealth {
	return &fleetv1.ClusterDiscoveredHealth{Replication: payload.HealthUnknown, Distribution: payload.HealthUnknown, Sbd: payload.HealthUnknown}
}

func hostIndex(c *fleetv1.Cluster, hostID string) int {
	return slices.IndexFunc(c.GetHosts(), func(h *fleetv1.ClusterHost) bool { return h.GetHostId() == hostID })
}

// change accumulates the events of one accepted command.
type change struct {
	cmd    *fleetv1.Command
	next   *fleetv1.Cluster
	events []*fleetv1.Event
	// written: the state changed in a way no event reports.
	written bool
}

// healthChanged records ClusterHealthChanged when the sub-healths moved
// the overall health away from previous.
func (c *change) healthChanged(previous string) {
	if previous == "" {
		previous = payload.HealthUnknown
	}
	if h := Health(c.next); h != previous {
		c.next.Health = h
		c.record(&fleetv1.Event{Payload: &fleetv1.Event_ClusterHealthChanged{ClusterHealthChanged: &fleetv1.ClusterHealthChanged{
			Health: h, Previous: previous,
		}}})
	}
}

// record stamps e, whose payload is set, as the cluster's next version.
func (c *change) record(e *fleetv1.Event) {
	c.next.Version++
	c.next.UpdatedAt = c.cmd.GetIssuedAt()
	aggregate.Stamp(e, AggregateType, c.cmd, c.next)
	c.events = append(c.events, e)
}

func (c *change) decision() decision {
	if len(c.events) == 0 && !c.written {
		return decision{Outcome: aggregate.Noop}
	}
	return decision{Events: c.events, State: c.next, Outcome: aggregate.Accepted}
}

// rejected is a CommandRejected event at the cluster's current version; the
// state is untouched.
func rejected(current *fleetv1.Cluster, cmd *fleetv1.Command, reason string) decision {
	return aggregate.Reject(AggregateType, current, cmd, reason)
}
