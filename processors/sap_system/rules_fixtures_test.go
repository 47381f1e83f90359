package sapsystem

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/database"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// The single-hana-single-app scenario: HA1 on host e77ab524 (ASCS00 and
// D01) runs on tenant PRD of the HANA database PRD on host c4914bd4.
const (
	fixtureAppHost = "e77ab524-c4e4-5381-bb59-5af8639d52a4"
	fixtureDBHost  = "c4914bd4-efa3-553a-9a52-e9b562e210e5"
	fixtureApp     = "scenarios/single-hana-single-app/" + fixtureAppHost + "_sap_system_discovery.json"
	fixtureDB      = "scenarios/single-hana-single-app/" + fixtureDBHost + "_sap_system_discovery.json"
	fixtureJava    = "scenarios/sap-system-java/a18a203d-4f2f-4d21-b9a5-e300a9c5eeee_sap_system_discovery.json"
	fixtureDialog  = "scenarios/sap-system-details/1b0e9297-97dd-55d6-9874-8efde4d84c90_sap_system_discovery_GREEN.json"
)

// fixtureSystems decodes the sap_system_discovery payload of a real Trento
// fixture as the scenario processor does.
func fixtureSystems(t *testing.T, path string) []payload.SAPSystem {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/trento/" + path)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	systems, err := payload.DecodeSAPSystems(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return systems
}

// fixtureCommands are the RegisterApplicationInstance commands the
// scenario policy (processors/scenario/policy_sap.go) makes of the
// application systems host reports in a fixture, field for field, in its
// order (by instance number). The scenario package imports this one, so
// its policy cannot run in these tests.
func fixtureCommands(t *testing.T, path, host string) []*fleetv1.Command {
	t.Helper()
	var out []*fleetv1.Command
	for _, s := range fixtureSystems(t, path) {
		if s.Type != payload.SAPSystemApplication {
			continue
		}
		for _, inst := range s.Instances {
			nr, _ := inst.Number()
			c := command(&fleetv1.RegisterApplicationInstance{
				Sid: s.SID, HostId: host, InstanceNumber: nr, Features: inst.Features(),
				Health: database.InstanceHealth(inst.Status()), Tenant: s.DatabaseTenant(),
				DbAddress: s.DatabaseAddress(), Name: inst.Name, Hostname: inst.Hostname(),
			})
			c.AggregateId = ID(s.SID, s.DatabaseTenant())
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b *fleetv1.Command) int {
		return strings.Compare(a.GetRegisterApplicationInstance().GetInstanceNumber(), b.GetRegisterApplicationInstance().GetInstanceNumber())
	})
	if len(out) == 0 {
		t.Fatalf("%s: no application instance", path)
	}
	return out
}

// fixtureDatabaseID is the id of the database the fixture's HANA system is.
func fixtureDatabaseID(t *testing.T) string {
	t.Helper()
	s := fixtureSystems(t, fixtureDB)[0]
	return database.ID(s.ID, s.SID)
}

// for the system of c, as the reaction tells it.
func databaseAvailableFor(c *fleetv1.Command, dbID, health string) *fleetv1.Command {
	d := command(&fleetv1.DatabaseAvailable{DatabaseId: dbID, Sid: "PRD", Health: health})
	d.AggregateId = c.GetAggregateId()
	return d
}

func registeredFromFixture(t *testing.T) (*fleetv1.SapSystem, []*fleetv1.Command) {
	t.Helper()
	cs := fixtureCommands(t, fixtureApp, fixtureAppHost)
	if len(cs) != 2 || cs[0].GetAggregateId() != sysID {
		t.Fatalf("fixture commands %v", cs)
	}
	s := step(t, nil, cs[0], aggregate.Accepted)
	s = step(t, s, cs[1], aggregate.Accepted)
	s = step(t, s, databaseAvailableFor(cs[0], fixtureDatabaseID(t), database.HealthPassing), aggregate.Accepted,
		"SapSystemRegistered", "ApplicationInstanceRegistered", "ApplicationInstanceRegistered")
	return s, cs
}

func fixtureInstance(c *fleetv1.Command) *fleetv1.ApplicationInstance {
	r := c.GetRegisterApplicationInstance()
	return &fleetv1.ApplicationInstance{
		HostId: r.GetHostId(), InstanceNumber: r.GetInstanceNumber(), Features: r.GetFeatures(),
		Health: r.GetHealth(), Name: r.GetName(), Hostname: r.GetHostname(),
	}
}

