-- Every link between two entities (cloud resources, hosts) that ever held,
-- one row per (from, relation, to) after merging: the newest version of the
-- source entity's link events wins. active = 0 rows are links that ended,
-- with the reason (undeclared, source_deleted, target_deleted). Read with
-- FINAL.
--
-- Sorted by the source: an entity's own links are a key range; the links
-- to it are found by scanning to_id, which is fine at the scale of links
-- (a few per resource).
CREATE TABLE IF NOT EXISTS {database}.links
(
    from_type  String,
    from_id    String,
    from_kind  String,
    relation   String,
    to_type    String,
    to_id      String,
    to_kind    String,
    active     UInt8,
    reason     String,
    version    UInt64,
    updated_at DateTime
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (from_id, relation, to_type, to_id);
