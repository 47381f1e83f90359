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
func decide(current *fleetv1.Host, cmd *fleetv1.Command) decision {
	switch body := cmd.GetBody().(type) {
	case *fleetv1.Command_RegisterHost:
		return registerHost(current, cmd, body.RegisterHost)
	case *fleetv1.Command_UpdateHostDetails:
		return updateHostDetails(current, cmd, body.UpdateHostDetails)
	case *fleetv1.Command_UpdateHeartbeat:
		return updateHeartbeat(current, cmd, body.UpdateHeartbeat)
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
			Id:           cmd.GetAggregateId(),
			Details:      proto.CloneOf(c.GetDetails()),
			Heartbeat:    HealthUnknown,
			RegisteredAt: cmd.GetIssuedAt(),
		}}
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HostRegistered{
			HostRegistered: &fleetv1.HostRegistered{Details: proto.CloneOf(c.GetDetails())},
		}})
		return ch.decision()
	}
	// A known host registering again (agent reinstalled, table lost
	// upstream) is a details update, not an error.
	changed := fields.Diff(current.GetDetails(), c.GetDetails())
	if len(changed) == 0 {
		return decision{Outcome: aggregate.Noop}
	}
	ch := change{cmd: cmd, next: proto.CloneOf(current)}
	ch.next.Details = proto.CloneOf(c.GetDetails())
	ch.detailsUpdated(changed)
	return ch.decision()
}

func updateHostDetails(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.UpdateHostDetails) decision {
	if current == nil {
		return notRegistered(cmd)
	}
	ch := change{cmd: cmd, next: proto.CloneOf(current)}
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
	return ch.decision()
}

func updateHeartbeat(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.UpdateHeartbeat) decision {
	if current == nil {
		return notRegistered(cmd)
	}
	if c.GetAt() == nil {
		return rejected(current, cmd, "UpdateHeartbeat has no time (at)")
	}
	at := c.GetAt().AsTime()
	if last := current.GetLastHeartbeatAt(); last != nil && !at.After(last.AsTime()) {
		return decision{Outcome: aggregate.Noop} // redelivered or out of order
	}
	ch := change{cmd: cmd, next: proto.CloneOf(current)}
	ch.next.LastHeartbeatAt = c.GetAt()
	if current.GetHeartbeat() != HealthPassing {
		ch.next.Heartbeat = HealthPassing
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HeartbeatSucceeded{
			HeartbeatSucceeded: &fleetv1.HeartbeatSucceeded{At: c.GetAt()},
		}})
	}
	// A heartbeat of a passing host is stored without an event: one event
	// per agent every few seconds would bury the event store in noise.
	return ch.decision()
}

// health is the worst of the host's sub-healths. Unknown ranks below
// passing: a sub-health that has not reported yet must not hide a known
// one.
func health(h *fleetv1.Host) string {
	worst := HealthUnknown
	for _, sub := range []string{h.GetHeartbeat()} {
		if healthRank[sub] > healthRank[worst] {
			worst = sub
		}
	}
	return worst
}

var healthRank = map[string]int{HealthUnknown: 0, HealthPassing: 1, HealthWarning: 2, HealthCritical: 3}

// change accumulates the events of one accepted command.
type change struct {
	cmd    *fleetv1.Command
	next   *fleetv1.Host
	events []*fleetv1.Event
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

func (c *change) decision() decision {
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
