// Package host is the host aggregate: the goka group that validates host
// commands against the host's current state (its group table) and emits
// the resulting domain events to the event store. Rules are pure
// functions in this file; group.go wires them to Kafka and view.go serves
// the table to readers.
package host

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/fields"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// AggregateType is the aggregate_type of the host's events.
const AggregateType = "host"

// Health and heartbeat states.
const (
	HealthUnknown  = "unknown"
	HealthPassing  = "passing"
	HealthWarning  = "warning"
	HealthCritical = "critical"
)

// decision is what one command does to one host.
type decision = aggregate.Decision[*fleetv1.Host]

// decide applies cmd to the host's current state (nil: not registered).
// It never modifies current. Every event and id derives from the command
// and the state, never from the clock, so reprocessing a command after a
// crash re-emits identical records; and applying a command twice changes
// nothing the second time.
//
// An unknown host accepts only RegisterHost; a deregistered one only
// RegisterHost too, which restores it.
func decide(current *fleetv1.Host, cmd *fleetv1.Command) decision {
	if reg, ok := cmd.GetBody().(*fleetv1.Command_RegisterHost); ok {
		return registerHost(current, cmd, reg.RegisterHost)
	}
	if sweep, ok := cmd.GetBody().(*fleetv1.Command_SweepHeartbeat); ok {
		// The sweep visits every host of the table, registered or not: it
		// is never an error, so never a rejection.
		return sweepHeartbeat(current, cmd, sweep.SweepHeartbeat)
	}
	if current == nil {
		return notRegistered(cmd)
	}
	if current.GetDeregistered() {
		return rejected(current, cmd, fmt.Sprintf("host %s is deregistered: only RegisterHost (its agent's next host discovery) restores it", cmd.GetAggregateId()))
	}
	switch body := cmd.GetBody().(type) {
	case *fleetv1.Command_UpdateHostDetails:
		return updateHostDetails(current, cmd, body.UpdateHostDetails)
	case *fleetv1.Command_UpdateHeartbeat:
		return updateHeartbeat(current, cmd, body.UpdateHeartbeat)
	case *fleetv1.Command_UpdateProvider:
		return updateProvider(current, cmd, body.UpdateProvider)
	case *fleetv1.Command_UpdateSlesSubscriptions:
		return updateSlesSubscriptions(current, cmd, body.UpdateSlesSubscriptions)
	case *fleetv1.Command_UpdateSaptuneStatus:
		return updateSaptuneStatus(current, cmd, body.UpdateSaptuneStatus)
	case *fleetv1.Command_UpdateHostChecksHealth:
		return updateChecksHealth(current, cmd, body.UpdateHostChecksHealth)
	case *fleetv1.Command_DeregisterHost:
		return deregisterHost(current, cmd, body.DeregisterHost)
	default:
		return rejected(current, cmd, fmt.Sprintf("%s is not a host command", aggregate.CommandName(cmd)))
	}
}

func registerHost(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.RegisterHost) decision {
	if c.GetDetails() == nil {
		return rejected(current, cmd, "RegisterHost has no details")
	}
	if current == nil {
		ch := change{cmd: cmd, next: &fleetv1.Host{
			Id:            cmd.GetAggregateId(),
			Details:       proto.CloneOf(c.GetDetails()),
			Heartbeat:     HealthUnknown,
			SaptuneHealth: HealthUnknown,
			ChecksHealth:  HealthUnknown,
			RegisteredAt:  cmd.GetIssuedAt(),
		}}
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HostRegistered{
			HostRegistered: &fleetv1.HostRegistered{Details: proto.CloneOf(c.GetDetails())},
		}})
		return ch.decision(HealthUnknown)
	}
	if current.GetDeregistered() {
		return restoreHost(current, cmd, c)
	}
	// A known host registering again (agent reinstalled, table lost
	// upstream) is a details update, not an error.
	changed := fields.Diff(current.GetDetails(), c.GetDetails())
	if len(changed) == 0 {
		return decision{Outcome: aggregate.Noop}
	}
	ch := newChange(current, cmd)
	ch.next.Details = proto.CloneOf(c.GetDetails())
	ch.detailsUpdated(changed)
	return ch.decision(current.GetHealth())
}

func updateHostDetails(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.UpdateHostDetails) decision {
	ch := newChange(current, cmd)
	if ch.next.Details == nil {
		ch.next.Details = new(fleetv1.HostDetails)
	}
	if err := fields.Copy(ch.next.Details, c.GetDetails(), c.GetChangedFields()); err != nil {
		return rejected(current, cmd, fmt.Sprintf("changed_fields must name HostDetails fields: %v", err))
	}
	// Only what really differs: a redelivered or stale update is a no-op.
	changed := fields.Diff(current.GetDetails(), ch.next.Details)
	if len(changed) == 0 {
		return decision{Outcome: aggregate.Noop}
	}
	ch.detailsUpdated(changed)
	return ch.decision(current.GetHealth())
}

// change accumulates the events of one accepted command.
type change struct {
	cmd    *fleetv1.Command
	next   *fleetv1.Host
	events []*fleetv1.Event
}

// newChange starts a change of current (not nil).
func newChange(current *fleetv1.Host, cmd *fleetv1.Command) change {
	return change{cmd: cmd, next: proto.CloneOf(current)}
}

func (c *change) detailsUpdated(changed []string) {
	c.record(&fleetv1.Event{Payload: &fleetv1.Event_HostDetailsUpdated{
		HostDetailsUpdated: &fleetv1.HostDetailsUpdated{Details: proto.CloneOf(c.next.GetDetails()), ChangedFields: changed},
	}})
}

// record stamps e, whose payload is set, as the host's next version.
func (c *change) record(e *fleetv1.Event) {
	c.next.Version++
	c.next.UpdatedAt = c.cmd.GetIssuedAt()
	c.next.Health = health(c.next)
	aggregate.Stamp(e, AggregateType, c.cmd, c.next)
	c.events = append(c.events, e)
}

// decision is the accepted change; when the host's health moved, a last
// HostHealthChanged event says so.
func (c *change) decision(previous string) decision {
	if h := health(c.next); h != previous && len(c.events) > 0 {
		c.record(&fleetv1.Event{Payload: &fleetv1.Event_HostHealthChanged{
			HostHealthChanged: &fleetv1.HostHealthChanged{Health: h, Previous: previous},
		}})
	}
	return decision{Events: c.events, State: c.next, Outcome: aggregate.Accepted}
}

func notRegistered(cmd *fleetv1.Command) decision {
	return rejected(nil, cmd, fmt.Sprintf("host %s is not registered", cmd.GetAggregateId()))
}

// rejected is a CommandRejected event at the host's current version; the
// state is untouched.
func rejected(current *fleetv1.Host, cmd *fleetv1.Command, reason string) decision {
	return aggregate.Reject(AggregateType, current, cmd, reason)
}
