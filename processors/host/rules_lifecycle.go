package host

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// deregisterHost removes a host whose heartbeat is lost. The API checks
// the same before sending the command, but its view of the table may lag
// behind a heartbeat that arrived meanwhile: the aggregate decides.
func deregisterHost(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.DeregisterHost) decision {
	if current.GetHeartbeat() == HealthPassing {
		return rejected(current, cmd, fmt.Sprintf("host %s is alive (last heartbeat at %s): only a host whose heartbeat is lost can be deregistered",
			cmd.GetAggregateId(), current.GetLastHeartbeatAt().AsTime().Format("2006-01-02T15:04:05Z07:00")))
	}
	at := c.GetAt()
	if at == nil {
		at = cmd.GetIssuedAt()
	}
	ch := newChange(current, cmd)
	ch.next.Deregistered, ch.next.DeregisteredAt = true, at
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HostDeregistered{
		HostDeregistered: &fleetv1.HostDeregistered{At: at},
	}})
	return ch.decision(current.GetHealth())
}

// restoreHost brings a deregistered host back with the details it
// registered with. Its heartbeat stays as it was (lost) until the agent's
// next heartbeat.
func restoreHost(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.RegisterHost) decision {
	ch := newChange(current, cmd)
	ch.next.Deregistered, ch.next.DeregisteredAt = false, nil
	ch.next.Details = proto.CloneOf(c.GetDetails())
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HostRestored{
		HostRestored: &fleetv1.HostRestored{Details: proto.CloneOf(c.GetDetails())},
	}})
	return ch.decision(current.GetHealth())
}
