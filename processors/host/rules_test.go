package host

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

const hostID = "h1"

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func sampleDetails() *fleetv1.HostDetails {
	return &fleetv1.HostDetails{
		Hostname:    "suse",
		Arch:        "x86_64",
		CpuCount:    2,
		IpAddresses: []string{"10.1.1.4", "10.1.1.5"},
	}
}

func command(id string, at time.Time) *fleetv1.Command {
	return &fleetv1.Command{CommandId: id, AggregateId: hostID, IssuedAt: ts(at), TraceId: "trace-" + id}
}

func register(id string, at time.Time, d *fleetv1.HostDetails) *fleetv1.Command {
	c := command(id, at)
	c.Body = &fleetv1.Command_RegisterHost{RegisterHost: &fleetv1.RegisterHost{Details: d}}
	return c
}

func update(id string, at time.Time, d *fleetv1.HostDetails, names ...string) *fleetv1.Command {
	c := command(id, at)
	c.Body = &fleetv1.Command_UpdateHostDetails{UpdateHostDetails: &fleetv1.UpdateHostDetails{Details: d, ChangedFields: names}}
	return c
}

func heartbeatAt(id string, at time.Time) *fleetv1.Command {
	c := command(id, at)
	c.Body = &fleetv1.Command_UpdateHeartbeat{UpdateHeartbeat: &fleetv1.UpdateHeartbeat{At: ts(at)}}
	return c
}

// registered is the host after register("c1", t0, sampleDetails()).
func registered() *fleetv1.Host {
	return &fleetv1.Host{
		Id:            hostID,
		Details:       sampleDetails(),
		Health:        HealthUnknown,
		Heartbeat:     HealthUnknown,
		SaptuneHealth: HealthUnknown,
		ChecksHealth:  HealthUnknown,
		RegisteredAt:  ts(t0),
		UpdatedAt:     ts(t0),
		Version:       1,
	}
}

// beating is registered() after a first heartbeat at t1 (HeartbeatSucceeded
// and HostHealthChanged).
func beating() *fleetv1.Host {
	h := registered()
	h.Heartbeat, h.Health, h.LastHeartbeatAt, h.UpdatedAt, h.Version = HealthPassing, HealthPassing, ts(t1), ts(t1), 3
	return h
}

func TestRegisterUnknownHost(t *testing.T) {
	d := decide(nil, register("c1", t0, sampleDetails()))
	if d.Outcome != aggregate.Accepted || len(d.Events) != 1 {
		t.Fatalf("decision %+v", d)
	}
	if !proto.Equal(d.State, registered()) {
		t.Fatalf("state\n%v\nwant\n%v", d.State, registered())
	}
	want := &fleetv1.Event{
		EventId:       "6cee7fe3-4d51-5d52-bd8f-795c0121f750", // UUIDv5(UUIDv5(URL, "urn:fleetstream:event"), "host/h1/1")
		AggregateType: "host",
		AggregateId:   hostID,
		Version:       1,
		OccurredAt:    ts(t0),
		TraceId:       "trace-c1",
		CommandId:     "c1",
		Payload:       &fleetv1.Event_HostRegistered{HostRegistered: &fleetv1.HostRegistered{Details: sampleDetails()}},
		State:         &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: registered()}},
	}
	if !proto.Equal(d.Events[0], want) {
		t.Fatalf("event\n%v\nwant\n%v", d.Events[0], want)
	}
}

