// Package database is the database aggregate: the goka group that
// validates database instance commands against the database's current
// state (its group table) and emits the resulting domain events. Rules are
// pure functions in this file; group.go wires them to Kafka and view.go
// serves the table to readers.
//
// A database registers only from a primary or unreplicated instance: a
// secondary instance of a database not registered yet is held in the state
// (no event) and registered with it once such an instance arrives, so the
// order in which the sites of a replicated database report does not matter
// and nothing is lost. A registered database that loses its last primary or
// unreplicated instance is deregistered; one that loses its last instance
// is also tombstoned. Its state is kept, so a later registration restores
// it and continues its versions (event ids derive from them). A
// deregistered database emits nothing but its restoration or tombstone:
// instance changes, removals and staleness of its remaining instances are
// applied to its state silently.
package database

import (
	"cmp"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// secondary is the system replication role of an instance that cannot
// register its database.
const secondary = "Secondary"

type decision = aggregate.Decision[*fleetv1.Database]

// decide applies cmd to the database's current state (nil: unknown). It
// never modifies current and derives everything from the command and the
// state, never the clock.
func decide(current *fleetv1.Database, cmd *fleetv1.Command) decision {
	switch body := cmd.GetBody().(type) {
	case *fleetv1.Command_RegisterDatabaseInstance:
		return registerInstance(current, cmd, body.RegisterDatabaseInstance)
	case *fleetv1.Command_MarkDatabaseInstanceAbsent:
		c := body.MarkDatabaseInstanceAbsent
		return remove(current, cmd, func(i *fleetv1.DatabaseInstance) bool {
			return i.GetHostId() == c.GetHostId() && i.GetInstanceNumber() == c.GetInstanceNumber()
		}, func(i *fleetv1.DatabaseInstance) *fleetv1.Event {
			return &fleetv1.Event{Payload: &fleetv1.Event_DatabaseInstanceMarkedAbsent{DatabaseInstanceMarkedAbsent: &fleetv1.DatabaseInstanceMarkedAbsent{
				HostId: i.GetHostId(), InstanceNumber: i.GetInstanceNumber(),
			}}}
		})
	case *fleetv1.Command_DeregisterDatabaseInstances:
		c := body.DeregisterDatabaseInstances
		return remove(current, cmd, func(i *fleetv1.DatabaseInstance) bool {
			return i.GetHostId() == c.GetHostId()
		}, func(i *fleetv1.DatabaseInstance) *fleetv1.Event {
			return &fleetv1.Event{Payload: &fleetv1.Event_DatabaseInstanceDeregistered{DatabaseInstanceDeregistered: &fleetv1.DatabaseInstanceDeregistered{
				HostId: i.GetHostId(), InstanceNumber: i.GetInstanceNumber(),
			}}}
		})
	case *fleetv1.Command_MarkDatabaseInstancesStale:
		return markStale(current, cmd, body.MarkDatabaseInstancesStale)
	default:
		return rejected(current, cmd, fmt.Sprintf("%s is not a database command", aggregate.CommandName(cmd)))
	}
}

func registerInstance(current *fleetv1.Database, cmd *fleetv1.Command, c *fleetv1.RegisterDatabaseInstance) decision {
	in := c.GetInstance()
	if in.GetHostId() == "" || in.GetInstanceNumber() == "" {
		return rejected(current, cmd, "RegisterDatabaseInstance needs an instance with host_id and instance_number")
	}
	ch := change{cmd: cmd, current: current}
	if current == nil {
		ch.next = &fleetv1.Database{Id: cmd.GetAggregateId()}
	} else {
		ch.next = proto.CloneOf(current)
	}
	ch.next.Sid = c.GetSid()
	tenantsChanged := !slices.Equal(ch.next.GetTenants(), c.GetTenants())
	ch.next.Tenants = slices.Clone(c.GetTenants())
	inst := proto.CloneOf(in)
	idx := slices.IndexFunc(ch.next.Instances, func(i *fleetv1.DatabaseInstance) bool {
		return i.GetHostId() == inst.GetHostId() && i.GetInstanceNumber() == inst.GetInstanceNumber()
	})
	var old *fleetv1.DatabaseInstance
	if idx >= 0 {
		old = ch.next.Instances[idx]
		inst.Stale = old.GetStale() // staleness follows the host's heartbeat, not discoveries
		ch.next.Instances[idx] = inst
	} else {
		ch.next.Instances = append(ch.next.Instances, inst)
		sortInstances(ch.next.Instances)
	}
	switch {
	case current.GetRegisteredAt() == nil:
		if !registrable(ch.next) {
			return ch.silent()
		}
		ch.next.RegisteredAt = cmd.GetIssuedAt()
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseRegistered{DatabaseRegistered: &fleetv1.DatabaseRegistered{
			Sid: ch.next.GetSid(), Tenants: ch.next.GetTenants(), Health: health(ch.next),
		}}})
		for _, i := range ch.next.GetInstances() {
			ch.instanceRegistered(i)
		}
		return ch.decision()
	case current.GetDeregistered():
		if !registrable(ch.next) {
			return ch.silent()
		}
		ch.next.Deregistered = false
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseRestored{DatabaseRestored: &fleetv1.DatabaseRestored{}}})
		ch.instanceRegistered(inst)
		ch.healthChanged()
		return ch.decision()
	}
	if tenantsChanged {
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseTenantsChanged{DatabaseTenantsChanged: &fleetv1.DatabaseTenantsChanged{Tenants: ch.next.GetTenants()}}})
	}
	switch {
	case old == nil || old.GetFeatures() != inst.GetFeatures() || !slices.Equal(old.GetIpAddresses(), inst.GetIpAddresses()):
		ch.instanceRegistered(inst)
	default:
		if old.GetHealth() != inst.GetHealth() {
			ch.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseInstanceHealthChanged{DatabaseInstanceHealthChanged: &fleetv1.DatabaseInstanceHealthChanged{
				HostId: inst.GetHostId(), InstanceNumber: inst.GetInstanceNumber(), Health: inst.GetHealth(),
			}}})
		}
		if replicationOf(old) != replicationOf(inst) {
			ch.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseInstanceSystemReplicationChanged{DatabaseInstanceSystemReplicationChanged: &fleetv1.DatabaseInstanceSystemReplicationChanged{
				HostId: inst.GetHostId(), InstanceNumber: inst.GetInstanceNumber(),
				SystemReplication: inst.GetSystemReplication(), SystemReplicationStatus: inst.GetSystemReplicationStatus(),
				Site: inst.GetSite(), ReplicationMode: inst.GetReplicationMode(),
			}}})
		}
	}
	ch.healthChanged()
	return ch.decision()
}

