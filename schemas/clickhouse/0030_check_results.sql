-- Every check result ever recorded, one row per change after merging:
-- continuous evaluation writes a row per CheckResultChanged (execution_id
-- '', version = the target's checks version; result '' when the check no
-- longer has a result on the entity), an on-demand execution a row per
-- check of its ExecutionCompleted (version = the target group's executions
-- version). The key holds the version, so a redelivered event collapses
-- into its first copy. Read with FINAL.
--
-- An entity's current result per check is its continuous row with the
-- highest version; compliance over time replays the rows in evaluated_at
-- order. state is the protojson (proto field names) of the
-- fleetstream.v1.CheckResult and is what the API returns.
CREATE TABLE IF NOT EXISTS {database}.check_results
(
    entity_id    String,
    entity_type  String,
    check_id     String,
    check_group  String,
    severity     String,
    result       String,
    execution_id String,
    evaluated_at DateTime,
    version      UInt64,
    state        String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (entity_id, check_id, execution_id, version);
