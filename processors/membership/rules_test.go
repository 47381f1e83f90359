package membership

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func hostEvent(id string, version uint64, heartbeat string) *fleetv1.Event {
	return &fleetv1.Event{
		EventId: "ev-" + id, AggregateType: "host", AggregateId: id, Version: version,
		OccurredAt: timestamppb.New(t0), TraceId: "trace-" + id,
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: &fleetv1.Host{Id: id, Heartbeat: heartbeat, Version: version}}},
	}
}

func sapEvent(id string, version uint64, instances ...*fleetv1.ApplicationInstance) *fleetv1.Event {
	return &fleetv1.Event{
		EventId: "ev-" + id, AggregateType: TypeSapSystem, AggregateId: id, Version: version,
		OccurredAt: timestamppb.New(t0), TraceId: "trace-" + id,
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_SapSystem{SapSystem: &fleetv1.SapSystem{Id: id, Version: version, ApplicationInstances: instances}}},
	}
}

// TestUpdatesPerHost: a SAP system's instances are merged per host, and
// only hosts whose membership or staleness changed are told.
func TestUpdatesPerHost(t *testing.T) {
	r := applyEvent(nil, "s1", sapEvent("s1", 1,
		&fleetv1.ApplicationInstance{HostId: "h1", InstanceNumber: "00"},
		&fleetv1.ApplicationInstance{HostId: "h2", InstanceNumber: "01", Stale: true},
		&fleetv1.ApplicationInstance{HostId: "h1", InstanceNumber: "02", Stale: true},
	))
	want := []send{
		{"h1", &fleetv1.MembershipUpdate{AggregateType: TypeSapSystem, AggregateId: "s1", Version: 1, Member: true, AllStale: false, AnyStale: true, Cause: "ev-s1", At: timestamppb.New(t0)}},
		{"h2", &fleetv1.MembershipUpdate{AggregateType: TypeSapSystem, AggregateId: "s1", Version: 1, Member: true, AllStale: true, AnyStale: true, Cause: "ev-s1", At: timestamppb.New(t0)}},
	}
	assertSends(t, r.sends, want)
	if r.outcome != outcomeApplied || len(r.commands) != 0 {
		t.Fatalf("result %+v", r)
	}

	// h2 leaves, h1 is unchanged: only h2 hears of it.
	r2 := applyEvent(r.state, "s1", sapEvent("s1", 2,
		&fleetv1.ApplicationInstance{HostId: "h1", InstanceNumber: "00"},
		&fleetv1.ApplicationInstance{HostId: "h1", InstanceNumber: "02", Stale: true},
	))
	assertSends(t, r2.sends, []send{
		{"h2", &fleetv1.MembershipUpdate{AggregateType: TypeSapSystem, AggregateId: "s1", Version: 2, Cause: "ev-s1", At: timestamppb.New(t0)}},
	})
	// Redelivered: nothing.
	if r3 := applyEvent(r2.state, "s1", sapEvent("s1", 2)); r3.outcome != outcomeStale || r3.state != nil || len(r3.sends) != 0 {
		t.Fatalf("redelivered event %+v", r3)
	}
	// A health change alone changes no membership: the table is not written.
	if r4 := applyEvent(r2.state, "s1", sapEvent("s1", 3,
		&fleetv1.ApplicationInstance{HostId: "h1", InstanceNumber: "00", Health: "critical"},
		&fleetv1.ApplicationInstance{HostId: "h1", InstanceNumber: "02", Stale: true},
	)); r4.outcome != outcomeUnchanged || r4.state != nil || len(r4.sends) != 0 {
		t.Fatalf("health change %+v", r4)
	}
}

func assertSends(t *testing.T, got, want []send) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("sends %v, want %v", got, want)
	}
	for i := range got {
		if got[i].key != want[i].key || !proto.Equal(got[i].msg, want[i].msg) {
			t.Fatalf("send %d: %s %v, want %s %v", i, got[i].key, got[i].msg, want[i].key, want[i].msg)
		}
	}
}

