-- Every on-demand execution, one row per id after merging: the newest
-- version of its target group's executions wins (ExecutionCompleted over
-- ExecutionRequested), so a redelivered or replayed event never moves an
-- execution back to running. Read with FINAL.
--
-- Missing timestamps (completed_at of a running execution) are 0
-- (1970-01-01). state is the protojson of the fleetstream.v1.Execution.
CREATE TABLE IF NOT EXISTS {database}.check_executions
(
    id           String,
    group_id     String,
    target_type  String,
    status       String,
    result       String,
    actor        String,
    requested_at DateTime,
    completed_at DateTime,
    version      UInt64,
    state        String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
