-- Tags of hosts, clusters, SAP systems and databases: plain CRUD written by
-- the API, not event sourced. One row per (entity, value) after merging;
-- removing a tag writes deleted = 1 with a newer version, so an add and a
-- remove racing on two API instances end as the later of the two. version
-- is the writer's clock in nanoseconds. Read with FINAL.
CREATE TABLE IF NOT EXISTS {database}.tags
(
    entity_type String,
    entity_id   String,
    value       String,
    deleted     UInt8,
    version     UInt64,
    updated_at  DateTime
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (entity_type, entity_id, value);
