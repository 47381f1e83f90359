package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Tags are plain CRUD, written straight into the tags table by the API (not
// event sourced). Each write carries the writer's clock in nanoseconds as
// the row version: of an add and a remove of the same tag, the later wins.
// The caller validates entity types and values.

const tagsInsert = "INSERT INTO %s (entity_type, entity_id, value, deleted, version, updated_at)"

// AddTag sets tag value on an entity; setting it again changes nothing.
func AddTag(ctx context.Context, conn driver.Conn, db, entityType, entityID, value string) error {
	if err := writeTag(ctx, conn, db, entityType, entityID, value, false); err != nil {
		return fmt.Errorf("add tag %q to %s %s: %w", value, entityType, entityID, err)
	}
	return nil
}

// RemoveTag removes tag value from an entity; removing a tag that is not
// set changes nothing.
func RemoveTag(ctx context.Context, conn driver.Conn, db, entityType, entityID, value string) error {
	if err := writeTag(ctx, conn, db, entityType, entityID, value, true); err != nil {
		return fmt.Errorf("remove tag %q from %s %s: %w", value, entityType, entityID, err)
	}
	return nil
}

func writeTag(ctx context.Context, conn driver.Conn, db, entityType, entityID, value string, deleted bool) error {
	tbl, err := table(db, "tags")
	if err != nil {
		return err
	}
	var del uint8
	if deleted {
		del = 1
	}
	now := time.Now()
	return insert(ctx, conn, fmt.Sprintf(tagsInsert, tbl), []any{
		[]string{entityType}, []string{entityID}, []string{value}, []uint8{del}, []uint64{uint64(now.UnixNano())},
		[]time.Time{now.UTC().Truncate(time.Second)},
	})
}

// TagsOf returns the tags set on each of ids that has any, sorted.
func TagsOf(ctx context.Context, conn driver.Conn, db, entityType string, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(ids) == 0 {
		return out, nil
	}
	tbl, err := table(db, "tags")
	if err != nil {
		return nil, fmt.Errorf("tags of %d %s: %w", len(ids), entityType, err)
	}
	// The WHERE clause is a prefix of the sorting key.
	rows, err := conn.Query(ctx, "SELECT entity_id, value FROM "+tbl+" FINAL"+
		" WHERE entity_type = ? AND has(?, entity_id) AND deleted = 0 ORDER BY entity_id, value", entityType, ids)
	if err != nil {
		return nil, fmt.Errorf("tags of %d %s: %w", len(ids), entityType, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, value string
		if err := rows.Scan(&id, &value); err != nil {
			return nil, fmt.Errorf("tags of %d %s: %w", len(ids), entityType, err)
		}
		out[id] = append(out[id], value)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tags of %d %s: %w", len(ids), entityType, err)
	}
	return out, nil
}

// tagClause appends to a query over an entity table (its key column is id)
// the condition that every one of tags is set, and returns its arguments.
func tagClause(q *strings.Builder, db, entityType string, tags []string) ([]any, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	tbl, err := table(db, "tags")
	if err != nil {
		return nil, err
	}
	var args []any
	for _, tag := range tags {
		// FINAL inside: a tag removed since is judged by its newest row.
		q.WriteString(" AND id IN (SELECT entity_id FROM " + tbl + " FINAL WHERE entity_type = ? AND value = ? AND deleted = 0)")
		args = append(args, entityType, tag)
	}
	return args, nil
}
