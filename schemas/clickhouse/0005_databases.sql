-- Current state of every database, one row per id after merging: the newest
-- version wins. Read with FINAL.
--
-- Typed columns exist for what lists filter on; host_ids are the hosts of
-- its instances (sorted, distinct). A deregistered (tombstoned) database
-- keeps its row with deregistered = 1. state is the protojson (proto field
-- names) of the whole fleetstream.v1.Database and is what the API returns.
-- Missing timestamps are stored as 0 (1970-01-01).
CREATE TABLE IF NOT EXISTS {database}.databases
(
    id            String,
    sid           String,
    health        String,
    host_ids      Array(String),
    deregistered  UInt8,
    registered_at DateTime,
    updated_at    DateTime,
    version       UInt64,
    state         String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
