package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// EventRow is one event of an aggregate's history.
type EventRow struct {
	EventID       string
	AggregateType string
	AggregateID   string
	Version       uint64
	// EventType is the payload's message name, e.g. "HostRegistered".
	EventType string
	// OccurredAt has whole seconds (a DateTime column), in UTC.
	OccurredAt time.Time
	TraceID    string
	CommandID  string
	// Payload is the payload message as protojson with proto field names.
	Payload string
}

// EventCursor is the position after an event in an aggregate's history.
// Events are ordered by version, then event id: a rejection keeps the
// aggregate's version, so several events can share one.
type EventCursor struct {
	Version uint64
	EventID string
}

// ListEvents returns up to pageSize events of one aggregate, oldest first,
// each once however often it was delivered, starting after after (nil: from
// the first event). next is where the following page starts, nil on the
// last page.
func ListEvents(ctx context.Context, conn driver.Conn, db, aggregateType, aggregateID string, pageSize int, after *EventCursor) (events []EventRow, next *EventCursor, err error) {
	if pageSize <= 0 {
		return nil, nil, errors.New("list events: page size must be positive")
	}
	tbl, err := table(db, "events")
	if err != nil {
		return nil, nil, fmt.Errorf("list events: %w", err)
	}
	var from EventCursor
	if after != nil {
		from = *after
	}
	// The WHERE clause is a prefix of the sorting key, so the primary index
	// narrows FINAL to this aggregate's rows.
	rows, err := conn.Query(ctx, "SELECT event_id, aggregate_type, aggregate_id, version, event_type, occurred_at, trace_id, command_id, payload"+
		" FROM "+tbl+" FINAL"+
		" WHERE aggregate_type = ? AND aggregate_id = ? AND (version > ? OR (version = ? AND event_id > ?))"+
		" ORDER BY version, event_id LIMIT ?",
		aggregateType, aggregateID, from.Version, from.Version, from.EventID, pageSize+1)
	if err != nil {
		return nil, nil, fmt.Errorf("list events of %s %s: %w", aggregateType, aggregateID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e EventRow
		if err := rows.Scan(&e.EventID, &e.AggregateType, &e.AggregateID, &e.Version, &e.EventType, &e.OccurredAt, &e.TraceID, &e.CommandID, &e.Payload); err != nil {
			return nil, nil, fmt.Errorf("list events of %s %s: %w", aggregateType, aggregateID, err)
		}
		e.OccurredAt = e.OccurredAt.UTC()
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list events of %s %s: %w", aggregateType, aggregateID, err)
	}
	if len(events) <= pageSize {
		return events, nil, nil
	}
	events = events[:pageSize]
	last := events[pageSize-1]
	return events, &EventCursor{Version: last.Version, EventID: last.EventID}, nil
}

// CountEvents returns how many distinct events one aggregate has.
func CountEvents(ctx context.Context, conn driver.Conn, db, aggregateType, aggregateID string) (uint64, error) {
	tbl, err := table(db, "events")
	if err != nil {
		return 0, fmt.Errorf("count events: %w", err)
	}
	var n uint64
	err = conn.QueryRow(ctx, "SELECT count() FROM "+tbl+" FINAL WHERE aggregate_type = ? AND aggregate_id = ?",
		aggregateType, aggregateID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count events of %s %s: %w", aggregateType, aggregateID, err)
	}
	return n, nil
}
