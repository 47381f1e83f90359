// Package sapsystem is the sap_system aggregate, the goka group that
// validates SAP system commands against the system's current state (its
// group table) and emits the resulting domain events, and the reaction
// that tells SAP systems about the database they run on (reaction.go).
//
// A SAP system registers once it has its database (DatabaseAvailable from
// the reaction), an ABAP or J2EE instance and a message server. Until
// then the instances its hosts report are held in its state without an
// event, and registered with it: an application server discovered before
// its database loses nothing. A registered system that loses its ABAP/J2EE
// instances or its message server is deregistered; one that loses its last
// instance is also tombstoned. Its state is kept, so a later registration
// restores it and continues its versions (event ids derive from them). A
// deregistered system emits nothing but its restoration or tombstone: what
// it is told meanwhile is applied to its state silently.
//
// Health is the worst of its (non-stale) instances' healths and its
// database's health.
package sapsystem

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/database"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

type decision = aggregate.Decision[*fleetv1.SapSystem]

// decide applies cmd to the system's current state (nil: unknown). It
// never modifies current and derives everything from the command and the
// state, never the clock.
func decide(current *fleetv1.SapSystem, cmd *fleetv1.Command) decision {
	switch body := cmd.GetBody().(type) {
	case *fleetv1.Command_RegisterApplicationInstance:
		return registerInstance(current, cmd, body.RegisterApplicationInstance)
	case *fleetv1.Command_DatabaseAvailable:
		return databaseAvailable(current, cmd, body.DatabaseAvailable)
	case *fleetv1.Command_MarkApplicationInstanceAbsent:
		c := body.MarkApplicationInstanceAbsent
		return remove(current, cmd, func(i *fleetv1.ApplicationInstance) bool {
			return i.GetHostId() == c.GetHostId() && i.GetInstanceNumber() == c.GetInstanceNumber()
		}, func(i *fleetv1.ApplicationInstance) *fleetv1.Event {
			return &fleetv1.Event{Payload: &fleetv1.Event_ApplicationInstanceMarkedAbsent{ApplicationInstanceMarkedAbsent: &fleetv1.ApplicationInstanceMarkedAbsent{
				HostId: i.GetHostId(), InstanceNumber: i.GetInstanceNumber(),
			}}}
		})
	case *fleetv1.Command_DeregisterApplicationInstances:
		c := body.DeregisterApplicationInstances
		return remove(current, cmd, func(i *fleetv1.ApplicationInstance) bool {
			return i.GetHostId() == c.GetHostId()
		}, func(i *fleetv1.ApplicationInstance) *fleetv1.Event {
			return &fleetv1.Event{Payload: &fleetv1.Event_ApplicationInstanceDeregistered{ApplicationInstanceDeregistered: &fleetv1.ApplicationInstanceDeregistered{
				HostId: i.GetHostId(), InstanceNumber: i.GetInstanceNumber(),
			}}}
		})
	case *fleetv1.Command_MarkApplicationInstancesStale:
		return markStale(current, cmd, body.MarkApplicationInstancesStale)
	default:
		return rejected(current, cmd, fmt.Sprintf("%s is not a SAP system command", aggregate.CommandName(cmd)))
	}
}

