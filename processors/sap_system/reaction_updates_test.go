package sapsystem

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/database"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// databaseEvent is an event of the database aggregate carrying db.
func databaseEvent(id string, db *fleetv1.Database) *fleetv1.Event {
	return &fleetv1.Event{
		EventId: id, AggregateType: database.AggregateType, AggregateId: db.GetId(), Version: db.GetVersion(),
		OccurredAt: timestamppb.New(t0), TraceId: "trace-" + id,
		Payload: &fleetv1.Event_DatabaseHealthChanged{DatabaseHealthChanged: &fleetv1.DatabaseHealthChanged{Health: db.GetHealth()}},
		State:   &fleetv1.AggregateState{State: &fleetv1.AggregateState_Database{Database: db}},
	}
}

func prdDatabase(version uint64, health string) *fleetv1.Database {
	return &fleetv1.Database{
		Id: "db-prd", Sid: "PRD", Tenants: []string{"PRD", "S4T"}, Health: health, Version: version,
		RegisteredAt: timestamppb.New(t0),
		Instances: []*fleetv1.DatabaseInstance{
			{HostId: "h1", InstanceNumber: "00", IpAddresses: []string{"10.0.1.11", "10.0.1.10"}},
			{HostId: "h2", InstanceNumber: "00", IpAddresses: []string{"10.0.1.10"}},
		},
	}
}

// A database event reaches every tenant of the database, with its
// addresses; rejections, pending databases and other aggregates' events
// reach none.
func TestDatabaseUpdatesFanOutByTenant(t *testing.T) {
	sends := databaseUpdates(databaseEvent("e1", prdDatabase(4, "warning")))
	var keys []string
	for _, s := range sends {
		keys = append(keys, s.key)
		d := s.msg.GetDatabase()
		if d.GetId() != "db-prd" || d.GetHealth() != "warning" || d.GetVersion() != 4 || !slices.Equal(d.GetIpAddresses(), []string{"10.0.1.10", "10.0.1.11"}) {
			t.Errorf("%s: database %v", s.key, d)
		}
		if s.msg.GetCause() != "e1" || s.msg.GetTraceId() != "trace-e1" || !s.msg.GetAt().AsTime().Equal(t0) {
			t.Errorf("%s: envelope %v", s.key, s.msg)
		}
	}
	if !slices.Equal(keys, []string{"PRD", "S4T"}) {
		t.Errorf("keys %v", keys)
	}

	rejected := databaseEvent("e2", prdDatabase(4, "warning"))
	rejected.Payload = &fleetv1.Event_CommandRejected{CommandRejected: &fleetv1.CommandRejected{Command: "x", Reason: "y"}}
	pending := prdDatabase(0, "")
	pending.RegisteredAt = nil
	other := databaseEvent("e4", prdDatabase(4, "warning"))
	other.AggregateType = AggregateType
	for name, e := range map[string]*fleetv1.Event{"rejection": rejected, "pending": databaseEvent("e3", pending), "sap_system": other, "empty": {}} {
		if got := databaseUpdates(e); len(got) != 0 {
			t.Errorf("%s: sends %v", name, got)
		}
	}
}

// A RegisterApplicationInstance names the tenant its system runs on;
// other commands, and a registration without a tenant, name none.
func TestSapSystemUpdatesFollowRegistrations(t *testing.T) {
	c := instance("h1", "00", dialog, "passing")
	sends := sapSystemUpdates(c)
	if len(sends) != 1 || sends[0].key != "PRD" {
		t.Fatalf("sends %v", sends)
	}
	if s := sends[0].msg.GetSapSystem(); s.GetId() != sysID || s.GetDbAddress() != "10.80.1.11" || sends[0].msg.GetCause() != c.GetCommandId() {
		t.Errorf("update %v", sends[0].msg)
	}
	noTenant := command(&fleetv1.RegisterApplicationInstance{Sid: "HA1", HostId: "h1", InstanceNumber: "00"})
	for _, c := range []*fleetv1.Command{noTenant, dbAvailable("passing"), command(&fleetv1.MarkApplicationInstanceAbsent{HostId: "h1", InstanceNumber: "00"})} {
		if got := sapSystemUpdates(c); len(got) != 0 {
			t.Errorf("%v: sends %v", c, got)
		}
	}
}

// The commands the reaction sends: ids from the cause and the system
// (reprocessing yields the same), time and trace of the cause.
func TestReactionCommands(t *testing.T) {
	u := dbUpdate("db-prd", "passing", 1)
	u.At, u.TraceId = timestamppb.New(t0), "trace-db"
	state := apply(t, nil, sysUpdate("ha1", ""))
	_, first := applyUpdate(state, u)
	_, again := applyUpdate(state, u)
	if len(first) != 1 || first[0].GetCommandId() != again[0].GetCommandId() || first[0].GetCommandId() != reactionCommandID(u.GetCause(), "ha1") {
		t.Fatalf("commands %v, %v", first, again)
	}
	c := first[0]
	if c.GetAggregateId() != "ha1" || !c.GetIssuedAt().AsTime().Equal(t0) || c.GetTraceId() != "trace-db" || c.GetDatabaseAvailable().GetSid() != "PRD" {
		t.Errorf("command %v", c)
	}
	if reactionCommandID("e1", "ha1") == reactionCommandID("e1", "ha2") || reactionCommandID("e1", "ha1") == reactionCommandID("e2", "ha1") {
		t.Error("command ids collide")
	}
}

// A deregistered database is a candidate only when no other database has
// the tenant; a system whose profile names a new address is told the
// database there.
func TestTheReactionPrefersLiveDatabasesAndFollowsTheAddress(t *testing.T) {
	gone := dbUpdate("db-old", "critical", 7, "10.0.0.1")
	gone.GetDatabase().Deregistered = true
	s := apply(t, nil, gone)
	s = apply(t, s, sysUpdate("ha1", "10.0.0.1"), "ha1->db-old critical")
	s = apply(t, s, dbUpdate("db-new", "passing", 1, "10.0.0.2"), "ha1->db-new passing")
	s = apply(t, s, dbUpdate("db-other", "warning", 1, "10.0.0.3"))
	s = apply(t, s, sysUpdate("ha1", "10.0.0.3"), "ha1->db-other warning")
	if len(s.GetSapSystems()) != 1 || s.GetSapSystems()[0].GetToldDatabaseId() != "db-other" || len(s.GetDatabases()) != 3 {
		t.Errorf("state %v", s)
	}
	// Two systems on the tenant are told each.
	apply(t, s, sysUpdate("ha2", "10.0.0.2"), "ha2->db-new passing")
}