// The real fixture: ASCS00 and D01 are held until the database is known,
// then registered with the system, nothing lost.
func TestFixtureInstancesAreHeldUntilTheDatabase(t *testing.T) {
	s, cs := registeredFromFixture(t)
	want := &fleetv1.SapSystem{
		Id: sysID, Sid: "HA1", Type: "abap", Health: database.HealthPassing,
		ApplicationInstances: []*fleetv1.ApplicationInstance{fixtureInstance(cs[0]), fixtureInstance(cs[1])},
		DatabaseId:           fixtureDatabaseID(t), DatabaseSid: "PRD", DatabaseHealth: database.HealthPassing,
		Tenant: "PRD", DbAddress: "10.0.1.10", Version: 3,
		RegisteredAt: s.GetUpdatedAt(), UpdatedAt: s.GetUpdatedAt(),
	}
	if !proto.Equal(s, want) {
		t.Errorf("state\n%v\nwant\n%v", s, want)
	}
	if f := []string{cs[0].GetRegisterApplicationInstance().GetFeatures(), cs[1].GetRegisterApplicationInstance().GetFeatures()}; f[0] != ascs || f[1] != dialog {
		t.Errorf("fixture features %v", f)
	}
	// The same discovery again: nothing.
	for _, c := range cs {
		step(t, s, c, aggregate.Noop)
	}
}

// Real fixtures of systems that lack a message server or an application
// server stay pending, and a Java system registers as j2ee.
func TestFixtureRegistrationNeedsAnApplicationServerAndAMessageServer(t *testing.T) {
	dialogOnly := fixtureCommands(t, fixtureDialog, "h1")
	if len(dialogOnly) != 1 {
		t.Fatalf("commands %v", dialogOnly)
	}
	s := step(t, nil, dialogOnly[0], aggregate.Accepted)
	s = step(t, s, databaseAvailableFor(dialogOnly[0], "db-hdd", database.HealthPassing), aggregate.Accepted)
	if s.GetRegisteredAt() != nil || s.GetType() != "" || s.GetDatabaseId() != "db-hdd" {
		t.Errorf("a lone dialog instance registered its system: %v", s)
	}

	java := fixtureCommands(t, fixtureJava, "h1")
	if len(java) != 2 || java[0].GetAggregateId() != ID("NWJ", "HTJ") {
		t.Fatalf("commands %v", java)
	}
	// Its SCS (message server) alone, with the database: pending.
	j := step(t, nil, java[1], aggregate.Accepted)
	j = step(t, j, databaseAvailableFor(java[1], "db-htj", database.HealthPassing), aggregate.Accepted)
	if j.GetRegisteredAt() != nil {
		t.Fatalf("a message server alone registered its system: %v", j)
	}
	j = step(t, j, java[0], aggregate.Accepted, "SapSystemRegistered", "ApplicationInstanceRegistered", "ApplicationInstanceRegistered")
	if j.GetType() != "j2ee" || j.GetSid() != "NWJ" || j.GetTenant() != "HTJ" || j.GetDbAddress() != "10.17.0.4" {
		t.Errorf("java system %v", j)
	}

	// An ENQREP (ERS) instance with a database is no system either.
	e := step(t, nil, instance("h2", "10", ers, "passing"), aggregate.Accepted)
	e = step(t, e, dbAvailable("passing"), aggregate.Accepted)
	if e.GetRegisteredAt() != nil {
		t.Errorf("an ERS instance registered its system: %v", e)
	}
	// Dual stack.
	d := step(t, nil, instance("h1", "00", ascs, "passing"), aggregate.Accepted)
	d = step(t, d, instance("h1", "01", "ABAP|J2EE|GATEWAY", "passing"), aggregate.Accepted)
	d = step(t, d, dbAvailable("passing"), aggregate.Accepted, "SapSystemRegistered", "ApplicationInstanceRegistered", "ApplicationInstanceRegistered")
	if d.GetType() != "abap_j2ee" {
		t.Errorf("dual stack type %q", d.GetType())
	}
}

// The registration event names the system, its type, database and health;
// one ApplicationInstanceRegistered per held instance, in instance order.
func TestRegistrationEventsCarryTheHeldInstances(t *testing.T) {
	s := step(t, nil, instance("h2", "10", ers, "passing"), aggregate.Accepted)
	s = step(t, s, instance("h1", "01", dialog, "warning"), aggregate.Accepted)
	s = step(t, s, instance("h1", "00", ascs, "passing"), aggregate.Accepted)
	d := decide(s, dbAvailable("passing"))
	if len(d.Events) != 4 {
		t.Fatalf("events %v", d.Events)
	}
	r := d.Events[0].GetSapSystemRegistered()
	if r.GetSid() != "HA1" || r.GetType() != "abap" || r.GetDatabaseId() != "db-prd" || r.GetHealth() != "warning" {
		t.Errorf("SapSystemRegistered %v", r)
	}
	var nrs []string
	for _, e := range d.Events[1:] {
		nrs = append(nrs, e.GetApplicationInstanceRegistered().GetInstance().GetInstanceNumber())
	}
	if !slices.Equal(nrs, []string{"00", "01", "10"}) {
		t.Errorf("instances registered %v", nrs)
	}
	if !proto.Equal(d.Events[3].GetState().GetSapSystem(), d.State) || d.State.GetRegisteredAt() == nil {
		t.Error("the last event does not carry the registered state")
	}
}