func registerInstance(current *fleetv1.SapSystem, cmd *fleetv1.Command, c *fleetv1.RegisterApplicationInstance) decision {
	if c.GetHostId() == "" || c.GetInstanceNumber() == "" {
		return rejected(current, cmd, "RegisterApplicationInstance needs host_id and instance_number")
	}
	ch := change{cmd: cmd, current: current}
	if current == nil {
		ch.next = &fleetv1.SapSystem{Id: cmd.GetAggregateId()}
	} else {
		ch.next = proto.CloneOf(current)
	}
	ch.next.Sid, ch.next.Tenant, ch.next.DbAddress = c.GetSid(), c.GetTenant(), c.GetDbAddress()
	inst := &fleetv1.ApplicationInstance{
		HostId: c.GetHostId(), InstanceNumber: c.GetInstanceNumber(), Features: c.GetFeatures(),
		Health: c.GetHealth(), Name: c.GetName(), Hostname: c.GetHostname(),
	}
	// An instance number is unique within a system: the same number on
	// another host is the same (clustered) instance, moved.
	idx := slices.IndexFunc(ch.next.ApplicationInstances, func(i *fleetv1.ApplicationInstance) bool {
		return i.GetInstanceNumber() == inst.GetInstanceNumber()
	})
	var old *fleetv1.ApplicationInstance
	if idx >= 0 {
		old = ch.next.ApplicationInstances[idx]
		if old.GetHostId() == inst.GetHostId() {
			inst.Stale = old.GetStale() // staleness follows the host's heartbeat, not discoveries
		}
		ch.next.ApplicationInstances[idx] = inst
	} else {
		ch.next.ApplicationInstances = append(ch.next.ApplicationInstances, inst)
		slices.SortFunc(ch.next.ApplicationInstances, func(a, b *fleetv1.ApplicationInstance) int {
			return strings.Compare(a.GetInstanceNumber(), b.GetInstanceNumber())
		})
	}
	if held := ch.registerOrRestore(inst); held {
		return ch.silent()
	}
	if !ch.activeBefore() {
		return ch.decision()
	}
	switch {
	case old == nil:
		ch.instanceRegistered(inst)
	case old.GetHostId() != inst.GetHostId():
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ApplicationInstanceMoved{ApplicationInstanceMoved: &fleetv1.ApplicationInstanceMoved{
			InstanceNumber: inst.GetInstanceNumber(), FromHostId: old.GetHostId(), ToHostId: inst.GetHostId(),
		}}})
		ch.instanceHealthChanged(old, inst)
	case old.GetFeatures() != inst.GetFeatures() || old.GetName() != inst.GetName() || old.GetHostname() != inst.GetHostname():
		ch.instanceRegistered(inst)
	default:
		ch.instanceHealthChanged(old, inst)
	}
	ch.healthChanged()
	if len(ch.events) == 0 {
		return ch.silent() // e.g. the profile's database address, which no event reports
	}
	return ch.decision()
}

func databaseAvailable(current *fleetv1.SapSystem, cmd *fleetv1.Command, c *fleetv1.DatabaseAvailable) decision {
	if current == nil {
		return notRegistered(cmd)
	}
	if c.GetDatabaseId() == "" {
		return rejected(current, cmd, "DatabaseAvailable needs a database_id")
	}
	ch := change{cmd: cmd, current: current, next: proto.CloneOf(current)}
	ch.next.DatabaseId, ch.next.DatabaseSid, ch.next.DatabaseHealth = c.GetDatabaseId(), c.GetSid(), c.GetHealth()
	if held := ch.registerOrRestore(nil); held {
		return ch.silent()
	}
	if !ch.activeBefore() {
		return ch.decision()
	}
	if current.GetDatabaseId() != c.GetDatabaseId() {
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_SapSystemDatabaseChanged{SapSystemDatabaseChanged: &fleetv1.SapSystemDatabaseChanged{DatabaseId: c.GetDatabaseId()}}})
	}
	ch.healthChanged()
	if len(ch.events) == 0 {
		return ch.silent() // e.g. the database's SID, which no event reports
	}
	return ch.decision()
}

