package aggregate

import (
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// eventNamespace is the UUIDv5 namespace of every event id:
// UUIDv5(URL namespace, "urn:fleetstream:event"). Consumers may recompute
// ids, so the namespace and the names below are a contract.
var eventNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:event"))

// EventID is the id of version of an aggregate's events: UUIDv5 of
// "<aggregate type>/<aggregate id>/<version>". It derives from the state,
// never the clock, so reprocessing a record re-emits the same id.
func EventID(aggregateType, aggregateID string, version uint64) string {
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%s/%d", aggregateType, aggregateID, version)).String()
}

// rejectionID is the id of the CommandRejected event of a command: UUIDv5
// of "rejected/<command id>".
func rejectionID(commandID string) string {
	return uuid.NewSHA1(eventNamespace, []byte("rejected/"+commandID)).String()
}

// State is an aggregate's state: the value of its group table, carried by
// its events. Its message type must be a member of AggregateState's state
// oneof.
type State interface {
	proto.Message
	GetVersion() uint64
}

// Stamp fills the envelope of e, whose payload is set, as the event of cmd
// that brought the aggregate to next: id, aggregate, next's version and,
// as its state, next; and the command's time, trace and id.
func Stamp(e *fleetv1.Event, aggregateType string, cmd *fleetv1.Command, next State) {
	stamp(e, aggregateType, cmd, next.GetVersion(), EventID(aggregateType, cmd.GetAggregateId(), next.GetVersion()))
	e.State = snapshot(next)
}

// Reject is the decision of a command that breaks a business rule: a
// CommandRejected event for reason at current's version, carrying current
// (nil: the aggregate does not exist; version 0, no state). The table is
// left alone.
func Reject[PS State](aggregateType string, current PS, cmd *fleetv1.Command, reason string) Decision[PS] {
	e := &fleetv1.Event{Payload: &fleetv1.Event_CommandRejected{
		CommandRejected: &fleetv1.CommandRejected{Command: CommandName(cmd), Reason: reason},
	}}
	stamp(e, aggregateType, cmd, current.GetVersion(), rejectionID(cmd.GetCommandId()))
	e.State = snapshot(current)
	return Decision[PS]{Events: []*fleetv1.Event{e}, Outcome: Rejected}
}

func stamp(e *fleetv1.Event, aggregateType string, cmd *fleetv1.Command, version uint64, id string) {
	e.EventId = id
	e.AggregateType = aggregateType
	e.AggregateId = cmd.GetAggregateId()
	e.Version = version
	e.OccurredAt = cmd.GetIssuedAt()
	e.TraceId = cmd.GetTraceId()
	e.CommandId = cmd.GetCommandId()
}

// snapshot is state, cloned, as events carry it: the member of
// AggregateState's state oneof of state's type. Nil for a nil state. A
// type without a member panics: every aggregate's state needs one (in
// event.proto), which the aggregate's first test shows.
func snapshot(state proto.Message) *fleetv1.AggregateState {
	if state == nil || !state.ProtoReflect().IsValid() {
		return nil
	}
	name := state.ProtoReflect().Descriptor().FullName()
	fd, ok := stateMembers[name]
	if !ok {
		panic(fmt.Sprintf("fleetstream.v1.AggregateState has no member of type %s: add one to its state oneof", name))
	}
	s := new(fleetv1.AggregateState)
	s.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(proto.Clone(state).ProtoReflect()))
	return s
}

// stateMembers are the fields of AggregateState's state oneof by their
// message type.
var stateMembers = func() map[protoreflect.FullName]protoreflect.FieldDescriptor {
	fields := (*fleetv1.AggregateState)(nil).ProtoReflect().Descriptor().Oneofs().ByName("state").Fields()
	m := make(map[protoreflect.FullName]protoreflect.FieldDescriptor, fields.Len())
	for i := range fields.Len() {
		fd := fields.Get(i)
		m[fd.Message().FullName()] = fd
	}
	return m
}()

// EventName is the name of e's payload message, e.g. "HostRegistered"; it
// labels metrics.
func EventName(e *fleetv1.Event) string {
	m := e.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("payload"))
	if fd == nil {
		return "none"
	}
	return string(fd.Message().Name())
}
