package clickhouse

import (
	"context"
	"fmt"
	"time"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Tables of the checks read model.
const (
	tableCheckResults    = "check_results"
	tableCheckExecutions = "check_executions"
)

const (
	checkResultsInsert = "INSERT INTO %s (entity_id, entity_type, check_id, check_group, severity, result, execution_id, " +
		"evaluated_at, version, state)"
	checkExecutionsInsert = "INSERT INTO %s (id, group_id, target_type, status, result, actor, requested_at, completed_at, " +
		"version, state)"
)

// checksRows are the checks rows one event writes.
type checksRows struct {
	results   []*checkResultRow
	execution *checkExecutionRow
}

// checkResultRow is one row of check_results.
type checkResultRow struct {
	entityID, entityType, checkID, group, severity, result, executionID string
	evaluatedAt                                                         time.Time
	version                                                             uint64
	state                                                               string // protojson of the CheckResult
}

// checkResultKey is a row's identity in check_results.
type checkResultKey struct {
	entity, check, execution string
	version                  uint64
}

// checkExecutionRow is one row of check_executions.
type checkExecutionRow struct {
	exec    *fleetv1.Execution
	version uint64
	state   string // protojson of the Execution
}

// checksOf returns the checks rows of an event: a CheckResultChanged writes
// its result (an empty one when the check has none any more), an
// ExecutionRequested or ExecutionCompleted its execution, and an
// ExecutionCompleted each of its check results too. nil for other events.
func checksOf(ev *fleetv1.Event) (*checksRows, error) {
	switch {
	case ev.GetCheckResultChanged() != nil:
		c := ev.GetCheckResultChanged()
		res := c.GetResult()
		if res == nil {
			// No result any more: recorded so that the entity's current
			// result of the check is "none".
			res = &fleetv1.CheckResult{CheckId: c.GetCheckId(), EntityId: ev.GetAggregateId(),
				EntityType: ev.GetState().GetChecks().GetTargetType(), EvaluatedAt: ev.GetOccurredAt(), Version: ev.GetVersion()}
		}
		row, err := resultRow(ev, res, "")
		if err != nil {
			return nil, err
		}
		if row.checkID == "" {
			return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s: CheckResultChanged without check_id", ev.GetEventId())}
		}
		return &checksRows{results: []*checkResultRow{row}}, nil
	case ev.GetExecutionRequested() != nil:
		return executionRows(ev, ev.GetExecutionRequested().GetExecution())
	case ev.GetExecutionCompleted() != nil:
		return executionRows(ev, ev.GetExecutionCompleted().GetExecution())
	}
	return nil, nil
}

func executionRows(ev *fleetv1.Event, exec *fleetv1.Execution) (*checksRows, error) {
	if exec.GetId() == "" {
		return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s carries an execution without id", ev.GetEventId())}
	}
	state, err := jsonOptions.Marshal(exec)
	if err != nil {
		return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s: execution %s to JSON: %w", ev.GetEventId(), exec.GetId(), err)}
	}
	out := &checksRows{execution: &checkExecutionRow{exec: exec, version: ev.GetVersion(), state: string(state)}}
	for _, res := range exec.GetCheckResults() {
		row, err := resultRow(ev, res, exec.GetId())
		if err != nil {
			return nil, err
		}
		if row.entityID == "" {
			row.entityID = exec.GetGroupId()
		}
		if row.entityType == "" {
			row.entityType = exec.GetTargetType()
		}
		out.results = append(out.results, row)
	}
	return out, nil
}

// resultRow is res as a row; the event fills what res leaves out.
func resultRow(ev *fleetv1.Event, res *fleetv1.CheckResult, executionID string) (*checkResultRow, error) {
	state, err := jsonOptions.Marshal(res)
	if err != nil {
		return nil, &rejectionError{reasonInvalid, fmt.Errorf("event %s: result of check %s to JSON: %w", ev.GetEventId(), res.GetCheckId(), err)}
	}
	at := res.GetEvaluatedAt()
	if at == nil {
		at = ev.GetOccurredAt()
	}
	entityType := res.GetEntityType()
	if entityType == "" {
		entityType = ev.GetState().GetChecks().GetTargetType()
	}
	return &checkResultRow{
		entityID: ev.GetAggregateId(), entityType: entityType, checkID: res.GetCheckId(), group: res.GetGroup(),
		severity: res.GetSeverity(), result: res.GetResult(), executionID: executionID,
		evaluatedAt: dateTime(at), version: ev.GetVersion(), state: string(state),
	}, nil
}

// checkResultValues are rows of check_results in the order of
// checkResultsInsert.
func checkResultValues(rows []*checkResultRow) []any {
	n := len(rows)
	entity, entityType, check, group := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	severity, result, execution, state := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	at, version := make([]time.Time, n), make([]uint64, n)
	for i, r := range rows {
		entity[i], entityType[i], check[i], group[i] = r.entityID, r.entityType, r.checkID, r.group
		severity[i], result[i], execution[i], state[i] = r.severity, r.result, r.executionID, r.state
		at[i], version[i] = r.evaluatedAt, r.version
	}
	return []any{entity, entityType, check, group, severity, result, execution, at, version, state}
}

// checkExecutionValues are rows of check_executions in the order of
// checkExecutionsInsert.
func checkExecutionValues(rows []*checkExecutionRow) []any {
	n := len(rows)
	id, group, targetType, status := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	result, actor, state := make([]string, n), make([]string, n), make([]string, n)
	requested, completed, version := make([]time.Time, n), make([]time.Time, n), make([]uint64, n)
	for i, r := range rows {
		e := r.exec
		id[i], group[i], targetType[i], status[i] = e.GetId(), e.GetGroupId(), e.GetTargetType(), e.GetStatus()
		result[i], actor[i], state[i] = e.GetResult(), e.GetActor(), r.state
		requested[i], completed[i], version[i] = dateTime(e.GetRequestedAt()), dateTime(e.GetCompletedAt()), r.version
	}
	return []any{id, group, targetType, status, result, actor, requested, completed, version, state}
}

// addChecks keeps an event's checks rows in the batch: the newest version
// of each execution, each result row once.
func (b *batch) addChecks(c *checksRows) {
	if c == nil {
		return
	}
	for _, r := range c.results {
		b.checkResults[checkResultKey{r.entityID, r.checkID, r.executionID, r.version}] = r
	}
	if e := c.execution; e != nil {
		if prev, ok := b.checkExecutions[e.exec.GetId()]; !ok || prev.version <= e.version {
			b.checkExecutions[e.exec.GetId()] = e
		}
	}
}

// flushChecks writes the batch's check result and execution rows, each
// with retries.
func (s *Sink) flushChecks(ctx context.Context, b *batch) error {
	if len(b.checkResults) > 0 {
		rows := make([]*checkResultRow, 0, len(b.checkResults))
		for _, r := range b.checkResults {
			rows = append(rows, r)
		}
		values := checkResultValues(rows)
		err := s.retry(ctx, tableCheckResults, func(ctx context.Context) error { return insert(ctx, s.conn, s.checkResultsInsert, values) })
		if err != nil {
			return err
		}
		s.metrics.rows.WithLabelValues(tableCheckResults).Add(float64(len(rows)))
	}
	if len(b.checkExecutions) > 0 {
		rows := make([]*checkExecutionRow, 0, len(b.checkExecutions))
		for _, r := range b.checkExecutions {
			rows = append(rows, r)
		}
		values := checkExecutionValues(rows)
		err := s.retry(ctx, tableCheckExecutions, func(ctx context.Context) error {
			return insert(ctx, s.conn, s.checkExecutionsInsert, values)
		})
		if err != nil {
			return err
		}
		s.metrics.rows.WithLabelValues(tableCheckExecutions).Add(float64(len(rows)))
	}
	return nil
}
