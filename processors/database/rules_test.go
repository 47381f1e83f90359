package database

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var (
	dbID = ID("fd44c254ccb14331e54015c720c7a1f2", "HDD")
	t0   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

type want = aggregatetest.Want

func command(id string) *fleetv1.Command {
	return &fleetv1.Command{CommandId: id, AggregateId: dbID, IssuedAt: timestamppb.New(t0), TraceId: "trace-" + id}
}

func instance(host, nr, health, sr string) *fleetv1.DatabaseInstance {
	return &fleetv1.DatabaseInstance{HostId: host, InstanceNumber: nr, Health: health, SystemReplication: sr, Features: "HDB|HDB_WORKER"}
}

func register(id string, i *fleetv1.DatabaseInstance) *fleetv1.Command {
	c := command(id)
	c.Body = &fleetv1.Command_RegisterDatabaseInstance{RegisterDatabaseInstance: &fleetv1.RegisterDatabaseInstance{
		Sid: "HDD", Tenants: []string{"HDD"}, Instance: i,
	}}
	return c
}

func absent(id, host, nr string) *fleetv1.Command {
	c := command(id)
	c.Body = &fleetv1.Command_MarkDatabaseInstanceAbsent{MarkDatabaseInstanceAbsent: &fleetv1.MarkDatabaseInstanceAbsent{HostId: host, InstanceNumber: nr}}
	return c
}

func deregisterHost(id, host string) *fleetv1.Command {
	c := command(id)
	c.Body = &fleetv1.Command_DeregisterDatabaseInstances{DeregisterDatabaseInstances: &fleetv1.DeregisterDatabaseInstances{HostId: host}}
	return c
}

func stale(id, host string, s bool) *fleetv1.Command {
	c := command(id)
	c.Body = &fleetv1.Command_MarkDatabaseInstancesStale{MarkDatabaseInstancesStale: &fleetv1.MarkDatabaseInstancesStale{HostId: host, Stale: s}}
	return c
}

// run applies commands in order, checking each against its want, and
// returns the final state.
func run(t *testing.T, current *fleetv1.Database, steps ...step) *fleetv1.Database {
	t.Helper()
	for i, s := range steps {
		version := current.GetVersion()
		if s.want.Outcome == aggregate.Accepted && len(s.want.Events) > 0 {
			s.want.Version = 0 // checked below: versions rise by one per event
		}
		d := decide(current, s.cmd)
		if d.Outcome != s.want.Outcome {
			t.Fatalf("step %d (%s): outcome %s, want %s (events %v)", i, aggregate.CommandName(s.cmd), d.Outcome, s.want.Outcome, names(d.Events))
		}
		if got := names(d.Events); !equal(got, s.want.Events) {
			t.Fatalf("step %d (%s): events %v, want %v", i, aggregate.CommandName(s.cmd), got, s.want.Events)
		}
		for j, e := range d.Events {
			if d.Outcome == aggregate.Accepted && e.GetVersion() != version+uint64(j)+1 {
				t.Errorf("step %d: event %d version %d after %d", i, j, e.GetVersion(), version)
			}
		}
		if d.State != nil {
			current = d.State
		}
		if s.check != nil {
			s.check(t, current, d)
		}
	}
	return current
}

type step struct {
	cmd   *fleetv1.Command
	want  want
	check func(t *testing.T, state *fleetv1.Database, d decision)
}

func names(es []*fleetv1.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, aggregate.EventName(e))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func accepted(events ...string) want { return want{Outcome: aggregate.Accepted, Events: events} }

var (
	noop    = want{Outcome: aggregate.Noop}
	silent  = want{Outcome: aggregate.Accepted}
	refused = want{Outcome: aggregate.Rejected, Events: []string{"CommandRejected"}}
)

func TestPrimaryRegistersTheDatabase(t *testing.T) {
	s := run(t, nil, step{cmd: register("c1", instance("h1", "10", HealthPassing, "Primary")), want: accepted("DatabaseRegistered", "DatabaseInstanceRegistered")})
	want := &fleetv1.Database{
		Id: dbID, Sid: "HDD", Tenants: []string{"HDD"}, Health: HealthPassing, Version: 2,
		Instances:    []*fleetv1.DatabaseInstance{instance("h1", "10", HealthPassing, "Primary")},
		RegisteredAt: timestamppb.New(t0), UpdatedAt: timestamppb.New(t0),
	}
	if !proto.Equal(s, want) {
		t.Errorf("state\n%v\nwant\n%v", s, want)
	}
}

// A secondary reported first is held; the primary registers the database
// with both instances. Then changes, staleness and removals.
func TestDatabaseLifecycle(t *testing.T) {
	final := run(t, nil,
		step{cmd: register("c1", instance("h2", "10", HealthPassing, "Secondary")), want: silent, check: func(t *testing.T, s *fleetv1.Database, _ decision) {
			if s.GetRegisteredAt() != nil || len(s.GetInstances()) != 1 || s.GetVersion() != 0 {
				t.Errorf("held state %v", s)
			}
		}},
		step{cmd: register("c1b", instance("h2", "10", HealthPassing, "Secondary")), want: noop},
		step{cmd: absent("c1c", "h9", "10"), want: noop},
		step{cmd: register("c2", instance("h1", "10", HealthPassing, "Primary")), want: accepted("DatabaseRegistered", "DatabaseInstanceRegistered", "DatabaseInstanceRegistered"), check: func(t *testing.T, s *fleetv1.Database, d decision) {
			if s.GetHealth() != HealthPassing || s.GetSid() != "HDD" || len(s.GetInstances()) != 2 || s.GetInstances()[0].GetHostId() != "h1" {
				t.Errorf("registered %v", s)
			}
			if !proto.Equal(d.Events[len(d.Events)-1].GetState().GetDatabase(), s) {
				t.Error("the last event does not carry the state")
			}
		}},
		step{cmd: register("c3", instance("h1", "10", HealthPassing, "Primary")), want: noop},
		step{cmd: register("c4", instance("h2", "10", HealthWarning, "Secondary")), want: accepted("DatabaseInstanceHealthChanged", "DatabaseHealthChanged"), check: func(t *testing.T, s *fleetv1.Database, _ decision) {
			if s.GetHealth() != HealthWarning {
				t.Errorf("health %s", s.GetHealth())
			}
		}},
		step{cmd: register("c5", &fleetv1.DatabaseInstance{HostId: "h2", InstanceNumber: "10", Health: HealthWarning, SystemReplication: "Secondary", Features: "HDB|HDB_WORKER", Site: "WDF"}), want: accepted("DatabaseInstanceSystemReplicationChanged")},
		// The host of the warning instance loses its heartbeat: stale, not worse.
		step{cmd: stale("c6", "h2", true), want: accepted("DatabaseInstanceStaleChanged", "DatabaseHealthChanged"), check: func(t *testing.T, s *fleetv1.Database, _ decision) {
			if s.GetHealth() != HealthPassing {
				t.Errorf("a stale instance counts: health %s", s.GetHealth())
			}
		}},
		step{cmd: stale("c7", "h2", true), want: noop},
		step{cmd: stale("c8", "h3", true), want: noop},
		// A discovery does not clear staleness.
		step{cmd: register("c9", &fleetv1.DatabaseInstance{HostId: "h2", InstanceNumber: "10", Health: HealthWarning, SystemReplication: "Secondary", Features: "HDB|HDB_WORKER", Site: "WDF"}), want: noop},
		step{cmd: stale("c10", "h2", false), want: accepted("DatabaseInstanceStaleChanged", "DatabaseHealthChanged")},
		// The primary's host goes: no primary left.
		step{cmd: deregisterHost("c11", "h1"), want: accepted("DatabaseInstanceDeregistered", "DatabaseDeregistered"), check: func(t *testing.T, s *fleetv1.Database, _ decision) {
			if !s.GetDeregistered() {
				t.Error("not deregistered")
			}
		}},
		step{cmd: register("c12", instance("h2", "10", HealthCritical, "Secondary")), want: silent},
		step{cmd: stale("c12b", "h2", true), want: silent},
		// The secondary takes over: restored.
		step{cmd: register("c13", instance("h2", "10", HealthPassing, "Primary")), want: accepted("DatabaseRestored", "DatabaseInstanceRegistered"), check: func(t *testing.T, s *fleetv1.Database, _ decision) {
			if s.GetDeregistered() || s.GetHealth() != HealthUnknown {
				t.Errorf("restored %v (its only instance is stale: unknown)", s)
			}
		}},
		step{cmd: absent("c14", "h2", "10"), want: accepted("DatabaseInstanceMarkedAbsent", "DatabaseDeregistered", "DatabaseTombstoned")},
		step{cmd: absent("c15", "h2", "10"), want: noop},
		step{cmd: register("c16", instance("h1", "10", HealthPassing, "")), want: accepted("DatabaseRestored", "DatabaseInstanceRegistered", "DatabaseHealthChanged")},
	)
	if final.GetDeregistered() || final.GetHealth() != HealthPassing || final.GetVersion() == 0 {
		t.Errorf("final %v", final)
	}
}

func TestUnknownDatabaseRejectsAllButRegistration(t *testing.T) {
	for _, c := range []*fleetv1.Command{absent("c1", "h1", "10"), deregisterHost("c2", "h1"), stale("c3", "h1", true), {
		CommandId: "c4", AggregateId: dbID, IssuedAt: timestamppb.New(t0),
		Body: &fleetv1.Command_UpdateHeartbeat{UpdateHeartbeat: &fleetv1.UpdateHeartbeat{}},
	}} {
		d := aggregatetest.Decide(t, decide, nil, c, refused)
		if d.Events[0].GetCommandRejected().GetReason() == "" {
			t.Errorf("%s: no reason", aggregate.CommandName(c))
		}
	}
	aggregatetest.Decide(t, decide, nil, register("c5", &fleetv1.DatabaseInstance{HostId: "h1"}), refused)
}

// A deregistered database emits its tombstone when its last instance
// goes, and only its restoration otherwise.
func TestDeregisteredDatabaseTombstones(t *testing.T) {
	s := run(t, nil,
		step{cmd: register("c1", instance("h1", "10", HealthPassing, "Primary")), want: accepted("DatabaseRegistered", "DatabaseInstanceRegistered")},
		step{cmd: register("c2", instance("h2", "10", HealthPassing, "Secondary")), want: accepted("DatabaseInstanceRegistered")},
		step{cmd: absent("c3", "h1", "10"), want: accepted("DatabaseInstanceMarkedAbsent", "DatabaseDeregistered")},
		step{cmd: absent("c4", "h2", "10"), want: accepted("DatabaseTombstoned")},
	)
	if !s.GetDeregistered() || len(s.GetInstances()) != 0 || s.GetRegisteredAt() == nil {
		t.Errorf("tombstoned %v", s)
	}
}

func TestHealthRanksUnknownWorst(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{
		{nil, HealthUnknown},
		{[]string{"", ""}, HealthUnknown},
		{[]string{HealthPassing, ""}, HealthPassing},
		{[]string{HealthPassing, HealthCritical, HealthWarning}, HealthCritical},
		{[]string{HealthCritical, HealthUnknown}, HealthUnknown},
	} {
		if got := Worst(tt.in...); got != tt.want {
			t.Errorf("Worst(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	for colour, want := range map[string]string{"GREEN": HealthPassing, "YELLOW": HealthWarning, "RED": HealthCritical, "GRAY": HealthUnknown, "": HealthUnknown} {
		if got := InstanceHealth(colour); got != want {
			t.Errorf("InstanceHealth(%q) = %s, want %s", colour, got, want)
		}
	}
}

// Ids are a contract; the expected values were computed independently
// with Python: uuid5(uuid5(NAMESPACE_URL, "urn:fleetstream:database"), name).
func TestIDs(t *testing.T) {
	for _, tt := range []struct{ systemID, sid, want string }{
		{"fd44c254ccb14331e54015c720c7a1f2", "HDD", "fb68b18e-c26e-5ccb-8d48-808687e9edfa"},
		{"", "hdd", "30ab0e02-db68-5085-81db-506afea7ee37"},
		{"-", "HDD", "30ab0e02-db68-5085-81db-506afea7ee37"},
	} {
		if got := ID(tt.systemID, tt.sid); got != tt.want {
			t.Errorf("ID(%q, %q) = %s, want %s", tt.systemID, tt.sid, got, tt.want)
		}
	}
}
