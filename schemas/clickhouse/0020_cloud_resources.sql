-- Current state of every cloud and virtualisation resource, one row per
-- resource key ("<provider>:<account>:<resource id>") after merging: the
-- newest version wins, so replaying events or redelivering a batch never
-- moves a resource back in time. Read with FINAL.
--
-- A deleted resource keeps its row with deleted = 1 (the tombstone), its
-- last spec and deleted_at. Typed columns exist for what lists filter on;
-- tags are "key=value" strings; attributes is the protojson of the
-- provider's properties; state is the protojson (proto field names) of the
-- whole fleetstream.v1.CloudResource and is what the API returns. Missing
-- timestamps are stored as 0 (1970-01-01).
CREATE TABLE IF NOT EXISTS {database}.cloud_resources
(
    id            String,
    provider      String,
    account       String,
    region        String,
    kind          String,
    resource_id   String,
    name          String,
    tags          Array(String),
    attributes    String,
    deleted       UInt8,
    discovered_at DateTime,
    updated_at    DateTime,
    deleted_at    DateTime,
    version       UInt64,
    state         String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;
