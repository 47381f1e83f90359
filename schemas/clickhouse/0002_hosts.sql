-- Current state of every host, one row per id after merging: the newest
-- version wins, so replaying events or redelivering a batch never moves a
-- host back in time. Read with FINAL.
--
-- Typed columns exist for what lists filter and sort on; state is the
-- protojson (proto field names) of the whole fleetstream.v1.Host and is what
-- the API returns. Missing timestamps are stored as 0 (1970-01-01).
CREATE TABLE IF NOT EXISTS {database}.hosts
(
    id                String,
    hostname          String,
    fqdn              String,
    os_name           String,
    os_version        String,
    kernel_version    String,
    arch              String,
    cpu_count         UInt32,
    socket_count      UInt32,
    total_memory_mb   UInt64,
    ip_addresses      Array(String),
    agent_version     String,
    health            String,
    heartbeat         String,
    last_heartbeat_at DateTime,
    registered_at     DateTime,
    updated_at        DateTime,
    version           UInt64,
    state             String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
