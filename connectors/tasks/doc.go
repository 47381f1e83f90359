// Package tasks is fleetstream's collection task queue on Kafka: tasks
// (fleetv1.Task) travel on one topic per priority, workers run them with a
// bounded pool, failures wait on a retry topic, and hopeless ones go to the
// shared dead-letter topic. A scheduler turns cron jobs into tasks, and a
// status table makes every task inspectable.
//
// # Design
//
// Topics (kafka.Topics): fleet.tasks.{high,normal,low}.v1 hold runnable
// tasks keyed by id; fleet.tasks.retry.v1 holds tasks whose not_before is
// in the future (retries after a failure, and tasks submitted for later);
// fleet.tasks.cancel.v1 (compacted) holds cancellation requests;
// fleet.tasks.status.v1 (compacted) holds each task's latest TaskStatus;
// fleet.tasks.schedule.v1 (one partition, compacted) is the scheduler's
// lease and its record of when each job last fired. Dead tasks go to
// fleet.dlq.v1 with kafka.DeadLetterHeaders (stage "tasks").
//
// Durability: a worker commits a partition only up to its lowest unfinished
// offset (offsets.go). A task is finished once its outcome is acknowledged
// by Kafka: its COMPLETED status, its hand-off to the retry topic, or its
// dead letter. A worker killed mid-task therefore leaves the task
// uncommitted and the next owner of the partition runs it again; tasks the
// dead worker finished after the lowest unfinished one run again too.
// Delivery is at least once: handlers must be idempotent (collectors are:
// a repeated discovery changes nothing downstream).
//
// Status ordering: whoever hands a task to someone else writes the task's
// status first and waits for it (PENDING before the task record, RETRYING
// before the retry record), a DEAD status follows its dead letter, and a
// worker writes ACTIVE and the outcome through one producer, so the last
// status record of a task id is its current state without any merge logic
// in readers (StatusStore, which the API serves from).
//
// Priority: one consumer group reads the three priority topics into
// per-queue buffers (a queue's topic is paused while its buffer is full, and
// fetches wait at most 100ms so a resumed queue is fetched again at once);
// the dispatcher picks strictly by priority or by smooth weighted round
// robin (Policy).
//
// Retries: a failed attempt is written back to the retry topic with
// not_before = now + exponential backoff with jitter. The relay (run by
// every worker, its own consumer group) holds retry records in a timer heap
// and moves each due task back to its priority topic. Records not due
// within the park horizon are appended again to the retry topic and
// committed, so a far-future task never holds back the retry partition's
// commit offset for long.
//
// Cancellation: every worker reads the whole cancellation topic. A pending
// task is skipped when reached, a scheduled or retrying one is ended by the
// relay at once, and a running one has its context cancelled and ends as
// cancelled, not retried.
//
// Scheduler: replicas join one consumer group on the single-partition
// schedule topic; the member assigned partition 0 is the leader and the
// only one that fires jobs. A new leader first reads the topic to learn
// when each job last fired; a missed run is fired once, not once per miss.
//
// # What it deliberately does not do
//
//   - Exactly-once execution: a task may run more than once (crash,
//     rebalance, a leader change during a long GC pause); scheduled tasks
//     carry deterministic ids so duplicates are recognisable.
//   - Per-task ordering or dependencies between tasks; fan-out children are
//     independent tasks.
//   - Unbounded history: status and cancellation records expire a week
//     after they were written (compact,delete); the DLQ keeps the record.
//   - Rate limiting per task type: handlers throttle their own API calls.
//   - A distributed semaphore across workers: concurrency is per worker.
//   - Task events in fleet.events.v1: task states are operational data with
//     their own compacted table, not domain history.
package tasks