// replicationOf is what DatabaseInstanceSystemReplicationChanged reports.
func replicationOf(i *fleetv1.DatabaseInstance) [4]string {
	return [4]string{i.GetSystemReplication(), i.GetSystemReplicationStatus(), i.GetSite(), i.GetReplicationMode()}
}

// remove removes the instances match selects, recording event(instance)
// for each, then deregisters (no primary or unreplicated instance left)
// and tombstones (no instance left) the database.
func remove(current *fleetv1.Database, cmd *fleetv1.Command, match func(*fleetv1.DatabaseInstance) bool, event func(*fleetv1.DatabaseInstance) *fleetv1.Event) decision {
	if current == nil {
		return notRegistered(cmd)
	}
	if !slices.ContainsFunc(current.GetInstances(), match) {
		return decision{Outcome: aggregate.Noop} // not here (any more): moved, or a late cascade
	}
	ch := change{cmd: cmd, current: current, next: proto.CloneOf(current)}
	var removed []*fleetv1.DatabaseInstance
	ch.next.Instances = slices.DeleteFunc(ch.next.Instances, func(i *fleetv1.DatabaseInstance) bool {
		if match(i) {
			removed = append(removed, i)
			return true
		}
		return false
	})
	emptied := len(ch.next.GetInstances()) == 0
	switch {
	case current.GetRegisteredAt() == nil:
		return ch.silent()
	case current.GetDeregistered():
		if emptied {
			ch.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseTombstoned{DatabaseTombstoned: &fleetv1.DatabaseTombstoned{}}})
			return ch.decision()
		}
		return ch.silent()
	}
	for _, i := range removed {
		ch.record(event(i))
	}
	switch {
	case emptied:
		ch.deregistered("its last instance left")
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseTombstoned{DatabaseTombstoned: &fleetv1.DatabaseTombstoned{}}})
	case !registrable(ch.next):
		ch.deregistered("no primary or unreplicated instance is left")
	default:
		ch.healthChanged()
	}
	return ch.decision()
}

