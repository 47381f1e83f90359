-- Current state of every SAP system, one row per id after merging: the
-- newest version wins. Read with FINAL.
--
-- Typed columns exist for what lists filter on; database_id is the database
-- the system runs on ("the SAP systems of a database" is a scan of it) and
-- host_ids the hosts of its application instances (sorted, distinct). A
-- deregistered (tombstoned) system keeps its row with deregistered = 1.
-- state is the protojson (proto field names) of the whole
-- fleetstream.v1.SapSystem and is what the API returns. Missing timestamps
-- are stored as 0 (1970-01-01).
CREATE TABLE IF NOT EXISTS {database}.sap_systems
(
    id            String,
    sid           String,
    type          String,
    health        String,
    database_id   String,
    host_ids      Array(String),
    deregistered  UInt8,
    registered_at DateTime,
    updated_at    DateTime,
    version       UInt64,
    state         String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