// remove removes the instances match selects, recording event(instance)
// for each, then deregisters (no ABAP/J2EE instance or no message server
// left) and tombstones (no instance left) the system.
func remove(current *fleetv1.SapSystem, cmd *fleetv1.Command, match func(*fleetv1.ApplicationInstance) bool, event func(*fleetv1.ApplicationInstance) *fleetv1.Event) decision {
	if current == nil {
		return notRegistered(cmd)
	}
	if !slices.ContainsFunc(current.GetApplicationInstances(), match) {
		return decision{Outcome: aggregate.Noop} // not here (any more): moved, or a late cascade
	}
	ch := change{cmd: cmd, current: current, next: proto.CloneOf(current)}
	var removed []*fleetv1.ApplicationInstance
	ch.next.ApplicationInstances = slices.DeleteFunc(ch.next.ApplicationInstances, func(i *fleetv1.ApplicationInstance) bool {
		if match(i) {
			removed = append(removed, i)
			return true
		}
		return false
	})
	emptied := len(ch.next.GetApplicationInstances()) == 0
	switch {
	case current.GetRegisteredAt() == nil:
		return ch.silent()
	case current.GetDeregistered():
		if emptied {
			ch.record(&fleetv1.Event{Payload: &fleetv1.Event_SapSystemTombstoned{SapSystemTombstoned: &fleetv1.SapSystemTombstoned{}}})
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
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_SapSystemTombstoned{SapSystemTombstoned: &fleetv1.SapSystemTombstoned{}}})
	case !hasFeature(ch.next, "ABAP", "J2EE"):
		ch.deregistered("no ABAP or J2EE instance is left")
	case !hasFeature(ch.next, "MESSAGESERVER"):
		ch.deregistered("no message server is left")
	default:
		ch.healthChanged()
	}
	return ch.decision()
}

func markStale(current *fleetv1.SapSystem, cmd *fleetv1.Command, c *fleetv1.MarkApplicationInstancesStale) decision {
	if current == nil {
		return notRegistered(cmd)
	}
	ch := change{cmd: cmd, current: current, next: proto.CloneOf(current)}
	var changed []*fleetv1.ApplicationInstance
	for _, i := range ch.next.GetApplicationInstances() {
		if i.GetHostId() == c.GetHostId() && i.GetStale() != c.GetStale() {
			i.Stale = c.GetStale()
			changed = append(changed, i)
		}
	}
	if len(changed) == 0 {
		return decision{Outcome: aggregate.Noop}
	}
	if !ch.activeBefore() {
		return ch.silent()
	}
	for _, i := range changed {
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ApplicationInstanceStaleChanged{ApplicationInstanceStaleChanged: &fleetv1.ApplicationInstanceStaleChanged{
			HostId: i.GetHostId(), InstanceNumber: i.GetInstanceNumber(), Stale: i.GetStale(),
		}}})
	}
	ch.healthChanged()
	return ch.decision()
}

// registrable: the system has its database, an ABAP or J2EE instance and
// a message server.
func registrable(s *fleetv1.SapSystem) bool {
	return s.GetDatabaseId() != "" && hasFeature(s, "ABAP", "J2EE") && hasFeature(s, "MESSAGESERVER")
}

// hasFeature: an instance of s has one of features (sapcontrol's
// "|"-separated list).
func hasFeature(s *fleetv1.SapSystem, features ...string) bool {
	for _, i := range s.GetApplicationInstances() {
		for f := range strings.SplitSeq(i.GetFeatures(), "|") {
			if slices.Contains(features, f) {
				return true
			}
		}
	}
	return false
}

// systemType is "abap", "j2ee" or "abap_j2ee" (dual stack) from its
// instances' features; "" before it has an application server.
func systemType(s *fleetv1.SapSystem) string {
	abap, j2ee := hasFeature(s, "ABAP"), hasFeature(s, "J2EE")
	switch {
	case abap && j2ee:
		return "abap_j2ee"
	case abap:
		return "abap"
	case j2ee:
		return "j2ee"
	}
	return ""
}

// health is the worst of the system's instance healths (stale ones do not
// count: their host's heartbeat is lost) and its database's health.
func health(s *fleetv1.SapSystem) string {
	hs := []string{s.GetDatabaseHealth()}
	for _, i := range s.GetApplicationInstances() {
		if !i.GetStale() {
			hs = append(hs, i.GetHealth())
		}
	}
	return database.Worst(hs...)
}

// change accumulates the events of one accepted command.
type change struct {
	cmd     *fleetv1.Command
	current *fleetv1.SapSystem
	next    *fleetv1.SapSystem
	events  []*fleetv1.Event
}

