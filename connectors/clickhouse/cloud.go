package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// CloudResourceFilter selects cloud resources; empty fields select
// everything. Matching is exact: provider, account, region and kind are
// identifiers, not names people type.
type CloudResourceFilter struct {
	Provider, Account, Region, Kind string
	// Tags are "key=value" (that value) or "key" (any value); every one
	// must match.
	Tags []string
	// IncludeDeleted lists tombstones too.
	IncludeDeleted bool
}

// ListCloudResources returns up to pageSize resources with a key greater
// than after, ordered by key, and the key to pass as after for the next page
// ("" on the last page).
func ListCloudResources(ctx context.Context, conn driver.Conn, db string, f CloudResourceFilter, pageSize int, after string) ([]*fleetv1.CloudResource, string, error) {
	if pageSize <= 0 {
		return nil, "", errors.New("list cloud resources: page size must be positive")
	}
	tbl, err := table(db, "cloud_resources")
	if err != nil {
		return nil, "", fmt.Errorf("list cloud resources: %w", err)
	}
	// FINAL before WHERE: a resource deleted since is judged by its newest
	// row (never PREWHERE, which filters before collapsing).
	q := strings.Builder{}
	q.WriteString("SELECT id, state FROM " + tbl + " FINAL WHERE id > ?")
	args := []any{after}
	for _, c := range []struct{ column, value string }{
		{"provider", f.Provider}, {"account", f.Account}, {"region", f.Region}, {"kind", f.Kind},
	} {
		if c.value != "" {
			q.WriteString(" AND " + c.column + " = ?")
			args = append(args, c.value)
		}
	}
	for _, tag := range f.Tags {
		if strings.Contains(tag, "=") {
			q.WriteString(" AND has(tags, ?)")
			args = append(args, tag)
		} else {
			q.WriteString(" AND arrayExists(t -> startsWith(t, ?), tags)")
			args = append(args, tag+"=")
		}
	}
	if !f.IncludeDeleted {
		q.WriteString(" AND deleted = 0")
	}
	q.WriteString(" ORDER BY id LIMIT ?")
	args = append(args, pageSize+1)

	rows, err := conn.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list cloud resources: %w", err)
	}
	defer rows.Close()
	var out []*fleetv1.CloudResource
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return nil, "", fmt.Errorf("list cloud resources: %w", err)
		}
		r := &fleetv1.CloudResource{}
		if err := stateJSON.Unmarshal([]byte(state), r); err != nil {
			return nil, "", fmt.Errorf("list cloud resources: state of %s: %w", id, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list cloud resources: %w", err)
	}
	if len(out) <= pageSize {
		return out, "", nil
	}
	return out[:pageSize], out[pageSize-1].GetId(), nil
}

// ResourceSummary is what a graph shows of a resource node.
type ResourceSummary struct {
	Kind, Name string
	Deleted    bool
}

// ResourceSummaries returns the summary of each of ids that is a known
// resource.
func ResourceSummaries(ctx context.Context, conn driver.Conn, db string, ids []string) (map[string]ResourceSummary, error) {
	out := map[string]ResourceSummary{}
	if len(ids) == 0 {
		return out, nil
	}
	tbl, err := table(db, "cloud_resources")
	if err != nil {
		return nil, fmt.Errorf("resource summaries: %w", err)
	}
	rows, err := conn.Query(ctx, "SELECT id, kind, name, deleted FROM "+tbl+" FINAL WHERE has(?, id)", ids)
	if err != nil {
		return nil, fmt.Errorf("resource summaries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var s ResourceSummary
		var deleted uint8
		if err := rows.Scan(&id, &s.Kind, &s.Name, &deleted); err != nil {
			return nil, fmt.Errorf("resource summaries: %w", err)
		}
		s.Deleted = deleted == 1
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("resource summaries: %w", err)
	}
	return out, nil
}

// LinkCursor is the position after a link in a listing, in the links
// table's order.
type LinkCursor struct {
	From, Relation, ToType, To string
}

const linkColumnList = "from_type, from_id, from_kind, relation, to_type, to_id, to_kind, active, reason, version, updated_at"

// ListLinks returns up to pageSize links from or to the entity id, ordered
// by (from, relation, to), starting after after (nil: from the first), and
// where the next page starts (nil on the last page). Links that ended are
// listed only with includeInactive.
func ListLinks(ctx context.Context, conn driver.Conn, db, id string, includeInactive bool, pageSize int, after *LinkCursor) ([]*fleetv1.Link, *LinkCursor, error) {
	if pageSize <= 0 {
		return nil, nil, errors.New("list links: page size must be positive")
	}
	tbl, err := table(db, "links")
	if err != nil {
		return nil, nil, fmt.Errorf("list links: %w", err)
	}
	q := "SELECT " + linkColumnList + " FROM " + tbl + " FINAL WHERE (from_id = ? OR to_id = ?)"
	args := []any{id, id}
	if !includeInactive {
		q += " AND active = 1"
	}
	if after != nil {
		// Spelt out: tuple comparison is not in every ClickHouse this runs on.
		q += " AND (from_id > ? OR (from_id = ? AND (relation > ? OR (relation = ? AND (to_type > ? OR (to_type = ? AND to_id > ?))))))"
		args = append(args, after.From, after.From, after.Relation, after.Relation, after.ToType, after.ToType, after.To)
	}
	q += " ORDER BY from_id, relation, to_type, to_id LIMIT ?"
	args = append(args, pageSize+1)
	links, err := queryLinks(ctx, conn, q, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("list links of %s: %w", id, err)
	}
	if len(links) <= pageSize {
		return links, nil, nil
	}
	links = links[:pageSize]
	last := links[pageSize-1]
	return links, &LinkCursor{From: last.GetFrom().GetId(), Relation: last.GetRelation(), ToType: last.GetTo().GetType(), To: last.GetTo().GetId()}, nil
}

// ActiveLinks returns the active links from or to any of ids, at most
// limit of them, in the links table's order.
func ActiveLinks(ctx context.Context, conn driver.Conn, db string, ids []string, limit int) ([]*fleetv1.Link, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	tbl, err := table(db, "links")
	if err != nil {
		return nil, fmt.Errorf("active links: %w", err)
	}
	links, err := queryLinks(ctx, conn, "SELECT "+linkColumnList+" FROM "+tbl+" FINAL"+
		" WHERE active = 1 AND (has(?, from_id) OR has(?, to_id))"+
		" ORDER BY from_id, relation, to_type, to_id LIMIT ?", ids, ids, limit)
	if err != nil {
		return nil, fmt.Errorf("active links of %d entities: %w", len(ids), err)
	}
	return links, nil
}

func queryLinks(ctx context.Context, conn driver.Conn, q string, args ...any) ([]*fleetv1.Link, error) {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*fleetv1.Link
	for rows.Next() {
		from, to := &fleetv1.EntityRef{}, &fleetv1.EntityRef{}
		l := &fleetv1.Link{From: from, To: to}
		var active uint8
		var updated time.Time
		if err := rows.Scan(&from.Type, &from.Id, &from.Kind, &l.Relation, &to.Type, &to.Id, &to.Kind, &active, &l.Reason, &l.Version, &updated); err != nil {
			return nil, err
		}
		l.Active = active == 1
		l.UpdatedAt = timestamppb.New(updated.UTC())
		out = append(out, l)
	}
	return out, rows.Err()
}