// TestCommands: heartbeat loss sends a stale mark to every aggregate the
// host is a member of, with envelopes derived from the host event.
func TestCommands(t *testing.T) {
	var state *fleetv1.Membership
	for _, u := range []*fleetv1.MembershipUpdate{
		{AggregateType: TypeCluster, AggregateId: "c1", Version: 3, Member: true, Cause: "ev-c1"},
		{AggregateType: TypeSapSystem, AggregateId: "s1", Version: 1, Member: true, Cause: "ev-s1"},
		{AggregateType: TypeDatabase, AggregateId: "d1", Version: 7, Member: true, Cause: "ev-d1"},
		{AggregateType: TypeDatabase, AggregateId: "d0", Version: 2, Member: false, Cause: "ev-d0"},
	} {
		r := applyUpdate(state, "h1", u, "trace-loop")
		if r.outcome != outcomeApplied || len(r.commands) != 0 {
			t.Fatalf("update %v: %+v", u, r)
		}
		state = r.state
	}

	failed := hostEvent("h1", 4, heartbeatCritical)
	failed.Payload = &fleetv1.Event_HeartbeatFailed{HeartbeatFailed: &fleetv1.HeartbeatFailed{}}
	r := applyEvent(state, "h1", failed)
	want := []target{
		{TypeCluster, &fleetv1.Command{AggregateId: "c1", Body: &fleetv1.Command_MarkClusterHostStale{MarkClusterHostStale: &fleetv1.MarkClusterHostStale{HostId: "h1", Stale: true}}}},
		{TypeSapSystem, &fleetv1.Command{AggregateId: "s1", Body: &fleetv1.Command_MarkApplicationInstancesStale{MarkApplicationInstancesStale: &fleetv1.MarkApplicationInstancesStale{HostId: "h1", Stale: true}}}},
		{TypeDatabase, &fleetv1.Command{AggregateId: "d1", Body: &fleetv1.Command_MarkDatabaseInstancesStale{MarkDatabaseInstancesStale: &fleetv1.MarkDatabaseInstancesStale{HostId: "h1", Stale: true}}}},
	}
	assertCommands(t, r.commands, want, "ev-h1", "trace-h1")
	ids := map[string]bool{}
	for _, c := range r.commands {
		ids[c.cmd.GetCommandId()] = true
	}
	if len(ids) != 3 {
		t.Fatalf("command ids not distinct: %v", ids)
	}
	// Reprocessing the same event yields the same ids.
	again := applyEvent(state, "h1", failed)
	for i := range again.commands {
		if again.commands[i].cmd.GetCommandId() != r.commands[i].cmd.GetCommandId() {
			t.Fatal("command ids differ on reprocessing")
		}
	}
	if got := r.state.GetHost(); !got.GetHeartbeatLost() || got.GetVersion() != 4 {
		t.Fatalf("host side %v", got)
	}
	// Redelivered: nothing.
	if r2 := applyEvent(r.state, "h1", failed); r2.outcome != outcomeStale || len(r2.commands) != 0 {
		t.Fatalf("redelivered %+v", r2)
	}

	// Deregistered: every membership is removed.
	dereg := hostEvent("h1", 5, heartbeatCritical)
	dereg.Payload = &fleetv1.Event_HostDeregistered{HostDeregistered: &fleetv1.HostDeregistered{}}
	r3 := applyEvent(r.state, "h1", dereg)
	assertCommands(t, r3.commands, []target{
		{TypeCluster, &fleetv1.Command{AggregateId: "c1", Body: &fleetv1.Command_DeregisterClusterHost{DeregisterClusterHost: &fleetv1.DeregisterClusterHost{HostId: "h1"}}}},
		{TypeSapSystem, &fleetv1.Command{AggregateId: "s1", Body: &fleetv1.Command_DeregisterApplicationInstances{DeregisterApplicationInstances: &fleetv1.DeregisterApplicationInstances{HostId: "h1"}}}},
		{TypeDatabase, &fleetv1.Command{AggregateId: "d1", Body: &fleetv1.Command_DeregisterDatabaseInstances{DeregisterDatabaseInstances: &fleetv1.DeregisterDatabaseInstances{HostId: "h1"}}}},
	}, "ev-h1", "trace-h1")

	// A late report of membership while deregistered is answered at once.
	r4 := applyUpdate(r3.state, "h1", &fleetv1.MembershipUpdate{AggregateType: TypeCluster, AggregateId: "c9", Version: 1, Member: true, Cause: "ev-c9", At: timestamppb.New(t0)}, "trace-loop")
	assertCommands(t, r4.commands, []target{
		{TypeCluster, &fleetv1.Command{AggregateId: "c9", Body: &fleetv1.Command_DeregisterClusterHost{DeregisterClusterHost: &fleetv1.DeregisterClusterHost{HostId: "h1"}}}},
	}, "ev-c9", "trace-loop")
}

