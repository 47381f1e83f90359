package sapsystem

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var (
	sysID = ID("HA1", "PRD")
	t0    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seq   int
)

func command(body any) *fleetv1.Command {
	seq++
	c := &fleetv1.Command{CommandId: "c" + time.Duration(seq).String(), AggregateId: sysID,
		IssuedAt: timestamppb.New(t0.Add(time.Duration(seq) * time.Second)), TraceId: "trace"}
	switch b := body.(type) {
	case *fleetv1.RegisterApplicationInstance:
		c.Body = &fleetv1.Command_RegisterApplicationInstance{RegisterApplicationInstance: b}
	case *fleetv1.DatabaseAvailable:
		c.Body = &fleetv1.Command_DatabaseAvailable{DatabaseAvailable: b}
	case *fleetv1.MarkApplicationInstanceAbsent:
		c.Body = &fleetv1.Command_MarkApplicationInstanceAbsent{MarkApplicationInstanceAbsent: b}
	case *fleetv1.DeregisterApplicationInstances:
		c.Body = &fleetv1.Command_DeregisterApplicationInstances{DeregisterApplicationInstances: b}
	case *fleetv1.MarkApplicationInstancesStale:
		c.Body = &fleetv1.Command_MarkApplicationInstancesStale{MarkApplicationInstancesStale: b}
	case *fleetv1.RegisterHost:
		c.Body = &fleetv1.Command_RegisterHost{RegisterHost: b}
	}
	return c
}

// Instances as the single-hana-single-app scenario's application server
// host reports them.
func instance(host, nr, features, health string) *fleetv1.Command {
	return command(&fleetv1.RegisterApplicationInstance{Sid: "HA1", Tenant: "PRD", DbAddress: "10.80.1.11",
		HostId: host, InstanceNumber: nr, Features: features, Health: health, Name: "D" + nr})
}

const (
	ascs   = "MESSAGESERVER|ENQUE"
	ers    = "ENQREP"
	dialog = "ABAP|GATEWAY|ICMAN|IGS"
)

func dbAvailable(health string) *fleetv1.Command {
	return command(&fleetv1.DatabaseAvailable{DatabaseId: "db-prd", Sid: "PRD", Health: health})
}

// step applies cmd to current, checks it against want (events with
// consecutive versions from current's) and returns the state after it.
func step(t *testing.T, current *fleetv1.SapSystem, cmd *fleetv1.Command, outcome aggregate.Outcome, events ...string) *fleetv1.SapSystem {
	t.Helper()
	want := aggregatetest.Want{Outcome: outcome, Events: events}
	for i := range events {
		want.Versions = append(want.Versions, current.GetVersion()+uint64(i)+1)
	}
	if outcome == aggregate.Rejected {
		want.Versions = []uint64{current.GetVersion()}
	}
	d := aggregatetest.Decide(t, decide, current, cmd, want)
	if t.Failed() {
		t.FailNow()
	}
	if d.State != nil {
		return d.State
	}
	return current
}

func TestUnknownSystemRejectsAllButRegistration(t *testing.T) {
	for _, cmd := range []*fleetv1.Command{
		dbAvailable("passing"),
		command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h1", InstanceNumber: "00"}),
		command(&fleetv1.DeregisterApplicationInstances{HostId: "h1"}),
		command(&fleetv1.MarkApplicationInstancesStale{HostId: "h1", Stale: true}),
		command(&fleetv1.RegisterHost{}),
	} {
		step(t, nil, cmd, aggregate.Rejected, "CommandRejected")
	}
	step(t, nil, instance("", "00", dialog, "passing"), aggregate.Rejected, "CommandRejected")
}

// An instance reported before the rest of its system (or its database) is
// held in the state without an event and registered with the system: no
// data is lost and nothing answers "not found".
func TestRegistersOnceItHasAnApplicationServerAMessageServerAndADatabase(t *testing.T) {
	s := step(t, nil, instance("h2", "10", ers, "passing"), aggregate.Accepted)
	s = step(t, s, instance("h1", "00", dialog, "passing"), aggregate.Accepted)
	s = step(t, s, dbAvailable("passing"), aggregate.Accepted) // no message server yet
	if s.GetRegisteredAt() != nil || len(s.GetApplicationInstances()) != 2 {
		t.Fatalf("pending system %v", s)
	}
	s = step(t, s, instance("h1", "01", ascs, "passing"), aggregate.Accepted,
		"SapSystemRegistered", "ApplicationInstanceRegistered", "ApplicationInstanceRegistered", "ApplicationInstanceRegistered")
	if s.GetType() != "abap" || s.GetHealth() != "passing" || s.GetDatabaseId() != "db-prd" || s.GetSid() != "HA1" {
		t.Errorf("registered system %v", s)
	}
	// The same report again: nothing.
	step(t, s, instance("h1", "01", ascs, "passing"), aggregate.Noop)

	// Without the database the same instances wait for it.
	p := step(t, nil, instance("h1", "00", dialog, "passing"), aggregate.Accepted)
	p = step(t, p, instance("h1", "01", ascs, "passing"), aggregate.Accepted)
	p = step(t, p, dbAvailable("passing"), aggregate.Accepted, "SapSystemRegistered", "ApplicationInstanceRegistered", "ApplicationInstanceRegistered")
	if p.GetType() != "abap" {
		t.Errorf("type %q", p.GetType())
	}
}

