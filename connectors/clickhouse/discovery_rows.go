package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Tables of the discovery domain's current state.
const (
	tableClusters   = "clusters"
	tableSapSystems = "sap_systems"
	tableDatabases  = "databases"
)

// entityTables lists them in the order the sink writes them.
var entityTables = []string{tableClusters, tableSapSystems, tableDatabases}

// entityInserts are the INSERTs of entityTables, in the column order of
// entityValues.
var entityInserts = map[string]string{
	tableClusters: "INSERT INTO %s (id, name, type, health, provider, sids, host_ids, deregistered, registered_at, updated_at, " +
		"version, state)",
	tableSapSystems: "INSERT INTO %s (id, sid, type, health, database_id, host_ids, deregistered, registered_at, updated_at, " +
		"version, state)",
	tableDatabases: "INSERT INTO %s (id, sid, health, host_ids, deregistered, registered_at, updated_at, version, state)",
}

// entityRow is a cluster, SAP system or database after an event: one row
// of its table. Fields a table lacks stay empty.
type entityRow struct {
	table                   string
	id, name, sid, kind     string
	health, databaseID      string
	provider                string
	sids, hostIDs           []string
	deregistered            bool
	registeredAt, updatedAt *timestamppb.Timestamp
	version                 uint64
	state                   string // protojson of the entity
}

// entityKey is a row's identity across the entity tables.
type entityKey struct{ table, id string }

// entityOf returns the row an event's state writes, nil when the state is
// not a cluster, SAP system or database. entity is the state's JSON.
func entityOf(ev *fleetv1.Event, entity string) (*entityRow, error) {
	var r *entityRow
	switch st := ev.GetState(); {
	case st.GetCluster() != nil:
		c := st.GetCluster()
		hosts := make([]string, 0, len(c.GetHosts()))
		for _, h := range c.GetHosts() {
			hosts = append(hosts, h.GetHostId())
		}
		sids := slices.Concat(c.GetDetails().GetHanaSids(), c.GetDetails().GetSapInstanceSids())
		slices.Sort(sids)
		r = &entityRow{table: tableClusters, id: c.GetId(), name: c.GetName(), kind: c.GetType(), health: c.GetHealth(),
			provider: c.GetDetails().GetProvider(), sids: slices.Compact(sids), hostIDs: hosts, deregistered: c.GetDeregistered(), registeredAt: c.GetRegisteredAt(), updatedAt: c.GetUpdatedAt(),
			version: c.GetVersion()}
	case st.GetSapSystem() != nil:
		s := st.GetSapSystem()
		hosts := make([]string, 0, len(s.GetApplicationInstances()))
		for _, in := range s.GetApplicationInstances() {
			hosts = append(hosts, in.GetHostId())
		}
		r = &entityRow{table: tableSapSystems, id: s.GetId(), sid: s.GetSid(), kind: s.GetType(), health: s.GetHealth(),
			databaseID: s.GetDatabaseId(), hostIDs: hosts, deregistered: s.GetDeregistered(),
			registeredAt: s.GetRegisteredAt(), updatedAt: s.GetUpdatedAt(), version: s.GetVersion()}
	case st.GetDatabase() != nil:
		d := st.GetDatabase()
		hosts := make([]string, 0, len(d.GetInstances()))
		for _, in := range d.GetInstances() {
			hosts = append(hosts, in.GetHostId())
		}
		r = &entityRow{table: tableDatabases, id: d.GetId(), sid: d.GetSid(), health: d.GetHealth(), hostIDs: hosts,
			deregistered: d.GetDeregistered(), registeredAt: d.GetRegisteredAt(), updatedAt: d.GetUpdatedAt(), version: d.GetVersion()}
	default:
		return nil, nil
	}
	if r.id == "" {
		return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s carries a %s state without id", ev.GetEventId(), r.table)}
	}
	// Several instances of one system can share a host.
	slices.Sort(r.hostIDs)
	r.hostIDs = slices.Compact(r.hostIDs)
	r.state = entity
	return r, nil
}

// entityValues are rows of one entity table, column by column, in the
// order of its INSERT.
func entityValues(table string, rows []*entityRow) []any {
	n := len(rows)
	id, name, sid, kind := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	health, databaseID, provider, state := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	sids, hosts := make([][]string, n), make([][]string, n)
	deregistered := make([]uint8, n)
	registeredAt, updatedAt := make([]time.Time, n), make([]time.Time, n)
	version := make([]uint64, n)
	for i, r := range rows {
		id[i], name[i], sid[i], kind[i] = r.id, r.name, r.sid, r.kind
		health[i], databaseID[i], provider[i], state[i] = r.health, r.databaseID, r.provider, r.state
		sids[i], hosts[i] = nonNil(r.sids), nonNil(r.hostIDs)
		if r.deregistered {
			deregistered[i] = 1
		}
		registeredAt[i], updatedAt[i] = dateTime(r.registeredAt), dateTime(r.updatedAt)
		version[i] = r.version
	}
	switch table {
	case tableClusters:
		return []any{id, name, kind, health, provider, sids, hosts, deregistered, registeredAt, updatedAt, version, state}
	case tableSapSystems:
		return []any{id, sid, kind, health, databaseID, hosts, deregistered, registeredAt, updatedAt, version, state}
	default:
		return []any{id, sid, health, hosts, deregistered, registeredAt, updatedAt, version, state}
	}
}

// flushEntities writes the batch's cluster, SAP system and database rows,
// one insert per table, each with retries.
func (s *Sink) flushEntities(ctx context.Context, b *batch) error {
	byTable := map[string][]*entityRow{}
	for _, r := range b.entities {
		byTable[r.table] = append(byTable[r.table], r)
	}
	for _, name := range entityTables {
		rows := byTable[name]
		if len(rows) == 0 {
			continue
		}
		values := entityValues(name, rows)
		err := s.retry(ctx, name, func(ctx context.Context) error { return insert(ctx, s.conn, s.entityInserts[name], values) })
		if err != nil {
			return err
		}
		s.metrics.rows.WithLabelValues(name).Add(float64(len(rows)))
	}
	return nil
}

// nonNil returns s, or an empty slice for nil: a nil element is not an
// empty Array for the driver.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
