package sapsystem

import (
	"cmp"
	"slices"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/database"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// The reaction resolves "the database a SAP system runs on" without a
// lookup at registration time. Both sides know one name: the database
// tenant (a SAP system's profile names it, a database lists its tenants).
// Its table is keyed by that name and holds the databases with such a
// tenant and the SAP systems that run on one; each side reaches the key
// through the loop topic. When both are there the SAP system is told
// (DatabaseAvailable) which database it runs on and that database's
// health, and told again whenever either changes. A SAP system whose
// database is not known yet waits in its own state (held instances) and
// here, so whichever side comes first, it registers once the other does.
//
// Which database: among the tenant's databases (deregistered ones only
// when no other has the tenant), the one whose hosts have the system's
// database address, else the only one. Two databases with the same tenant
// name and no address match leave the system waiting rather than guess.
// A tenant dropped from a database is not withdrawn from its key: the
// system keeps the database it was told about.

// loopSend is one message to the loop topic, keyed by tenant.
type loopSend struct {
	key string
	msg *fleetv1.SapDatabaseDependencyUpdate
}

// databaseUpdates are the loop messages of a database event: one per
// tenant of the database it carries. Rejections and events of other
// aggregates send none.
func databaseUpdates(e *fleetv1.Event) []loopSend {
	d := e.GetState().GetDatabase()
	if e.GetAggregateType() != database.AggregateType || e.GetCommandRejected() != nil || d.GetRegisteredAt() == nil {
		return nil
	}
	td := &fleetv1.TenantDatabase{
		Id: d.GetId(), Sid: d.GetSid(), Health: d.GetHealth(), Deregistered: d.GetDeregistered(), Version: d.GetVersion(),
	}
	for _, i := range d.GetInstances() {
		td.IpAddresses = append(td.IpAddresses, i.GetIpAddresses()...)
	}
	slices.Sort(td.IpAddresses)
	td.IpAddresses = slices.Compact(td.IpAddresses)
	var out []loopSend
	for _, t := range d.GetTenants() {
		out = append(out, loopSend{key: t, msg: &fleetv1.SapDatabaseDependencyUpdate{
			Subject: &fleetv1.SapDatabaseDependencyUpdate_Database{Database: td},
			Cause:   e.GetEventId(), At: e.GetOccurredAt(), TraceId: e.GetTraceId(),
		}})
	}
	return out
}

// sapSystemUpdates are the loop messages of a SAP system command: a
// RegisterApplicationInstance names the tenant its system runs on.
func sapSystemUpdates(c *fleetv1.Command) []loopSend {
	r := c.GetRegisterApplicationInstance()
	if r == nil || r.GetTenant() == "" {
		return nil
	}
	return []loopSend{{key: r.GetTenant(), msg: &fleetv1.SapDatabaseDependencyUpdate{
		Subject: &fleetv1.SapDatabaseDependencyUpdate_SapSystem{SapSystem: &fleetv1.TenantSapSystem{
			Id: c.GetAggregateId(), DbAddress: r.GetDbAddress(),
		}},
		Cause: c.GetCommandId(), At: c.GetIssuedAt(), TraceId: c.GetTraceId(),
	}}}
}

// applyUpdate applies a loop message to a tenant's dependencies (nil:
// none yet) and returns the new state (nil: unchanged) and the
// DatabaseAvailable commands to send.
func applyUpdate(state *fleetv1.SapDatabaseDependencies, u *fleetv1.SapDatabaseDependencyUpdate) (*fleetv1.SapDatabaseDependencies, []*fleetv1.Command) {
	next := new(fleetv1.SapDatabaseDependencies)
	if state != nil {
		next = proto.CloneOf(state)
	}
	switch s := u.GetSubject().(type) {
	case *fleetv1.SapDatabaseDependencyUpdate_Database:
		d := s.Database
		i := slices.IndexFunc(next.Databases, func(x *fleetv1.TenantDatabase) bool { return x.GetId() == d.GetId() })
		switch {
		case i < 0:
			next.Databases = append(next.Databases, proto.CloneOf(d))
			slices.SortFunc(next.Databases, func(a, b *fleetv1.TenantDatabase) int { return cmp.Compare(a.GetId(), b.GetId()) })
		case next.Databases[i].GetVersion() < d.GetVersion():
			next.Databases[i] = proto.CloneOf(d)
		}
	case *fleetv1.SapDatabaseDependencyUpdate_SapSystem:
		sys := s.SapSystem
		i := slices.IndexFunc(next.SapSystems, func(x *fleetv1.TenantSapSystem) bool { return x.GetId() == sys.GetId() })
		if i < 0 {
			next.SapSystems = append(next.SapSystems, &fleetv1.TenantSapSystem{Id: sys.GetId(), DbAddress: sys.GetDbAddress()})
			slices.SortFunc(next.SapSystems, func(a, b *fleetv1.TenantSapSystem) int { return cmp.Compare(a.GetId(), b.GetId()) })
		} else {
			next.SapSystems[i].DbAddress = sys.GetDbAddress()
		}
	}
	var commands []*fleetv1.Command
	for _, sys := range next.SapSystems {
		db := resolve(next.Databases, sys.GetDbAddress())
		if db == nil || (db.GetId() == sys.GetToldDatabaseId() && db.GetHealth() == sys.GetToldHealth()) {
			continue
		}
		sys.ToldDatabaseId, sys.ToldHealth = db.GetId(), db.GetHealth()
		commands = append(commands, &fleetv1.Command{
			CommandId:   reactionCommandID(u.GetCause(), sys.GetId()),
			AggregateId: sys.GetId(),
			IssuedAt:    u.GetAt(),
			TraceId:     u.GetTraceId(),
			Body: &fleetv1.Command_DatabaseAvailable{DatabaseAvailable: &fleetv1.DatabaseAvailable{
				DatabaseId: db.GetId(), Sid: db.GetSid(), Health: db.GetHealth(),
			}},
		})
	}
	if proto.Equal(next, state) {
		return nil, nil
	}
	return next, commands
}

// resolve picks the database a system with database address addr runs
// on among a tenant's databases; nil when none or ambiguous.
func resolve(dbs []*fleetv1.TenantDatabase, addr string) *fleetv1.TenantDatabase {
	live := slices.DeleteFunc(slices.Clone(dbs), func(d *fleetv1.TenantDatabase) bool { return d.GetDeregistered() })
	if len(live) == 0 {
		live = dbs
	}
	for _, d := range live {
		if addr != "" && slices.Contains(d.GetIpAddresses(), addr) {
			return d
		}
	}
	if len(live) == 1 {
		return live[0]
	}
	return nil
}

// commandNamespace is the UUIDv5 namespace of command ids, as scenario
// detection's: UUIDv5(URL namespace, "urn:fleetstream:command").
var commandNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:command"))

// reactionCommandID is UUIDv5 of "sap_system.databases/<cause>/<SAP system
// id>": reprocessing the same cause yields the same ids.
func reactionCommandID(cause, sapSystemID string) string {
	return uuid.NewSHA1(commandNamespace, []byte("sap_system.databases/"+cause+"/"+sapSystemID)).String()
}