func registered(t *testing.T) *fleetv1.SapSystem {
	t.Helper()
	s := step(t, nil, dbAvailable("passing"), aggregate.Rejected, "CommandRejected")
	s = step(t, s, instance("h1", "00", dialog, "passing"), aggregate.Accepted)
	s = step(t, s, instance("h2", "01", ascs, "passing"), aggregate.Accepted)
	return step(t, s, dbAvailable("passing"), aggregate.Accepted, "SapSystemRegistered", "ApplicationInstanceRegistered", "ApplicationInstanceRegistered")
}

func TestClusteredInstanceMovesToAnotherHost(t *testing.T) {
	s := registered(t)
	s = step(t, s, instance("h3", "01", ascs, "passing"), aggregate.Accepted, "ApplicationInstanceMoved")
	if hosts := []string{s.GetApplicationInstances()[0].GetHostId(), s.GetApplicationInstances()[1].GetHostId()}; hosts[1] != "h3" {
		t.Errorf("instance hosts %v, want 01 on h3", hosts)
	}
	// The old host's absence report comes late: nothing left to remove.
	step(t, s, command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h2", InstanceNumber: "01"}), aggregate.Noop)
}

func TestHealthIsTheWorstOfInstancesAndDatabase(t *testing.T) {
	s := registered(t)
	s = step(t, s, instance("h1", "00", dialog, "warning"), aggregate.Accepted, "ApplicationInstanceHealthChanged", "SapSystemHealthChanged")
	if s.GetHealth() != "warning" {
		t.Fatalf("health %s", s.GetHealth())
	}
	s = step(t, s, dbAvailable("critical"), aggregate.Accepted, "SapSystemHealthChanged")
	if s.GetHealth() != "critical" {
		t.Fatalf("health with a critical database %s", s.GetHealth())
	}
	s = step(t, s, dbAvailable("passing"), aggregate.Accepted, "SapSystemHealthChanged")
	s = step(t, s, instance("h1", "00", dialog, "passing"), aggregate.Accepted, "ApplicationInstanceHealthChanged", "SapSystemHealthChanged")
	if s.GetHealth() != "passing" {
		t.Errorf("recovered health %s", s.GetHealth())
	}
}

// A host whose heartbeat is lost makes its instances stale: they stop
// counting for health (they are not critical) until it is back.
func TestStaleInstancesDoNotCountForHealth(t *testing.T) {
	s := registered(t)
	s = step(t, s, instance("h1", "00", dialog, "critical"), aggregate.Accepted, "ApplicationInstanceHealthChanged", "SapSystemHealthChanged")
	s = step(t, s, command(&fleetv1.MarkApplicationInstancesStale{HostId: "h1", Stale: true}), aggregate.Accepted,
		"ApplicationInstanceStaleChanged", "SapSystemHealthChanged")
	if s.GetHealth() != "passing" || !s.GetApplicationInstances()[0].GetStale() {
		t.Fatalf("with h1 stale: health %s, instances %v", s.GetHealth(), s.GetApplicationInstances())
	}
	step(t, s, command(&fleetv1.MarkApplicationInstancesStale{HostId: "h1", Stale: true}), aggregate.Noop)
	// A discovery does not end staleness: only the heartbeat does.
	s = step(t, s, instance("h1", "00", dialog, "passing"), aggregate.Accepted, "ApplicationInstanceHealthChanged")
	if !s.GetApplicationInstances()[0].GetStale() {
		t.Fatal("a discovery made a stale instance in sync")
	}
	s = step(t, s, command(&fleetv1.MarkApplicationInstancesStale{HostId: "h1", Stale: false}), aggregate.Accepted, "ApplicationInstanceStaleChanged")
	if s.GetHealth() != "passing" || s.GetApplicationInstances()[0].GetStale() {
		t.Errorf("back in sync: %v", s)
	}
}

// Deregistering the application server's host deregisters the system (no
// ABAP instance left); the last instance leaving tombstones it; a new
// report restores it with its versions continued.
func TestDeregistrationTombstoneAndRestore(t *testing.T) {
	s := registered(t)
	s = step(t, s, command(&fleetv1.DeregisterApplicationInstances{HostId: "h1"}), aggregate.Accepted, "ApplicationInstanceDeregistered", "SapSystemDeregistered")
	if !s.GetDeregistered() {
		t.Fatal("not deregistered")
	}
	// Deregistered: told things silently, no events.
	s = step(t, s, instance("h2", "01", ascs, "warning"), aggregate.Accepted)
	s = step(t, s, command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h2", InstanceNumber: "01"}), aggregate.Accepted, "SapSystemTombstoned")
	if len(s.GetApplicationInstances()) != 0 {
		t.Fatalf("tombstoned with instances %v", s.GetApplicationInstances())
	}
	s = step(t, s, instance("h1", "00", dialog, "passing"), aggregate.Accepted)
	s = step(t, s, instance("h2", "01", ascs, "passing"), aggregate.Accepted, "SapSystemRestored", "ApplicationInstanceRegistered")
	if s.GetDeregistered() || len(s.GetApplicationInstances()) != 2 {
		t.Errorf("restored %v", s)
	}
}

func TestLosingTheMessageServerDeregisters(t *testing.T) {
	s := registered(t)
	s = step(t, s, command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h2", InstanceNumber: "01"}), aggregate.Accepted,
		"ApplicationInstanceMarkedAbsent", "SapSystemDeregistered")
	if !s.GetDeregistered() {
		t.Fatal("a system without its message server is still registered")
	}
}
