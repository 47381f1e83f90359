package sapsystem

import (
	"slices"
	"testing"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func dbUpdate(id, health string, version uint64, ips ...string) *fleetv1.SapDatabaseDependencyUpdate {
	return &fleetv1.SapDatabaseDependencyUpdate{Cause: "db-" + id + health, Subject: &fleetv1.SapDatabaseDependencyUpdate_Database{Database: &fleetv1.TenantDatabase{
		Id: id, Sid: "PRD", Health: health, Version: version, IpAddresses: ips,
	}}}
}

func sysUpdate(id, addr string) *fleetv1.SapDatabaseDependencyUpdate {
	return &fleetv1.SapDatabaseDependencyUpdate{Cause: "sys-" + id, Subject: &fleetv1.SapDatabaseDependencyUpdate_SapSystem{SapSystem: &fleetv1.TenantSapSystem{
		Id: id, DbAddress: addr,
	}}}
}

// told returns the DatabaseAvailable commands as "system->database health".
func told(cmds []*fleetv1.Command) []string {
	var out []string
	for _, c := range cmds {
		d := c.GetDatabaseAvailable()
		out = append(out, c.GetAggregateId()+"->"+d.GetDatabaseId()+" "+d.GetHealth())
	}
	return out
}

func apply(t *testing.T, state *fleetv1.SapDatabaseDependencies, u *fleetv1.SapDatabaseDependencyUpdate, want ...string) *fleetv1.SapDatabaseDependencies {
	t.Helper()
	next, cmds := applyUpdate(state, u)
	if got := told(cmds); !slices.Equal(got, want) {
		t.Fatalf("told %v, want %v", got, want)
	}
	if next == nil {
		return state
	}
	return next
}

// Whichever side comes first, the SAP system is told its database once
// both are known, again when the database's health changes, and never
// twice the same.
func TestTheReactionTellsASystemItsDatabase(t *testing.T) {
	// The application server before its database.
	s := apply(t, nil, sysUpdate("ha1", "10.80.1.11"))
	s = apply(t, s, dbUpdate("db-prd", "passing", 3, "10.80.1.11"), "ha1->db-prd passing")
	s = apply(t, s, dbUpdate("db-prd", "passing", 4, "10.80.1.11"))
	s = apply(t, s, dbUpdate("db-prd", "critical", 5, "10.80.1.11"), "ha1->db-prd critical")
	// A late, older database event changes nothing.
	s = apply(t, s, dbUpdate("db-prd", "passing", 2, "10.80.1.11"))
	if next, _ := applyUpdate(s, sysUpdate("ha1", "10.80.1.11")); next != nil {
		t.Errorf("a repeated system update wrote %v", next)
	}

	// The database before the application server.
	d := apply(t, nil, dbUpdate("db-prd", "passing", 3))
	apply(t, d, sysUpdate("ha1", ""), "ha1->db-prd passing")
}

// Two databases share a tenant name: the one with the system's database
// address wins; without a match the system waits rather than guess.
func TestTheReactionPicksTheDatabaseByAddress(t *testing.T) {
	s := apply(t, nil, dbUpdate("db-a", "passing", 1, "10.0.0.1"))
	s = apply(t, s, dbUpdate("db-b", "warning", 1, "10.0.0.2"))
	apply(t, s, sysUpdate("ha1", "10.0.0.2"), "ha1->db-b warning")
	apply(t, s, sysUpdate("ha1", "10.9.9.9"))
}
