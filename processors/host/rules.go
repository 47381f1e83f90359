// Package host is the host aggregate: the goka group that validates host
// commands against the host's current state (its group table) and emits
// the resulting domain events to the event store. Rules are pure
// functions in this file; group.go wires them to Kafka and view.go serves
// the table to readers.
package host

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

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

// outcome of a command; labels the commands metric.
type outcome string

const (
	outcomeAccepted outcome = "accepted" // the state changed (with or without events)
	outcomeRejected outcome = "rejected" // a CommandRejected event
	outcomeNoop     outcome = "noop"     // nothing to do: already applied, or out of order
)

// decision is what one command does to one host.
type decision struct {
	events []*fleetv1.Event
	// state is the host after the command, nil when the table need not be
	// written.
	state   *fleetv1.Host
	outcome outcome
}

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
		return rejected(current, cmd, fmt.Sprintf("%s is not a host command", commandName(cmd)))
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
		return decision{outcome: outcomeNoop}
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
		return decision{outcome: outcomeNoop}
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
		return decision{outcome: outcomeNoop} // redelivered or out of order
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
	stampEvent(e, c.cmd, c.next.GetVersion(), eventID(fmt.Sprintf("host/%s/%d", c.next.GetId(), c.next.GetVersion())))
	e.State = &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: proto.CloneOf(c.next)}}
	c.events = append(c.events, e)
}

func (c *change) decision() decision {
	return decision{events: c.events, state: c.next, outcome: outcomeAccepted}
}

func notRegistered(cmd *fleetv1.Command) decision {
	return rejected(nil, cmd, fmt.Sprintf("host %s is not registered", cmd.GetAggregateId()))
}

// rejected is a CommandRejected event at the host's current version; the
// state is untouched.
func rejected(current *fleetv1.Host, cmd *fleetv1.Command, reason string) decision {
	e := &fleetv1.Event{Payload: &fleetv1.Event_CommandRejected{
		CommandRejected: &fleetv1.CommandRejected{Command: commandName(cmd), Reason: reason},
	}}
	stampEvent(e, cmd, current.GetVersion(), eventID("rejected/"+cmd.GetCommandId()))
	if current != nil {
		e.State = &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: proto.CloneOf(current)}}
	}
	return decision{events: []*fleetv1.Event{e}, outcome: outcomeRejected}
}

func stampEvent(e *fleetv1.Event, cmd *fleetv1.Command, version uint64, id string) {
	e.EventId = id
	e.AggregateType = AggregateType
	e.AggregateId = cmd.GetAggregateId()
	e.Version = version
	e.OccurredAt = cmd.GetIssuedAt()
	e.TraceId = cmd.GetTraceId()
	e.CommandId = cmd.GetCommandId()
}

// eventNamespace is the UUIDv5 namespace of event ids:
// UUIDv5(URL namespace, "urn:fleetstream:event").
var eventNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:event"))

// eventID is UUIDv5 of name: "host/<id>/<version>" for the host's events,
// "rejected/<command id>" for rejections.
func eventID(name string) string {
	return uuid.NewSHA1(eventNamespace, []byte(name)).String()
}

// Reasons a command record is dead-lettered; they label the dead-letter
// metric.
const (
	reasonNotProtobuf     = "not_protobuf"
	reasonInvalidEnvelope = "invalid_envelope"
)

// deadLetter is a record that cannot be processed as a command at all.
type deadLetter struct {
	reason string
	err    error
}

func (d *deadLetter) Error() string { return d.err.Error() }
func (d *deadLetter) Unwrap() error { return d.err }

// parseCommand decodes and validates one input record keyed by key.
// Commands that decode but break a business rule are not dead letters:
// decide rejects them with an event.
func parseCommand(key string, value []byte) (*fleetv1.Command, error) {
	c := new(fleetv1.Command)
	if err := proto.Unmarshal(value, c); err != nil {
		return nil, &deadLetter{reasonNotProtobuf, fmt.Errorf("value is not a fleetstream.v1.Command: %w", err)}
	}
	var problem string
	switch {
	case c.GetAggregateId() != key:
		// The table is keyed by record key and events by aggregate id.
		problem = fmt.Sprintf("record key %q differs from aggregate_id %q: key commands by host id", key, c.GetAggregateId())
	case key == "":
		problem = "command has no aggregate_id"
	case c.GetCommandId() == "":
		problem = "command has no command_id"
	case c.GetIssuedAt() == nil:
		problem = "command has no issued_at"
	case c.GetBody() == nil:
		// Also what a command type newer than this processor looks like:
		// dead-lettered, it can be replayed after an upgrade.
		problem = "command has no body this processor knows"
	}
	if problem != "" {
		return nil, &deadLetter{reasonInvalidEnvelope, errors.New(problem)}
	}
	return c, nil
}

// commandName is the name of c's body message, e.g. "RegisterHost".
func commandName(c *fleetv1.Command) string {
	m := c.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body"))
	if fd == nil {
		return "none"
	}
	return string(fd.Message().Name())
}

// eventName is the name of e's payload message, e.g. "HostRegistered".
func eventName(e *fleetv1.Event) string {
	m := e.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("payload"))
	if fd == nil {
		return "none"
	}
	return string(fd.Message().Name())
}