func assertCommands(t *testing.T, got, want []target, cause, traceID string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("commands %v, want %v", got, want)
	}
	for i, g := range got {
		w := want[i]
		if g.typ != w.typ || g.cmd.GetAggregateId() != w.cmd.GetAggregateId() || !proto.Equal(g.cmd, withEnvelope(w.cmd, g.cmd)) {
			t.Fatalf("command %d: %s %v, want %s %v", i, g.typ, g.cmd, w.typ, w.cmd)
		}
		if g.cmd.GetCommandId() != commandID(cause, w.cmd.GetAggregateId(), "h1", aggregate.CommandName(w.cmd)) ||
			g.cmd.GetTraceId() != traceID || !g.cmd.GetIssuedAt().AsTime().Equal(t0) {
			t.Fatalf("command %d envelope %v (cause %s, trace %s)", i, g.cmd, cause, traceID)
		}
	}
}

// withEnvelope is want with got's envelope, to compare bodies.
func withEnvelope(want, got *fleetv1.Command) *fleetv1.Command {
	w := proto.CloneOf(want)
	w.CommandId, w.IssuedAt, w.TraceId = got.GetCommandId(), got.GetIssuedAt(), got.GetTraceId()
	return w
}

// TestReconcile: what a report of membership makes the host side send.
func TestReconcile(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		lost, deregistered     bool
		member, allStale, anyS bool
		want                   string
	}{
		{name: "joins while lost", lost: true, member: true, want: "MarkClusterHostStale true"},
		{name: "partly stale while lost", lost: true, member: true, anyS: true, want: "MarkClusterHostStale true"},
		{name: "stale while lost", lost: true, member: true, allStale: true, anyS: true},
		{name: "stale while alive", member: true, anyS: true, want: "MarkClusterHostStale false"},
		{name: "in sync while alive", member: true},
		{name: "joins while deregistered", lost: true, deregistered: true, member: true, want: "DeregisterClusterHost"},
		{name: "leaves", lost: true, deregistered: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := &fleetv1.Membership{Host: &fleetv1.HostMemberships{HeartbeatLost: tc.lost, Deregistered: tc.deregistered, Version: 9}}
			u := &fleetv1.MembershipUpdate{AggregateType: TypeCluster, AggregateId: "c1", Version: 2, Member: tc.member, AllStale: tc.allStale, AnyStale: tc.anyS, Cause: "ev", At: timestamppb.New(t0)}
			r := applyUpdate(state, "h1", u, "")
			var got string
			for _, c := range r.commands {
				switch b := c.cmd.GetBody().(type) {
				case *fleetv1.Command_MarkClusterHostStale:
					got = "MarkClusterHostStale " + map[bool]string{true: "true", false: "false"}[b.MarkClusterHostStale.GetStale()]
				case *fleetv1.Command_DeregisterClusterHost:
					got = "DeregisterClusterHost"
				}
			}
			if got != tc.want || len(r.commands) > 1 {
				t.Fatalf("commands %v, want %q", r.commands, tc.want)
			}
			// The report is recorded with its version; an older one is not.
			if m := r.state.GetHost().GetClusters(); len(m) != 1 || m[0].GetMember() != tc.member || m[0].GetVersion() != 2 {
				t.Fatalf("memberships %v", m)
			}
			old := proto.CloneOf(u)
			old.Version, old.Member = 1, !tc.member
			if r2 := applyUpdate(r.state, "h1", old, ""); r2.outcome != outcomeStale || r2.state != nil || len(r2.commands) != 0 {
				t.Fatalf("older report %+v", r2)
			}
		})
	}
}

// TestIgnored: rejections, other aggregates' events and unknown update
// types change nothing.
func TestIgnored(t *testing.T) {
	rejected := hostEvent("h1", 1, heartbeatCritical)
	rejected.Payload = &fleetv1.Event_CommandRejected{CommandRejected: &fleetv1.CommandRejected{Command: "UpdateHeartbeat"}}
	resource := &fleetv1.Event{AggregateId: "aws:1:i-1", Version: 1, State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_CloudResource{CloudResource: &fleetv1.CloudResource{}}}}
	for _, e := range []*fleetv1.Event{rejected, resource, {AggregateId: "x", Version: 1}} {
		if r := applyEvent(nil, e.GetAggregateId(), e); r.outcome != outcomeIgnored || r.state != nil {
			t.Errorf("event %v: %+v", e, r)
		}
	}
	for _, u := range []*fleetv1.MembershipUpdate{{AggregateType: "host", AggregateId: "c1"}, {AggregateType: TypeCluster}} {
		if r := applyUpdate(nil, "h1", u, ""); r.outcome != outcomeIgnored || r.state != nil {
			t.Errorf("update %v: %+v", u, r)
		}
	}
}