// activeBefore: the system was registered and not deregistered.
func (c *change) activeBefore() bool {
	return c.current.GetRegisteredAt() != nil && !c.current.GetDeregistered()
}

// registerOrRestore registers a pending system, or restores a deregistered
// one, that next makes registrable; held reports that it stays pending or
// deregistered. A restoration registers inst (the instance that restored
// it), nil when the database did.
func (c *change) registerOrRestore(inst *fleetv1.ApplicationInstance) (held bool) {
	if c.activeBefore() {
		return false
	}
	if !registrable(c.next) {
		return true
	}
	if c.current.GetRegisteredAt() == nil {
		c.next.RegisteredAt = c.cmd.GetIssuedAt()
		c.next.Type = systemType(c.next)
		c.record(&fleetv1.Event{Payload: &fleetv1.Event_SapSystemRegistered{SapSystemRegistered: &fleetv1.SapSystemRegistered{
			Sid: c.next.GetSid(), Type: c.next.GetType(), DatabaseId: c.next.GetDatabaseId(), Health: health(c.next),
		}}})
		for _, i := range c.next.GetApplicationInstances() {
			c.instanceRegistered(i)
		}
		return false
	}
	c.next.Deregistered = false
	c.record(&fleetv1.Event{Payload: &fleetv1.Event_SapSystemRestored{SapSystemRestored: &fleetv1.SapSystemRestored{}}})
	if inst != nil {
		c.instanceRegistered(inst)
	}
	c.healthChanged()
	return false
}

func (c *change) instanceRegistered(i *fleetv1.ApplicationInstance) {
	c.record(&fleetv1.Event{Payload: &fleetv1.Event_ApplicationInstanceRegistered{ApplicationInstanceRegistered: &fleetv1.ApplicationInstanceRegistered{
		Instance: proto.CloneOf(i),
	}}})
}

func (c *change) instanceHealthChanged(old, i *fleetv1.ApplicationInstance) {
	if old.GetHealth() == i.GetHealth() {
		return
	}
	c.record(&fleetv1.Event{Payload: &fleetv1.Event_ApplicationInstanceHealthChanged{ApplicationInstanceHealthChanged: &fleetv1.ApplicationInstanceHealthChanged{
		HostId: i.GetHostId(), InstanceNumber: i.GetInstanceNumber(), Health: i.GetHealth(),
	}}})
}

func (c *change) deregistered(reason string) {
	c.next.Deregistered = true
	c.record(&fleetv1.Event{Payload: &fleetv1.Event_SapSystemDeregistered{SapSystemDeregistered: &fleetv1.SapSystemDeregistered{Reason: reason}}})
}

// healthChanged records SapSystemHealthChanged if the health differs from
// the current one.
func (c *change) healthChanged() {
	if h := health(c.next); h != c.current.GetHealth() {
		c.record(&fleetv1.Event{Payload: &fleetv1.Event_SapSystemHealthChanged{SapSystemHealthChanged: &fleetv1.SapSystemHealthChanged{Health: h}}})
	}
}

// record stamps e, whose payload is set, as the system's next version.
func (c *change) record(e *fleetv1.Event) {
	c.next.Version++
	c.next.UpdatedAt = c.cmd.GetIssuedAt()
	c.next.Health = health(c.next)
	if t := systemType(c.next); t != "" {
		c.next.Type = t
	}
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
// system keeps what it is told for its registration or restoration.
func (c *change) silent() decision {
	c.next.Health = health(c.next)
	if proto.Equal(c.next, c.current) {
		return decision{Outcome: aggregate.Noop}
	}
	return decision{State: c.next, Outcome: aggregate.Accepted}
}

func notRegistered(cmd *fleetv1.Command) decision {
	return rejected(nil, cmd, fmt.Sprintf("SAP system %s is not registered", cmd.GetAggregateId()))
}

func rejected(current *fleetv1.SapSystem, cmd *fleetv1.Command, reason string) decision {
	return aggregate.Reject(AggregateType, current, cmd, reason)
}
