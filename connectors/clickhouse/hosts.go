package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/encoding/protojson"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// HostFilter selects hosts; empty fields select everything. Matching is
// case-insensitive (ASCII) because operators type host and OS names in
// whatever case they remember.
type HostFilter struct {
	// HostnamePrefix matches the start of the hostname. Every character
	// is literal: '%' and '_' are not wildcards.
	HostnamePrefix string
	// OS matches the OS name, the OS version, or both as "name version",
	// exactly: "SLES", "15-SP5" and "SLES 15-SP5" all find a SLES 15-SP5
	// host; "15" does not. Runs of spaces count as one.
	OS string
	// Health is one of unknown, passing, warning, critical.
	Health string
	// Tags must all be set on the host, exactly.
	Tags []string
	// Provider is the platform the host runs on: aws, azure, gcp, kvm,
	// nutanix, vmware or unknown.
	Provider string
	// IncludeDeregistered lists deregistered hosts too.
	IncludeDeregistered bool
}

// stateJSON reads the state columns, written by the sink with the fields
// this build knows; a newer writer's extra fields are ignored.
var stateJSON = protojson.UnmarshalOptions{DiscardUnknown: true}

// ListHosts returns up to pageSize hosts with an id greater than after,
// ordered by id, and the id to pass as after for the next page ("" on the
// last page). Keyset pagination: a page is stable while hosts change.
func ListHosts(ctx context.Context, conn driver.Conn, db string, f HostFilter, pageSize int, after string) ([]*fleetv1.Host, string, error) {
	if pageSize <= 0 {
		return nil, "", errors.New("list hosts: page size must be positive")
	}
	hosts, err := table(db, "hosts")
	if err != nil {
		return nil, "", fmt.Errorf("list hosts: %w", err)
	}
	// FINAL collapses each host to its newest version before WHERE sees it,
	// so a host that was critical once but is passing now is not listed as
	// critical. (PREWHERE would filter before collapsing: never use it here.)
	q := strings.Builder{}
	q.WriteString("SELECT id, state FROM " + hosts + " FINAL WHERE id > ?")
	args := []any{after}
	if f.HostnamePrefix != "" {
		// startsWith compares bytes: no pattern characters to escape.
		q.WriteString(" AND startsWith(lower(hostname), lower(?))")
		args = append(args, f.HostnamePrefix)
	}
	if osName := strings.Join(strings.Fields(f.OS), " "); osName != "" {
		q.WriteString(" AND (lower(os_name) = lower(?) OR lower(os_version) = lower(?) OR lower(concat(os_name, ' ', os_version)) = lower(?))")
		args = append(args, osName, osName, osName)
	}
	if f.Health != "" {
		q.WriteString(" AND health = ?")
		args = append(args, f.Health)
	}
	if f.Provider != "" {
		q.WriteString(" AND provider = ?")
		args = append(args, f.Provider)
	}
	if !f.IncludeDeregistered {
		q.WriteString(" AND deregistered = 0")
	}
	tagArgs, err := tagClause(&q, db, EntityHost, f.Tags)
	if err != nil {
		return nil, "", fmt.Errorf("list hosts: %w", err)
	}
	args = append(args, tagArgs...)
	q.WriteString(" ORDER BY id LIMIT ?")
	args = append(args, pageSize+1)

	rows, err := conn.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list hosts: %w", err)
	}
	defer rows.Close()
	var out []*fleetv1.Host
	var ids []string
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return nil, "", fmt.Errorf("list hosts: %w", err)
		}
		h := &fleetv1.Host{}
		if err := stateJSON.Unmarshal([]byte(state), h); err != nil {
			return nil, "", fmt.Errorf("list hosts: state of host %s: %w", id, err)
		}
		out = append(out, h)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list hosts: %w", err)
	}
	if len(out) <= pageSize {
		return out, "", nil
	}
	return out[:pageSize], ids[pageSize-1], nil
}
