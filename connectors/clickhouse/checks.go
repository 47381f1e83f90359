package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// ExecutionFilter selects executions; empty fields select everything.
type ExecutionFilter struct {
	GroupID, Status, Result string
}

// ListExecutions returns up to pageSize executions, newest request first
// (then by id, descending), after the cursor after ("" for the first
// page), and the cursor of the next page ("" on the last).
func ListExecutions(ctx context.Context, conn driver.Conn, db string, f ExecutionFilter, pageSize int, after string) ([]*fleetv1.Execution, string, error) {
	const op = "list check executions"
	if pageSize <= 0 {
		return nil, "", errors.New(op + ": page size must be positive")
	}
	tbl, err := table(db, tableCheckExecutions)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	q := strings.Builder{}
	q.WriteString("SELECT id, state FROM " + tbl + " FINAL WHERE 1")
	var args []any
	for _, c := range []struct{ column, value string }{{"group_id", f.GroupID}, {"status", f.Status}, {"result", f.Result}} {
		if c.value != "" {
			q.WriteString(" AND " + c.column + " = ?")
			args = append(args, c.value)
		}
	}
	if after != "" {
		at, id, ok := strings.Cut(after, "/")
		secs, err := strconv.ParseUint(at, 10, 32)
		if !ok || err != nil {
			return nil, "", fmt.Errorf("%s: cursor %q is not <seconds>/<id>", op, after)
		}
		q.WriteString(" AND (toUInt32(requested_at) < ? OR (toUInt32(requested_at) = ? AND id < ?))")
		args = append(args, uint32(secs), uint32(secs), id)
	}
	q.WriteString(" ORDER BY requested_at DESC, id DESC LIMIT ?")
	args = append(args, pageSize+1)
	out, err := queryStates(ctx, conn, q.String(), args, func() *fleetv1.Execution { return &fleetv1.Execution{} })
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	if len(out) <= pageSize {
		return out, "", nil
	}
	last := out[pageSize-1]
	return out[:pageSize], fmt.Sprintf("%d/%s", dateTime(last.GetRequestedAt()).Unix(), last.GetId()), nil
}

