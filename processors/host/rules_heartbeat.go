package host

import (
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func updateHeartbeat(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.UpdateHeartbeat) decision {
	if c.GetAt() == nil {
		return rejected(current, cmd, "UpdateHeartbeat has no time (at)")
	}
	at := c.GetAt().AsTime()
	if last := current.GetLastHeartbeatAt(); last != nil && !at.After(last.AsTime()) {
		return decision{Outcome: aggregate.Noop} // redelivered or out of order
	}
	ch := newChange(current, cmd)
	ch.next.LastHeartbeatAt = c.GetAt()
	if current.GetHeartbeat() != HealthPassing {
		ch.next.Heartbeat = HealthPassing
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HeartbeatSucceeded{
			HeartbeatSucceeded: &fleetv1.HeartbeatSucceeded{At: c.GetAt()},
		}})
	}
	// A heartbeat of a passing host is stored without an event: one event
	// per agent every few seconds would bury the event store in noise.
	return ch.decision(current.GetHealth())
}

// sweepHeartbeat fails the heartbeat of a host whose last heartbeat is
// older than the sweep's time minus its timeout. Only a passing heartbeat
// can fail: a host that never sent one (its agent's heartbeats are not
// forwarded before its first host discovery, and replayed discoveries
// have none) stays unknown, and a failed one has already failed.
func sweepHeartbeat(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.SweepHeartbeat) decision {
	last := current.GetLastHeartbeatAt()
	if current == nil || current.GetDeregistered() || current.GetHeartbeat() != HealthPassing || last == nil ||
		c.GetAt() == nil || c.GetTimeout() == nil {
		return decision{Outcome: aggregate.Noop}
	}
	if c.GetAt().AsTime().Sub(last.AsTime()) <= c.GetTimeout().AsDuration() {
		return decision{Outcome: aggregate.Noop}
	}
	ch := newChange(current, cmd)
	ch.next.Heartbeat = HealthCritical
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HeartbeatFailed{
		HeartbeatFailed: &fleetv1.HeartbeatFailed{LastHeartbeatAt: proto.CloneOf(last)},
	}})
	return ch.decision(current.GetHealth())
}