func TestDecide(t *testing.T) {
	changed := sampleDetails()
	changed.CpuCount = 4
	tests := []struct {
		name     string
		current  *fleetv1.Host
		cmd      *fleetv1.Command
		outcome  aggregate.Outcome
		events   []string // event payload names
		version  uint64   // version of the events
		versions []uint64 // or of each event
		check    func(t *testing.T, d decision)
	}{
		{
			name: "register again, same details", current: registered(),
			cmd: register("c2", t1, sampleDetails()), outcome: aggregate.Noop,
		},
		{
			name: "register again, other details", current: registered(),
			cmd: register("c2", t1, changed), outcome: aggregate.Accepted, events: []string{"HostDetailsUpdated"}, version: 2,
			check: func(t *testing.T, d decision) {
				u := d.Events[0].GetHostDetailsUpdated()
				if !slices.Equal(u.ChangedFields, []string{"cpu_count"}) || !proto.Equal(u.Details, changed) {
					t.Errorf("payload %v", u)
				}
			},
		},
		{
			name: "register without details", cmd: register("c1", t0, nil),
			outcome: aggregate.Rejected, events: []string{"CommandRejected"},
		},
		{
			name: "update unknown host", cmd: update("c7", t1, &fleetv1.HostDetails{CpuCount: 4}, "cpu_count"),
			outcome: aggregate.Rejected, events: []string{"CommandRejected"}, version: 0,
			check: func(t *testing.T, d decision) {
				want := &fleetv1.CommandRejected{Command: "UpdateHostDetails", Reason: "host h1 is not registered"}
				if !proto.Equal(d.Events[0].GetCommandRejected(), want) {
					t.Errorf("payload %v, want %v", d.Events[0].GetCommandRejected(), want)
				}
				if d.Events[0].EventId != "a3388e1f-8861-5423-b743-191f22267c19" { // UUIDv5(event namespace, "rejected/c7")
					t.Errorf("event id %s", d.Events[0].EventId)
				}
				if d.Events[0].State != nil {
					t.Errorf("state of an unknown host: %v", d.Events[0].State)
				}
			},
		},
		{
			name: "update applies only listed fields that differ", current: registered(),
			cmd:     update("c2", t1, &fleetv1.HostDetails{CpuCount: 4, Hostname: "suse", Arch: "ignored"}, "cpu_count", "hostname"),
			outcome: aggregate.Accepted, events: []string{"HostDetailsUpdated"}, version: 2,
			check: func(t *testing.T, d decision) {
				u := d.Events[0].GetHostDetailsUpdated()
				if !slices.Equal(u.ChangedFields, []string{"cpu_count"}) || !proto.Equal(u.Details, changed) {
					t.Errorf("payload %v, want cpu_count changed and details %v", u, changed)
				}
				if !proto.Equal(d.State.Details, changed) || !d.State.UpdatedAt.AsTime().Equal(t1) || !d.State.RegisteredAt.AsTime().Equal(t0) {
					t.Errorf("state %v", d.State)
				}
				if !proto.Equal(d.Events[0].State.GetHost(), d.State) {
					t.Errorf("event state %v differs from the new state", d.Events[0].State.GetHost())
				}
			},
		},
		{
			name: "update clears a listed field absent from details", current: registered(),
			cmd: update("c2", t1, &fleetv1.HostDetails{}, "arch"), outcome: aggregate.Accepted, events: []string{"HostDetailsUpdated"}, version: 2,
			check: func(t *testing.T, d decision) {
				if d.State.Details.Arch != "" || d.State.Details.Hostname != "suse" {
					t.Errorf("details %v", d.State.Details)
				}
			},
		},
		{
			name: "update to current values", current: registered(),
			cmd: update("c2", t1, sampleDetails(), "cpu_count", "ip_addresses"), outcome: aggregate.Noop,
		},
		{
			name: "update naming an unknown field", current: registered(),
			cmd:     update("c2", t1, &fleetv1.HostDetails{CpuCount: 4}, "cpu_count", "cpuCount"),
			outcome: aggregate.Rejected, events: []string{"CommandRejected"}, version: 1,
			check: func(t *testing.T, d decision) {
				if r := d.Events[0].GetCommandRejected().Reason; !strings.Contains(r, `"cpuCount"`) {
					t.Errorf("reason %q does not name the field", r)
				}
				if !proto.Equal(d.Events[0].State.GetHost(), registered()) {
					t.Errorf("rejection state %v", d.Events[0].State)
				}
			},
		},
		{
			name: "heartbeat of unknown host", cmd: heartbeatAt("c9", t1),
			outcome: aggregate.Rejected, events: []string{"CommandRejected"},
		},
		{
			name: "first heartbeat", current: registered(), cmd: heartbeatAt("c2", t1),
			outcome: aggregate.Accepted, events: []string{"HeartbeatSucceeded", "HostHealthChanged"}, versions: []uint64{2, 3},
			check: func(t *testing.T, d decision) {
				if !proto.Equal(d.State, beating()) {
					t.Errorf("state\n%v\nwant\n%v", d.State, beating())
				}
				if !d.Events[0].GetHeartbeatSucceeded().At.AsTime().Equal(t1) {
					t.Errorf("payload %v", d.Events[0].GetHeartbeatSucceeded())
				}
				want := &fleetv1.HostHealthChanged{Health: HealthPassing, Previous: HealthUnknown}
				if !proto.Equal(d.Events[1].GetHostHealthChanged(), want) {
					t.Errorf("payload %v, want %v", d.Events[1].GetHostHealthChanged(), want)
				}
			},
		},
		{
			name: "heartbeat of a passing host", current: beating(), cmd: heartbeatAt("c3", t2),
			outcome: aggregate.Accepted,
			check: func(t *testing.T, d decision) {
				want := beating()
				want.LastHeartbeatAt = ts(t2)
				if !proto.Equal(d.State, want) {
					t.Errorf("state\n%v\nwant\n%v", d.State, want)
				}
			},
		},
		{
			name: "heartbeat of a critical host", cmd: heartbeatAt("c3", t2),
			current: func() *fleetv1.Host { h := beating(); h.Heartbeat, h.Health = HealthCritical, HealthCritical; return h }(),
			outcome: aggregate.Accepted, events: []string{"HeartbeatSucceeded", "HostHealthChanged"}, versions: []uint64{4, 5},
			check: func(t *testing.T, d decision) {
				if d.State.Heartbeat != HealthPassing || d.State.Health != HealthPassing {
					t.Errorf("heartbeat %s, health %s", d.State.Heartbeat, d.State.Health)
				}
			},
		},
		{name: "heartbeat out of order", current: beating(), cmd: heartbeatAt("c3", t0), outcome: aggregate.Noop},
		{name: "heartbeat redelivered", current: beating(), cmd: heartbeatAt("c2", t1), outcome: aggregate.Noop},
		{
			name: "heartbeat without time", current: beating(),
			cmd: func() *fleetv1.Command {
				c := command("c3", t2)
				c.Body = &fleetv1.Command_UpdateHeartbeat{UpdateHeartbeat: &fleetv1.UpdateHeartbeat{}}
				return c
			}(),
			outcome: aggregate.Rejected, events: []string{"CommandRejected"}, version: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := aggregatetest.Decide(t, decide, tt.current, tt.cmd, aggregatetest.Want{Outcome: tt.outcome, Events: tt.events, Version: tt.version, Versions: tt.versions})
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

func TestEventIDsAreDeterministic(t *testing.T) {
	first := decide(registered(), heartbeatAt("c2", t1))
	again := decide(registered(), heartbeatAt("c2", t1))
	if !proto.Equal(first.Events[0], again.Events[0]) {
		t.Fatal("the same command on the same state gave different events")
	}
	if id := first.Events[0].EventId; id != "7bf78b14-25d6-5db1-ac78-26a9044dfc69" { // "host/h1/2"
		t.Errorf("event id %s", id)
	}
}

func TestHealthIsWorstOfSubHealths(t *testing.T) {
	for heartbeat, want := range map[string]string{
		"":             HealthUnknown,
		HealthUnknown:  HealthUnknown,
		HealthPassing:  HealthPassing,
		HealthCritical: HealthCritical,
	} {
		if got := health(&fleetv1.Host{Heartbeat: heartbeat}); got != want {
			t.Errorf("heartbeat %q: health %q, want %q", heartbeat, got, want)
		}
	}
}