// GetExecution returns the execution with id as the read model has it, or
// nil, nil when it is unknown.
func GetExecution(ctx context.Context, conn driver.Conn, db, id string) (*fleetv1.Execution, error) {
	tbl, err := table(db, tableCheckExecutions)
	if err != nil {
		return nil, fmt.Errorf("read check execution %s: %w", id, err)
	}
	out, err := queryStates(ctx, conn, "SELECT id, state FROM "+tbl+" FINAL WHERE id = ?", []any{id},
		func() *fleetv1.Execution { return &fleetv1.Execution{} })
	if err != nil {
		return nil, fmt.Errorf("read check execution %s: %w", id, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out[0], nil
}

// Result sources.
const (
	SourceContinuous = "continuous"
	SourceExecution  = "execution"
)

// ResultFilter selects check results; empty fields select everything.
type ResultFilter struct {
	EntityID, CheckID, Result, ExecutionID string
	// Source is SourceContinuous or SourceExecution.
	Source string
	// Current: only each entity's current result per check (continuous
	// evaluation; checks without a result left out).
	Current bool
	// Evaluated at or after Since, before Until (zero: unbounded).
	Since, Until time.Time
}

// resultCursor separates the parts of a results cursor; ids hold no
// control characters.
const resultCursor = "\x1f"

// ListResults returns up to pageSize check results ordered by entity id,
// check id, evaluation time, execution id and version, after the cursor
// after, and the next page's cursor ("" on the last page).
func ListResults(ctx context.Context, conn driver.Conn, db string, f ResultFilter, pageSize int, after string) ([]*fleetv1.CheckResult, string, error) {
	const op = "list check results"
	if pageSize <= 0 {
		return nil, "", errors.New(op + ": page size must be positive")
	}
	tbl, err := table(db, tableCheckResults)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	q := strings.Builder{}
	q.WriteString("SELECT entity_id, check_id, execution_id, toUInt32(evaluated_at), version, state FROM " + tbl + " FINAL WHERE 1")
	var args []any
	// Entity and check narrow the current-result subquery the same way.
	var scope strings.Builder
	var scopeArgs []any
	for _, c := range []struct{ column, value string }{{"entity_id", f.EntityID}, {"check_id", f.CheckID}} {
		if c.value != "" {
			scope.WriteString(" AND " + c.column + " = ?")
			scopeArgs = append(scopeArgs, c.value)
		}
	}
	q.WriteString(scope.String())
	args = append(args, scopeArgs...)
	for _, c := range []struct{ column, value string }{{"result", f.Result}, {"execution_id", f.ExecutionID}} {
		if c.value != "" {
			q.WriteString(" AND " + c.column + " = ?")
			args = append(args, c.value)
		}
	}
	switch f.Source {
	case "":
	case SourceContinuous:
		q.WriteString(" AND execution_id = ''")
	case SourceExecution:
		q.WriteString(" AND execution_id != ''")
	default:
		return nil, "", fmt.Errorf("%s: source must be %s or %s; got %q", op, SourceContinuous, SourceExecution, f.Source)
	}
	if f.Current {
		q.WriteString(" AND execution_id = '' AND result != '' AND (entity_id, check_id, version) IN (SELECT entity_id, check_id, max(version) FROM " +
			tbl + " FINAL WHERE execution_id = ''" + scope.String() + " GROUP BY entity_id, check_id)")
		args = append(args, scopeArgs...)
	}
	if !f.Since.IsZero() {
		q.WriteString(" AND toUInt32(evaluated_at) >= ?")
		args = append(args, seconds(f.Since))
	}
	if !f.Until.IsZero() {
		q.WriteString(" AND toUInt32(evaluated_at) < ?")
		args = append(args, seconds(f.Until))
	}
	if after != "" {
		parts := strings.Split(after, resultCursor)
		if len(parts) != 5 {
			return nil, "", fmt.Errorf("%s: cursor %q has %d parts, not 5", op, after, len(parts))
		}
		at, err1 := strconv.ParseUint(parts[3], 10, 32)
		version, err2 := strconv.ParseUint(parts[4], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, "", fmt.Errorf("%s: cursor %q does not hold a time and a version", op, after)
		}
		entity, check, exec := parts[0], parts[1], parts[2]
		q.WriteString(" AND (entity_id > ? OR (entity_id = ? AND (check_id > ? OR (check_id = ? AND (toUInt32(evaluated_at) > ? OR " +
			"(toUInt32(evaluated_at) = ? AND (execution_id > ? OR (execution_id = ? AND version > ?))))))))")
		args = append(args, entity, entity, check, check, uint32(at), uint32(at), exec, exec, version)
	}
	q.WriteString(" ORDER BY entity_id, check_id, evaluated_at, execution_id, version LIMIT ?")
	args = append(args, pageSize+1)

	rows, err := conn.Query(ctx, q.String(), args...)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	defer rows.Close()
	var out []*fleetv1.CheckResult
	var cursors []string
	for rows.Next() {
		var entity, check, exec, state string
		var at uint32
		var version uint64
		if err := rows.Scan(&entity, &check, &exec, &at, &version, &state); err != nil {
			return nil, "", fmt.Errorf("%s: %w", op, err)
		}
		r := &fleetv1.CheckResult{}
		if err := stateJSON.Unmarshal([]byte(state), r); err != nil {
			return nil, "", fmt.Errorf("%s: result of %s on %s: %w", op, check, entity, err)
		}
		out = append(out, r)
		cursors = append(cursors, strings.Join([]string{entity, check, exec, strconv.FormatUint(uint64(at), 10), strconv.FormatUint(version, 10)}, resultCursor))
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", op, err)
	}
	if len(out) <= pageSize {
		return out, "", nil
	}
	return out[:pageSize], cursors[pageSize-1], nil
}

// ComplianceFilter selects what GetCompliance counts; empty fields select
// everything.
type ComplianceFilter struct {
	// Group is the check group.
	Group, CheckID, EntityType string
	// Since < Until; Bucket > 0 and at least a second.
	Since, Until time.Time
	Bucket       time.Duration
}

// MaxComplianceBuckets bounds the buckets of one compliance query.
const MaxComplianceBuckets = 1000

// GetCompliance counts, at the end of each bucket from Since to Until, how
// many entities each check (continuous evaluation) passed, warned, failed
// or errored on, per check and per check group.
//
// Results are recorded only when they change, so the state at a time is
// each (entity, check)'s latest row before it: the state at Since comes
// from one aggregation, then the changes in the window are replayed here
// in time order. That keeps it to two scans and no query feature 18.16
// lacks.
func GetCompliance(ctx context.Context, conn driver.Conn, db string, f ComplianceFilter) ([]*fleetv1.ComplianceBucket, error) {
	const op = "check compliance"
	switch {
	case f.Bucket < time.Second:
		return nil, fmt.Errorf("%s: bucket %s is shorter than a second", op, f.Bucket)
	case !f.Since.Before(f.Until):
		return nil, fmt.Errorf("%s: since %s is not before until %s", op, f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	case f.Until.Sub(f.Since)/f.Bucket >= MaxComplianceBuckets:
		return nil, fmt.Errorf("%s: %s in buckets of %s is more than %d buckets", op, f.Until.Sub(f.Since), f.Bucket, MaxComplianceBuckets)
	}
	tbl, err := table(db, tableCheckResults)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	where := " WHERE execution_id = ''"
	var args []any
	for _, c := range []struct{ column, value string }{{"check_id", f.CheckID}, {"entity_type", f.EntityType}} {
		if c.value != "" {
			where += " AND " + c.column + " = ?"
			args = append(args, c.value)
		}
	}
	// state is each (entity, check)'s current result; counts, kept in
	// step, how many entities have each result per check.
	type key struct{ entity, check string }
	state := map[key]string{}
	counts := map[string]*[4]uint64{}
	groups := map[string]string{} // check id → group: removal rows carry none
	apply := func(entity, check, group, result string) {
		if group != "" {
			groups[check] = group
		}
		k := key{entity, check}
		c := counts[check]
		if c == nil {
			c = new([4]uint64)
			counts[check] = c
		}
		if prev, ok := state[k]; ok {
			c[resultIndex(prev)]--
		}
		if result == "" {
			delete(state, k)
			return
		}
		state[k] = result
		c[resultIndex(result)]++
	}

	rows, err := conn.Query(ctx, "SELECT entity_id, check_id, argMax(check_group, version), argMax(result, version) FROM "+tbl+" FINAL"+
		where+" AND toUInt32(evaluated_at) < ? GROUP BY entity_id, check_id", append(slices.Clone(args), seconds(f.Since))...)
	if err != nil {
		return nil, fmt.Errorf("%s: state at since: %w", op, err)
	}
	for rows.Next() {
		var entity, check, group, result string
		if err := rows.Scan(&entity, &check, &group, &result); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: state at since: %w", op, err)
		}
		apply(entity, check, group, result)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: state at since: %w", op, err)
	}

	rows, err = conn.Query(ctx, "SELECT entity_id, check_id, check_group, result, toUInt32(evaluated_at) FROM "+tbl+" FINAL"+where+
		" AND toUInt32(evaluated_at) >= ? AND toUInt32(evaluated_at) < ? ORDER BY evaluated_at, entity_id, version",
		append(slices.Clone(args), seconds(f.Since), seconds(f.Until))...)
	if err != nil {
		return nil, fmt.Errorf("%s: changes: %w", op, err)
	}
	defer rows.Close()
	var out []*fleetv1.ComplianceBucket
	snapshot := func(start, end time.Time) {
		out = append(out, complianceBucket(start, end, f.Group, groups, counts))
	}
	start := f.Since
	end := minTime(start.Add(f.Bucket), f.Until)
	for rows.Next() {
		var entity, check, group, result string
		var at uint32
		if err := rows.Scan(&entity, &check, &group, &result, &at); err != nil {
			return nil, fmt.Errorf("%s: changes: %w", op, err)
		}
		for int64(at) >= end.Unix() {
			snapshot(start, end)
			start, end = end, minTime(end.Add(f.Bucket), f.Until)
		}
		apply(entity, check, group, result)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: changes: %w", op, err)
	}
	for start.Before(f.Until) {
		snapshot(start, end)
		start, end = end, minTime(end.Add(f.Bucket), f.Until)
	}
	return out, nil
}

// resultIndex is a result's place in a count: passing, warning, critical,
// anything else (error).
func resultIndex(result string) int {
	switch result {
	case "passing":
		return 0
	case "warning":
		return 1
	case "critical":
		return 2
	}
	return 3
}

// complianceBucket is one bucket of counts, those of check group only when
// group is set; checks no entity has a result of are left out.
func complianceBucket(start, end time.Time, group string, groups map[string]string, counts map[string]*[4]uint64) *fleetv1.ComplianceBucket {
	b := &fleetv1.ComplianceBucket{Start: timestamppb.New(start), End: timestamppb.New(end)}
	byGroup := map[string]*fleetv1.ComplianceCount{}
	for _, check := range slices.Sorted(maps.Keys(counts)) {
		c, g := counts[check], groups[check]
		if (group != "" && g != group) || c[0]+c[1]+c[2]+c[3] == 0 {
			continue
		}
		b.Checks = append(b.Checks, &fleetv1.ComplianceCount{CheckId: check, Group: g, Passing: c[0], Warning: c[1], Critical: c[2], Error: c[3]})
		gc := byGroup[g]
		if gc == nil {
			gc = &fleetv1.ComplianceCount{Group: g}
			byGroup[g] = gc
		}
		gc.Passing, gc.Warning, gc.Critical, gc.Error = gc.Passing+c[0], gc.Warning+c[1], gc.Critical+c[2], gc.Error+c[3]
	}
	for _, g := range slices.Sorted(maps.Keys(byGroup)) {
		b.Groups = append(b.Groups, byGroup[g])
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// seconds is t as a DateTime column's value.
func seconds(t time.Time) uint32 {
	return uint32(dateTime(timestamppb.New(t)).Unix())
}