// What a registered system is told that changes nothing emits nothing;
// what no event reports is still written.
func TestNoChangeNoEvent(t *testing.T) {
	s, cs := registeredFromFixture(t)
	db := fixtureDatabaseID(t)
	step(t, s, databaseAvailableFor(cs[0], db, database.HealthPassing), aggregate.Noop)
	step(t, s, command(&fleetv1.MarkApplicationInstancesStale{HostId: fixtureAppHost, Stale: false}), aggregate.Noop)
	step(t, s, command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h9", InstanceNumber: "00"}), aggregate.Noop)
	step(t, s, command(&fleetv1.DeregisterApplicationInstances{HostId: "h9"}), aggregate.Noop)

	// The database's SID, which no event reports.
	sid := command(&fleetv1.DatabaseAvailable{DatabaseId: db, Sid: "PR2", Health: database.HealthPassing})
	if n := step(t, s, sid, aggregate.Accepted); n.GetDatabaseSid() != "PR2" || n.GetVersion() != s.GetVersion() {
		t.Errorf("database SID: %v", n)
	}
	// The database address of the system's profile (its database moved to
	// another address), which no event reports either: the aggregate must
	// keep the new one, as the reaction does.
	r := proto.CloneOf(cs[1])
	r.CommandId += "-moved-db"
	r.GetRegisterApplicationInstance().DbAddress = "10.0.1.99"
	if n := step(t, s, r, aggregate.Accepted); n.GetDbAddress() != "10.0.1.99" || n.GetVersion() != s.GetVersion() {
		t.Errorf("the new database address is lost: %v", n)
	}
}

func TestDatabaseChanges(t *testing.T) {
	s := registered(t)
	s = step(t, s, command(&fleetv1.DatabaseAvailable{DatabaseId: "db-prd-2", Sid: "PRD", Health: "warning"}), aggregate.Accepted,
		"SapSystemDatabaseChanged", "SapSystemHealthChanged")
	if s.GetDatabaseId() != "db-prd-2" || s.GetHealth() != "warning" || s.GetDatabaseHealth() != "warning" {
		t.Errorf("after the database change %v", s)
	}
	step(t, s, command(&fleetv1.DatabaseAvailable{Sid: "PRD"}), aggregate.Rejected, "CommandRejected")
}

// Only a change of the system's health emits SapSystemHealthChanged.
func TestHealthChangedOnlyOnChange(t *testing.T) {
	s := registered(t)
	s = step(t, s, instance("h1", "00", dialog, "critical"), aggregate.Accepted, "ApplicationInstanceHealthChanged", "SapSystemHealthChanged")
	s = step(t, s, instance("h2", "01", ascs, "warning"), aggregate.Accepted, "ApplicationInstanceHealthChanged")
	s = step(t, s, dbAvailable("critical"), aggregate.Accepted)
	if s.GetHealth() != "critical" || s.GetDatabaseHealth() != "critical" {
		t.Fatalf("health %v", s)
	}
	s = step(t, s, instance("h1", "00", dialog, "passing"), aggregate.Accepted, "ApplicationInstanceHealthChanged")
	s = step(t, s, dbAvailable("passing"), aggregate.Accepted, "SapSystemHealthChanged")
	if s.GetHealth() != "warning" {
		t.Errorf("health %s, want the ASCS's warning", s.GetHealth())
	}
	// A moved instance with another health.
	s = step(t, s, instance("h3", "01", ascs, "passing"), aggregate.Accepted, "ApplicationInstanceMoved", "ApplicationInstanceHealthChanged", "SapSystemHealthChanged")
	if m := s.GetApplicationInstances()[1]; m.GetHostId() != "h3" || s.GetHealth() != "passing" {
		t.Errorf("after the move %v", s)
	}
}

func TestHealthIsTheWorstOfNonStaleInstancesAndTheDatabase(t *testing.T) {
	inst := func(h string, stale bool) *fleetv1.ApplicationInstance {
		return &fleetv1.ApplicationInstance{Health: h, Stale: stale}
	}
	for _, tt := range []struct {
		db   string
		is   []*fleetv1.ApplicationInstance
		want string
	}{
		{"", nil, database.HealthUnknown},
		{"passing", nil, "passing"},
		{"passing", []*fleetv1.ApplicationInstance{inst("warning", false)}, "warning"},
		{"critical", []*fleetv1.ApplicationInstance{inst("warning", false)}, "critical"},
		{"passing", []*fleetv1.ApplicationInstance{inst("critical", true), inst("passing", false)}, "passing"},
		{"passing", []*fleetv1.ApplicationInstance{inst("unknown", false), inst("critical", false)}, "unknown"},
	} {
		s := &fleetv1.SapSystem{DatabaseHealth: tt.db, ApplicationInstances: tt.is}
		if got := health(s); got != tt.want {
			t.Errorf("health(%v) = %s, want %s", s, got, tt.want)
		}
	}
}

// A registered system that loses its last instance is deregistered and
// tombstoned in one go; a deregistered one emits only its tombstone or
// its restoration and rejects what it never takes.
func TestDeregisteredSystemAcceptsOnlyReregistration(t *testing.T) {
	s, cs := registeredFromFixture(t)
	s = step(t, s, command(&fleetv1.DeregisterApplicationInstances{HostId: fixtureAppHost}), aggregate.Accepted,
		"ApplicationInstanceDeregistered", "ApplicationInstanceDeregistered", "SapSystemDeregistered", "SapSystemTombstoned")
	if !s.GetDeregistered() || len(s.GetApplicationInstances()) != 0 || s.GetRegisteredAt() == nil || s.GetVersion() != 7 {
		t.Fatalf("tombstoned %v", s)
	}
	// Told silently, no events.
	s = step(t, s, databaseAvailableFor(cs[0], fixtureDatabaseID(t), "warning"), aggregate.Accepted)
	step(t, s, command(&fleetv1.MarkApplicationInstancesStale{HostId: fixtureAppHost, Stale: true}), aggregate.Noop)
	step(t, s, command(&fleetv1.RegisterHost{}), aggregate.Rejected, "CommandRejected")
	s = step(t, s, cs[1], aggregate.Accepted) // D01 without its ASCS: held
	s = step(t, s, command(&fleetv1.MarkApplicationInstancesStale{HostId: fixtureAppHost, Stale: true}), aggregate.Accepted)
	if s.GetDeregistered() != true || s.GetVersion() != 7 {
		t.Fatalf("deregistered %v", s)
	}
	// Its ASCS back: restored, versions continued, the state whole.
	d := decide(s, cs[0])
	if d.Outcome != aggregate.Accepted || len(d.Events) < 2 || d.Events[0].GetSapSystemRestored() == nil || d.Events[0].GetVersion() != 8 {
		t.Fatalf("restoration %v", d.Events)
	}
	last := d.Events[len(d.Events)-1].GetState().GetSapSystem()
	if last.GetDeregistered() || len(last.GetApplicationInstances()) != 2 || last.GetHealth() != "warning" {
		t.Errorf("restored %v", last)
	}

	// One instance that is both message and application server.
	o := step(t, nil, instance("h1", "00", "MESSAGESERVER|ABAP", "passing"), aggregate.Accepted)
	o = step(t, o, dbAvailable("passing"), aggregate.Accepted, "SapSystemRegistered", "ApplicationInstanceRegistered")
	o = step(t, o, command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h1", InstanceNumber: "00"}), aggregate.Accepted,
		"ApplicationInstanceMarkedAbsent", "SapSystemDeregistered", "SapSystemTombstoned")
	step(t, o, command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h1", InstanceNumber: "00"}), aggregate.Noop)
	step(t, o, instance("h1", "00", "MESSAGESERVER|ABAP", "passing"), aggregate.Accepted, "SapSystemRestored", "ApplicationInstanceRegistered")
}

// A pending system forgets an absent instance silently.
func TestPendingSystemInstancesLeaveSilently(t *testing.T) {
	s := step(t, nil, instance("h1", "01", dialog, "passing"), aggregate.Accepted)
	s = step(t, s, command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h1", InstanceNumber: "01"}), aggregate.Accepted)
	if s.GetRegisteredAt() != nil || len(s.GetApplicationInstances()) != 0 {
		t.Errorf("pending %v", s)
	}
	s = step(t, s, instance("h1", "01", dialog, "passing"), aggregate.Accepted)
	s = step(t, s, command(&fleetv1.MarkApplicationInstancesStale{HostId: "h1", Stale: true}), aggregate.Accepted)
	if !s.GetApplicationInstances()[0].GetStale() {
		t.Errorf("pending instance not stale: %v", s)
	}
}

// Ids are a contract: case and space do not matter, the tenant does.
func TestIDs(t *testing.T) {
	if ID(" ha1 ", "prd") != ID("HA1", "PRD") {
		t.Error("ids are case- or space-sensitive")
	}
	if ID("HA1", "PRD") == ID("HA1", "QAS") {
		t.Error("the same SID on two tenants shares an id")
	}
}
