-- Every domain event of fleet.events.v1: history and time travel.
--
-- ReplacingMergeTree on the event's identity, so a redelivered event (the
-- sink commits Kafka offsets after inserting, so a crash re-inserts the
-- last batch) collapses into one row at merge time; read with FINAL.
-- Partitions are months of occurred_at: a redelivered event lands in the
-- same partition as its first copy, which is where deduplication happens.
-- payload and state are protojson (proto field names) of the event's
-- payload message and of the aggregate state after the event.
CREATE TABLE IF NOT EXISTS {database}.events
(
    event_id        String,
    aggregate_type  String,
    aggregate_id    String,
    version         UInt64,
    event_type      String,
    occurred_at     DateTime,
    trace_id        String,
    command_id      String,
    payload         String,
    state           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    inserted_at     DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (aggregate_type, aggregate_id, version, event_id);
