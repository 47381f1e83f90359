-- Current state of every cluster, one row per id after merging: the newest
-- version wins, so replaying events or redelivering a batch never moves a
-- cluster back in time. Read with FINAL.
--
-- Typed columns exist for what lists filter on; host_ids are the member
-- hosts (sorted), so "the clusters of a host" is has(host_ids, ?); sids are
-- the SIDs of the HANA and SAP instance resources it runs (sorted); provider
-- is the infrastructure its designated controller detected. A
-- deregistered (tombstoned) cluster keeps its row with deregistered = 1.
-- state is the protojson (proto field names) of the whole
-- fleetstream.v1.Cluster and is what the API returns. Missing timestamps
-- are stored as 0 (1970-01-01).
CREATE TABLE IF NOT EXISTS {database}.clusters
(
    id            String,
    name          String,
    type          String,
    health        String,
    provider      String,
    sids          Array(String),
    host_ids      Array(String),
    deregistered  UInt8,
    registered_at DateTime,
    updated_at    DateTime,
    version       UInt64,
    state         String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
