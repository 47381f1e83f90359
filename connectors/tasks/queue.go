package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Queue submits and controls tasks: the API, the CLI, the scheduler and
// fan-out from running tasks all go through it.
type Queue struct {
	client *kgo.Client
	topics kafka.Topics
	writer string
	now    func() time.Time
}

// NewQueue writes through client, which must come from kafka.NewClient
// (acks=all, idempotent, goka-compatible partitioning). writer names the
// component in the statuses it writes, e.g. "api" or a worker id.
func NewQueue(client *kgo.Client, topics kafka.Topics, writer string) *Queue {
	return &Queue{client: client, topics: topics, writer: writer, now: time.Now}
}

// Enqueue makes tasks durable and runnable. It fills in an empty id (a
// UUIDv7, so ids sort by submission time), enqueued_at and priority
// (normal), in place. A task whose not_before is in the future waits on the
// retry topic as scheduled; the others go to their priority topic. Each
// task's status is stored before the task itself (see the package doc).
func (q *Queue) Enqueue(ctx context.Context, tasks ...*fleetv1.Task) error {
	now := q.now()
	statuses := make([]*kgo.Record, 0, len(tasks))
	records := make([]*kgo.Record, 0, len(tasks))
	for _, t := range tasks {
		if t.GetType() == "" {
			return errors.New("enqueue: a task needs a type (the name of the handler that runs it)")
		}
		if t.Id == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("enqueue %s: task id: %w", t.Type, err)
			}
			t.Id = id.String()
		}
		if t.EnqueuedAt == nil {
			t.EnqueuedAt = timestamppb.New(now)
		}
		if t.Priority == fleetv1.Priority_PRIORITY_UNSPECIFIED {
			t.Priority = fleetv1.Priority_PRIORITY_NORMAL
		}
		state, topic := fleetv1.TaskState_TASK_STATE_PENDING, topicFor(q.topics, t.Priority)
		if t.NotBefore.AsTime().After(now) {
			state, topic = fleetv1.TaskState_TASK_STATE_SCHEDULED, q.topics.TasksRetry
		}
		trace := traceFrom(ctx, t.Id)
		st, err := q.statusRecord(&fleetv1.TaskStatus{Task: t, State: state, UpdatedAt: timestamppb.New(now), Writer: q.writer}, trace)
		if err != nil {
			return err
		}
		rec, err := taskRecord(topic, t, trace)
		if err != nil {
			return err
		}
		statuses = append(statuses, st)
		records = append(records, rec)
	}
	if err := q.client.ProduceSync(ctx, statuses...).FirstErr(); err != nil {
		return fmt.Errorf("enqueue %d tasks: store status: %w", len(tasks), err)
	}
	if err := q.client.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("enqueue %d tasks: %w", len(tasks), err)
	}
	return nil
}

// Cancel asks the workers to cancel task id: a pending, scheduled or
// retrying task is skipped when reached, a running one has its context
// cancelled. Cancelling a finished task changes nothing.
func (q *Queue) Cancel(ctx context.Context, id, reason string) error {
	if reason == "" {
		reason = "cancelled by " + q.writer
	}
	value, err := proto.Marshal(&fleetv1.TaskCancel{TaskId: id, Reason: reason, RequestedAt: timestamppb.New(q.now()), RequestedBy: q.writer})
	if err != nil {
		return fmt.Errorf("cancel task %s: %w", id, err)
	}
	rec := &kgo.Record{Topic: q.topics.TasksCancel, Key: []byte(id), Value: value,
		Headers: kafka.RecordHeaders(kafka.Headers(&fleetv1.TaskCancel{}, traceFrom(ctx, id)))}
	if err := q.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("cancel task %s: %w", id, err)
	}
	return nil
}

// Requeue puts a dead task back on its queue with its attempts reset; it
// keeps its id, payload and last error. A task whose deadline has passed
// would only die again: enqueue a new one instead.
func (q *Queue) Requeue(ctx context.Context, dead *fleetv1.Task) error {
	if d := dead.GetDeadline(); d != nil && !d.AsTime().After(q.now()) {
		return fmt.Errorf("requeue task %s: its deadline %s has passed; enqueue a new task instead", dead.GetId(), d.AsTime().Format(time.RFC3339))
	}
	t := proto.CloneOf(dead)
	t.Attempt = 0
	t.NotBefore = nil
	return q.Enqueue(ctx, t)
}

// writeStatus stores statuses and waits for Kafka's acknowledgement.
func (q *Queue) writeStatus(ctx context.Context, trace string, sts ...*fleetv1.TaskStatus) error {
	recs := make([]*kgo.Record, len(sts))
	for i, st := range sts {
		r, err := q.statusRecord(st, trace)
		if err != nil {
			return err
		}
		recs[i] = r
	}
	return q.client.ProduceSync(ctx, recs...).FirstErr()
}

func (q *Queue) statusRecord(st *fleetv1.TaskStatus, trace string) (*kgo.Record, error) {
	if st.Writer == "" {
		st.Writer = q.writer
	}
	if st.UpdatedAt == nil {
		st.UpdatedAt = timestamppb.New(q.now())
	}
	value, err := proto.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("status of task %s: %w", st.GetTask().GetId(), err)
	}
	return &kgo.Record{Topic: q.topics.TasksStatus, Key: []byte(st.GetTask().GetId()), Value: value,
		Headers: taskHeaders(st, st.GetTask(), trace)}, nil
}

// taskRecord is t on topic, keyed by its id.
func taskRecord(topic string, t *fleetv1.Task, trace string) (*kgo.Record, error) {
	value, err := proto.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.GetId(), err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(t.GetId()), Value: value, Headers: taskHeaders(t, t, trace)}, nil
}

// deadLetter is t on the dead-letter topic with why and where from.
func deadLetter(topic string, t *fleetv1.Task, reason string, src *kgo.Record, trace string) (*kgo.Record, error) {
	value, err := proto.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("dead letter of task %s: %w", t.GetId(), err)
	}
	h := kafka.Headers(t, trace)
	for k, v := range kafka.DeadLetterHeaders(dlqStage, reason, src.Topic, src.Partition, src.Offset) {
		h[k] = v
	}
	h[HeaderTaskID], h[HeaderTaskType] = t.GetId(), t.GetType()
	return &kgo.Record{Topic: topic, Key: []byte(t.GetId()), Value: value, Headers: kafka.RecordHeaders(h)}, nil
}

func taskHeaders(msg proto.Message, t *fleetv1.Task, trace string) []kgo.RecordHeader {
	h := kafka.Headers(msg, trace)
	h[HeaderTaskID], h[HeaderTaskType] = t.GetId(), t.GetType()
	return kafka.RecordHeaders(h)
}

// childID derives a fan-out child's id from its parent and what it does,
// so a parent that runs again re-enqueues the same ids and duplicates are
// recognisable.
func childID(parent string, t *fleetv1.Task) string {
	h := sha256.New()
	h.Write([]byte(t.GetType()))
	h.Write([]byte{0})
	h.Write(t.GetPayload())
	return parent + "." + hex.EncodeToString(h.Sum(nil)[:6])
}

type traceKey struct{}

// withTrace carries the trace id of the task being run, so its children
// and discoveries share it.
func withTrace(ctx context.Context, trace string) context.Context {
	return context.WithValue(ctx, traceKey{}, trace)
}

func traceFrom(ctx context.Context, fallback string) string {
	if s, ok := ctx.Value(traceKey{}).(string); ok && s != "" {
		return s
	}
	return fallback
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