func markStale(current *fleetv1.Database, cmd *fleetv1.Command, c *fleetv1.MarkDatabaseInstancesStale) decision {
	if current == nil {
		return notRegistered(cmd)
	}
	ch := change{cmd: cmd, current: current, next: proto.CloneOf(current)}
	var changed []*fleetv1.DatabaseInstance
	for _, i := range ch.next.GetInstances() {
		if i.GetHostId() == c.GetHostId() && i.GetStale() != c.GetStale() {
			i.Stale = c.GetStale()
			changed = append(changed, i)
		}
	}
	if len(changed) == 0 {
		return decision{Outcome: aggregate.Noop}
	}
	if current.GetRegisteredAt() == nil || current.GetDeregistered() {
		return ch.silent()
	}
	for _, i := range changed {
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseInstanceStaleChanged{DatabaseInstanceStaleChanged: &fleetv1.DatabaseInstanceStaleChanged{
			HostId: i.GetHostId(), InstanceNumber: i.GetInstanceNumber(), Stale: i.GetStale(),
		}}})
	}
	ch.healthChanged()
	return ch.decision()
}

// registrable: the database has a primary or unreplicated instance.
func registrable(d *fleetv1.Database) bool {
	return slices.ContainsFunc(d.GetInstances(), func(i *fleetv1.DatabaseInstance) bool {
		return i.GetSystemReplication() != secondary
	})
}

// health is the worst health of the database's instances; stale ones
// (their host's heartbeat is lost) do not count.
func health(d *fleetv1.Database) string {
	var hs []string
	for _, i := range d.GetInstances() {
		if !i.GetStale() {
			hs = append(hs, i.GetHealth())
		}
	}
	return Worst(hs...)
}

func sortInstances(is []*fleetv1.DatabaseInstance) {
	slices.SortFunc(is, func(a, b *fleetv1.DatabaseInstance) int {
		return cmp.Or(cmp.Compare(a.GetHostId(), b.GetHostId()), cmp.Compare(a.GetInstanceNumber(), b.GetInstanceNumber()))
	})
}

// change accumulates the events of one accepted command.
type change struct {
	cmd     *fleetv1.Command
	current *fleetv1.Database
	next    *fleetv1.Database
	events  []*fleetv1.Event
}

func (c *change) instanceRegistered(i *fleetv1.DatabaseInstance) {
	c.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseInstanceRegistered{DatabaseInstanceRegistered: &fleetv1.DatabaseInstanceRegistered{
		Instance: proto.CloneOf(i),
	}}})
}

func (c *change) deregistered(reason string) {
	c.next.Deregistered = true
	c.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseDeregistered{DatabaseDeregistered: &fleetv1.DatabaseDeregistered{Reason: reason}}})
}

// healthChanged records DatabaseHealthChanged if the health differs from
// the current one.
func (c *change) healthChanged() {
	if h := health(c.next); h != c.current.GetHealth() {
		c.record(&fleetv1.Event{Payload: &fleetv1.Event_DatabaseHealthChanged{DatabaseHealthChanged: &fleetv1.DatabaseHealthChanged{Health: h}}})
	}
}

// record stamps e, whose payload is set, as the database's next version.
func (c *change) record(e *fleetv1.Event) {
	c.next.Version++
	c.next.UpdatedAt = c.cmd.GetIssuedAt()
	c.next.Health = health(c.next)
	aggregate.Stamp(e, AggregateType, c.cmd, c.next)
	c.events = append(c.events, e)
}

func (c *change) decision() decision {
	if len(c.events) == 0 {
		return decision{Outcome: aggregate.Noop}
	}
	return decision{Events: c.events, State: c.next, Outcome: aggregate.Accepted}
}

// silent writes the state without an event: a pending or deregistered
// database keeps what it is told for its registration or restoration.
func (c *change) silent() decision {
	c.next.Health = health(c.next)
	if proto.Equal(c.next, c.current) {
		return decision{Outcome: aggregate.Noop}
	}
	return decision{State: c.next, Outcome: aggregate.Accepted}
}

func notRegistered(cmd *fleetv1.Command) decision {
	return rejected(nil, cmd, fmt.Sprintf("database %s is not registered", cmd.GetAggregateId()))
}

func rejected(current *fleetv1.Database, cmd *fleetv1.Command, reason string) decision {
	return aggregate.Reject(AggregateType, current, cmd, reason)
}
