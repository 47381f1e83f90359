package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// DiscoveryFilter selects clusters, SAP systems or databases; empty fields
// select everything. A field the listed table lacks (a database has no
// type) is an error, not ignored.
type DiscoveryFilter struct {
	// Health is one of unknown, passing, warning, critical.
	Health string
	// Type is the cluster or SAP system type, exactly ("hana_scale_up",
	// "abap").
	Type string
	// SID is a SAP system's or database's SID, or one of the SIDs a
	// cluster runs, in any case.
	SID string
	// Provider is the infrastructure a cluster runs on (aws, azure, ...).
	Provider string
	// Tags must all be set on the entity.
	Tags []string
	// HostID selects the entities with a member or instance on that host.
	HostID string
	// DatabaseID selects the SAP systems running on that database.
	DatabaseID string
	// IncludeDeregistered lists deregistered (tombstoned) entities too.
	IncludeDeregistered bool
}

// Entity types as tags and events name them.
const (
	EntityHost      = "host"
	EntityCluster   = "cluster"
	EntitySapSystem = "sap_system"
	EntityDatabase  = "database"
)

// entityListing is what differs between the lists of the entity tables.
type entityListing struct {
	table, entityType string
	// Filter columns the table has; a cluster has sids, not sid.
	kind, sid, sids, provider, databaseID bool
}

var (
	clusterListing   = entityListing{table: tableClusters, entityType: EntityCluster, kind: true, sids: true, provider: true}
	sapSystemListing = entityListing{table: tableSapSystems, entityType: EntitySapSystem, kind: true, sid: true, databaseID: true}
	databaseListing  = entityListing{table: tableDatabases, entityType: EntityDatabase, sid: true}
)

// ListClusters returns up to pageSize clusters with an id greater than
// after, ordered by id, and the id to pass as after for the next page (""
// on the last page).
func ListClusters(ctx context.Context, conn driver.Conn, db string, f DiscoveryFilter, pageSize int, after string) ([]*fleetv1.Cluster, string, error) {
	return listEntities(ctx, conn, db, clusterListing, f, pageSize, after, func() *fleetv1.Cluster { return &fleetv1.Cluster{} })
}

// ListSapSystems is ListClusters for SAP systems.
func ListSapSystems(ctx context.Context, conn driver.Conn, db string, f DiscoveryFilter, pageSize int, after string) ([]*fleetv1.SapSystem, string, error) {
	return listEntities(ctx, conn, db, sapSystemListing, f, pageSize, after, func() *fleetv1.SapSystem { return &fleetv1.SapSystem{} })
}

// ListDatabases is ListClusters for databases.
func ListDatabases(ctx context.Context, conn driver.Conn, db string, f DiscoveryFilter, pageSize int, after string) ([]*fleetv1.Database, string, error) {
	return listEntities(ctx, conn, db, databaseListing, f, pageSize, after, func() *fleetv1.Database { return &fleetv1.Database{} })
}

// GetCluster returns the cluster with id as the read model has it (a
// deregistered one too), or nil, nil when it is unknown.
func GetCluster(ctx context.Context, conn driver.Conn, db, id string) (*fleetv1.Cluster, error) {
	return getEntity(ctx, conn, db, clusterListing, id, &fleetv1.Cluster{})
}

// GetSapSystem is GetCluster for SAP systems.
func GetSapSystem(ctx context.Context, conn driver.Conn, db, id string) (*fleetv1.SapSystem, error) {
	return getEntity(ctx, conn, db, sapSystemListing, id, &fleetv1.SapSystem{})
}

// GetDatabase is GetCluster for databases.
func GetDatabase(ctx context.Context, conn driver.Conn, db, id string) (*fleetv1.Database, error) {
	return getEntity(ctx, conn, db, databaseListing, id, &fleetv1.Database{})
}

func listEntities[T proto.Message](ctx context.Context, conn driver.Conn, db string, l entityListing, f DiscoveryFilter, pageSize int, after string, newT func() T) ([]T, string, error) {
	op := "list " + strings.ReplaceAll(l.table, "_", " ")
	if pageSize <= 0 {
		return nil, "", errors.New(op + ": page size must be positive")
	}
	switch {
	case f.Type != "" && !l.kind:
		return nil, "", fmt.Errorf("%s: %s have no type to filter on", op, l.table)
	case f.SID != "" && !l.sid && !l.sids:
		return nil, "", fmt.Errorf("%s: %s have no SID to filter on", op, l.table)
	case f.Provider != "" && !l.provider:
		return nil, "", fmt.Errorf("%s: %s have no provider to filter on", op, l.table)
	case f.DatabaseID != "" && !l.databaseID:
		return nil, "", fmt.Errorf("%s: %s have no database to filter on", op, l.table)
	}
	tbl, err := table(db, l.table)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	// FINAL collapses each entity to its newest version before WHERE sees
	// it (never PREWHERE, which filters before collapsing).
	q := strings.Builder{}
	q.WriteString("SELECT id, state FROM " + tbl + " FINAL WHERE id > ?")
	args := []any{after}
	for _, c := range []struct{ column, value string }{
		{"health", f.Health}, {"type", f.Type}, {"provider", f.Provider}, {"database_id", f.DatabaseID},
	} {
		if c.value != "" {
			q.WriteString(" AND " + c.column + " = ?")
			args = append(args, c.value)
		}
	}
	switch {
	case f.SID != "" && l.sids:
		q.WriteString(" AND has(sids, upper(?))")
		args = append(args, f.SID)
	case f.SID != "":
		q.WriteString(" AND upper(sid) = upper(?)")
		args = append(args, f.SID)
	}
	if f.HostID != "" {
		q.WriteString(" AND has(host_ids, ?)")
		args = append(args, f.HostID)
	}
	if !f.IncludeDeregistered {
		q.WriteString(" AND deregistered = 0")
	}
	tagArgs, err := tagClause(&q, db, l.entityType, f.Tags)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	args = append(args, tagArgs...)
	q.WriteString(" ORDER BY id LIMIT ?")
	args = append(args, pageSize+1)

	out, err := queryStates(ctx, conn, q.String(), args, newT)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	if len(out) <= pageSize {
		return out, "", nil
	}
	last := out[pageSize-1].ProtoReflect()
	return out[:pageSize], last.Get(last.Descriptor().Fields().ByName("id")).String(), nil
}

func getEntity[T proto.Message](ctx context.Context, conn driver.Conn, db string, l entityListing, id string, into T) (T, error) {
	var zero T
	tbl, err := table(db, l.table)
	if err != nil {
		return zero, fmt.Errorf("read %s %s: %w", l.entityType, id, err)
	}
	out, err := queryStates(ctx, conn, "SELECT id, state FROM "+tbl+" FINAL WHERE id = ?", []any{id}, func() T { return into })
	if err != nil {
		return zero, fmt.Errorf("read %s %s: %w", l.entityType, id, err)
	}
	if len(out) == 0 {
		return zero, nil
	}
	return out[0], nil
}

// queryStates runs a query selecting (id, state) and decodes each state.
func queryStates[T proto.Message](ctx context.Context, conn driver.Conn, q string, args []any, newT func() T) ([]T, error) {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return nil, err
		}
		m := newT()
		if err := stateJSON.Unmarshal([]byte(state), m); err != nil {
			return nil, fmt.Errorf("state of %s: %w", id, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
