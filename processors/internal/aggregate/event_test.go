package aggregate

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func command(id string) *fleetv1.Command {
	return &fleetv1.Command{
		CommandId: id, AggregateId: "h1", IssuedAt: timestamppb.New(t0), TraceId: "trace-" + id,
		Body: &fleetv1.Command_UpdateHeartbeat{UpdateHeartbeat: &fleetv1.UpdateHeartbeat{At: timestamppb.New(t0)}},
	}
}

// Event ids are a contract: consumers may recompute them, and reprocessing
// must re-emit them. The expected ids were computed independently with
// Python's uuid module: uuid5(uuid5(NAMESPACE_URL, "urn:fleetstream:event"), name).
func TestEventIDs(t *testing.T) {
	for _, tt := range []struct {
		typ, id string
		version uint64
		want    string
	}{
		{"host", "h1", 1, "6cee7fe3-4d51-5d52-bd8f-795c0121f750"},
		{"host", "h1", 2, "7bf78b14-25d6-5db1-ac78-26a9044dfc69"},
		{"cloud_resource", "aws:111:i-1", 1, "2a2b782e-d4cc-5733-a880-2118d2c54caf"},
		{"links", "aws:111:i-1", 3, "e0dc8fa4-13b2-5b48-9dc3-12a67ab65a04"},
	} {
		if got := EventID(tt.typ, tt.id, tt.version); got != tt.want {
			t.Errorf("EventID(%s, %s, %d) = %s, want %s", tt.typ, tt.id, tt.version, got, tt.want)
		}
	}
}

func TestStamp(t *testing.T) {
	next := &fleetv1.Host{Id: "h1", Version: 2, Heartbeat: "passing"}
	e := &fleetv1.Event{Payload: &fleetv1.Event_HeartbeatSucceeded{HeartbeatSucceeded: &fleetv1.HeartbeatSucceeded{At: timestamppb.New(t0)}}}
	Stamp(e, "host", command("c1"), next)
	want := &fleetv1.Event{
		EventId:       "7bf78b14-25d6-5db1-ac78-26a9044dfc69", // "host/h1/2"
		AggregateType: "host",
		AggregateId:   "h1",
		Version:       2,
		OccurredAt:    timestamppb.New(t0),
		TraceId:       "trace-c1",
		CommandId:     "c1",
		Payload:       e.Payload,
		State:         &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: next}},
	}
	if !proto.Equal(e, want) {
		t.Fatalf("stamped\n%v\nwant\n%v", e, want)
	}
	next.Version = 3
	if e.GetState().GetHost().GetVersion() != 2 {
		t.Error("the event's state is not a copy: it changed with the aggregate")
	}
}

func TestReject(t *testing.T) {
	rejection := func(version uint64, state *fleetv1.AggregateState) *fleetv1.Event {
		return &fleetv1.Event{
			EventId:       "a3388e1f-8861-5423-b743-191f22267c19", // "rejected/c7"
			AggregateType: "host",
			AggregateId:   "h1",
			Version:       version,
			OccurredAt:    timestamppb.New(t0),
			TraceId:       "trace-c7",
			CommandId:     "c7",
			Payload: &fleetv1.Event_CommandRejected{CommandRejected: &fleetv1.CommandRejected{
				Command: "UpdateHeartbeat", Reason: "too late",
			}},
			State: state,
		}
	}
	current := &fleetv1.Host{Id: "h1", Version: 4}
	for _, tt := range []struct {
		name    string
		current *fleetv1.Host
		want    *fleetv1.Event
	}{
		{"existing", current, rejection(4, &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: current}})},
		{"not existing", nil, rejection(0, nil)},
	} {
		d := Reject("host", tt.current, command("c7"), "too late")
		if d.Outcome != Rejected || d.State != nil || len(d.Events) != 1 {
			t.Fatalf("%s: decision %+v", tt.name, d)
		}
		if !proto.Equal(d.Events[0], tt.want) {
			t.Errorf("%s: rejection\n%v\nwant\n%v", tt.name, d.Events[0], tt.want)
		}
	}
}

// Every member of AggregateState's state oneof round-trips through
// snapshot, so an aggregate's events carry its state once its member
// exists.
func TestSnapshotFindsEveryMember(t *testing.T) {
	fields := (*fleetv1.AggregateState)(nil).ProtoReflect().Descriptor().Oneofs().ByName("state").Fields()
	if fields.Len() == 0 {
		t.Fatal("AggregateState has no state oneof members")
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		state := fd.Message()
		msg, err := protoregistry.GlobalTypes.FindMessageByName(state.FullName())
		if err != nil {
			t.Fatal(err)
		}
		s := snapshot(msg.New().Interface())
		if s == nil || !s.ProtoReflect().Has(fd) {
			t.Errorf("snapshot of a %s sets %v, want %s", state.FullName(), s, fd.Name())
		}
	}
	if s := snapshot((*fleetv1.Host)(nil)); s != nil {
		t.Errorf("snapshot of no host = %v, want nil", s)
	}
}

func TestSnapshotOfAnUnknownTypePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil {
			t.Error("no panic")
		}
	}()
	snapshot(&fleetv1.Command{})
}

func TestNames(t *testing.T) {
	if got := CommandName(command("c1")); got != "UpdateHeartbeat" {
		t.Errorf("CommandName = %q", got)
	}
	if got := CommandName(&fleetv1.Command{}); got != "none" {
		t.Errorf("CommandName of no body = %q", got)
	}
	e := &fleetv1.Event{Payload: &fleetv1.Event_ResourceDeleted{ResourceDeleted: &fleetv1.ResourceDeleted{}}}
	if got := EventName(e); got != "ResourceDeleted" {
		t.Errorf("EventName = %q", got)
	}
	if got := EventName(&fleetv1.Event{}); got != "none" {
		t.Errorf("EventName of no payload = %q", got)
	}
}
