package tasks

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// relay moves tasks from the retry topic back to their priority topic when
// they are due. It holds records in a timer heap without committing them;
// its commit offset is the lowest record not yet moved, so a crash loses
// nothing. A record not due within ParkAfter is appended to the retry
// topic again and committed, so it does not hold the partition back.
type relay struct {
	w       *Worker
	offsets *offsets
	client  *kgo.Client

	mu     sync.Mutex
	held   heldHeap
	paused bool
	wake   chan struct{}
}

type heldTask struct {
	fireAt time.Time
	task   *fleetv1.Task
	rec    *kgo.Record
	ticket *ticket
	trace  string
}

func newRelay(w *Worker) *relay {
	return &relay{w: w, offsets: newOffsets(), wake: make(chan struct{}, 1)}
}

func (r *relay) run(ctx context.Context) error {
	o := r.w.opts
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ConsumerGroup(o.RelayGroup),
		kgo.ConsumeTopics(o.Topics.TasksRetry),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { r.offsets.assign(a) }),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			r.drop(lost)
			r.offsets.lose(lost)
		}),
	}
	if o.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(o.SessionTimeout))
	}
	client, err := kgo.NewClient(append(opts, o.KafkaOptions...)...)
	if err != nil {
		return fmt.Errorf("retry relay: kafka client: %w", err)
	}
	r.client = client
	var loops sync.WaitGroup
	loops.Go(func() { r.poll(ctx) })
	loops.Go(func() { r.fire(ctx) })
	t := time.NewTicker(o.CommitInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-t.C:
			if err := commit(ctx, client, r.offsets, r.offsets.uncommitted()); err != nil && ctx.Err() == nil {
				r.w.m.commitErrors.Inc()
				r.w.log.Warn("commit retry offsets", "err", err)
			}
		}
	}
	loops.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := commit(fctx, client, r.offsets, r.offsets.uncommitted()); err != nil {
		r.w.log.Warn("final commit of retry offsets failed; those records are handed on again", "err", err)
	}
	client.Close()
	return nil
}

func (r *relay) poll(ctx context.Context) {
	for {
		fs := r.client.PollRecords(ctx, 10000)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			r.w.log.Warn("fetch retry topic", "topic", t, "partition", p, "err", err)
		})
		now := time.Now()
		var bad []heldTask
		r.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			tk := r.offsets.take(rec)
			if tk == nil {
				return
			}
			t := &fleetv1.Task{}
			h := heldTask{fireAt: now, task: t, rec: rec, ticket: tk, trace: headerValue(rec, kafka.HeaderTraceID)}
			if err := proto.Unmarshal(rec.Value, t); err != nil || t.GetId() == "" {
				bad = append(bad, h)
				return
			}
			if h.trace == "" {
				h.trace = t.Id
			}
			if nb := t.GetNotBefore().AsTime(); nb.After(now) && r.w.cancels.get(t.Id) == nil {
				h.fireAt = nb
				if park := now.Add(r.w.opts.ParkAfter); park.Before(nb) {
					h.fireAt = park
				}
			}
			heap.Push(&r.held, h)
		})
		if len(r.held) >= r.w.opts.MaxHeld && !r.paused {
			r.client.PauseFetchTopics(r.w.opts.Topics.TasksRetry)
			r.paused = true
		}
		r.w.m.held.Set(float64(len(r.held)))
		r.mu.Unlock()
		for _, h := range bad {
			r.deadLetterRecord(h)
		}
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// fire hands on held records as they come due.
func (r *relay) fire(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		wait := time.Hour
		var due []heldTask
		r.mu.Lock()
		for len(r.held) > 0 && !r.held[0].fireAt.After(now) {
			due = append(due, heap.Pop(&r.held).(heldTask))
		}
		if len(r.held) > 0 {
			wait = r.held[0].fireAt.Sub(now)
		}
		if r.paused && len(r.held) < r.w.opts.MaxHeld/2 {
			r.client.ResumeFetchTopics(r.w.opts.Topics.TasksRetry)
			r.paused = false
		}
		r.w.m.held.Set(float64(len(r.held)))
		r.mu.Unlock()
		if len(due) > 0 {
			r.handOn(now, due)
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// handOn decides for each due record: cancelled, dead (deadline passed),
// moved back to its queue, or parked again. It writes in two rounds: a
// status before the task record that lets a worker act on it, a dead
// letter before the status that says it is there; a record's offset is
// released after both.
func (r *relay) handOn(now time.Time, due []heldTask) {
	w := r.w
	type step struct {
		h       heldTask
		outcome string
		first   []*kgo.Record
		then    []*kgo.Record
	}
	steps := make([]step, 0, len(due))
	for _, h := range due {
		if !r.offsets.start(h.ticket) {
			continue
		}
		s := step{h: h}
		t := h.task
		var err error
		status := func(st *fleetv1.TaskStatus, round *[]*kgo.Record) {
			var rec *kgo.Record
			if rec, err = w.queue.statusRecord(st, h.trace); err == nil {
				*round = append(*round, rec)
			}
		}
		switch {
		case w.cancels.get(t.Id) != nil:
			s.outcome = outcomeCancelled
			status(&fleetv1.TaskStatus{Task: t, State: fleetv1.TaskState_TASK_STATE_CANCELLED, Reason: w.cancels.get(t.Id).GetReason()}, &s.first)
		case t.Deadline != nil && !t.Deadline.AsTime().After(now):
			s.outcome = outcomeDead
			reason := fmt.Sprintf("deadline %s passed while waiting for attempt %d", t.Deadline.AsTime().Format(time.RFC3339), t.Attempt+1)
			var dl *kgo.Record
			if dl, err = deadLetter(w.opts.Topics.DLQ, t, reason, h.rec, h.trace); err == nil {
				s.first = append(s.first, dl)
				status(&fleetv1.TaskStatus{Task: t, State: fleetv1.TaskState_TASK_STATE_DEAD, Reason: reason}, &s.then)
			}
		case !t.GetNotBefore().AsTime().After(now):
			s.outcome = outcomeMoved
			status(&fleetv1.TaskStatus{Task: t, State: fleetv1.TaskState_TASK_STATE_PENDING}, &s.first)
			var rec *kgo.Record
			if rec, err = taskRecord(topicFor(w.opts.Topics, t.Priority), t, h.trace); err == nil {
				s.then = append(s.then, rec)
			}
		default:
			s.outcome = outcomeParked
			s.then = append(s.then, &kgo.Record{Topic: h.rec.Topic, Key: h.rec.Key, Value: h.rec.Value, Headers: h.rec.Headers})
		}
		if err != nil {
			w.log.Error("retry relay: encode; the record stays uncommitted", "task_id", t.Id, "err", err)
			continue
		}
		steps = append(steps, s)
	}
	var first, then []*kgo.Record
	for _, s := range steps {
		first = append(first, s.first...)
	}
	failed := map[*kgo.Record]bool{}
	for _, res := range w.client.ProduceSync(w.produceCtx, first...) {
		if res.Err != nil {
			failed[res.Record] = true
		}
	}
	anyFailed := func(recs []*kgo.Record) bool {
		return slices.ContainsFunc(recs, func(rec *kgo.Record) bool { return failed[rec] })
	}
	for i := range steps {
		if anyFailed(steps[i].first) {
			w.log.Error("retry relay: write failed; the record is handed on again after a restart", "task_id", steps[i].h.task.Id)
			steps[i].outcome = ""
			continue
		}
		then = append(then, steps[i].then...)
	}
	for _, res := range w.client.ProduceSync(w.produceCtx, then...) {
		if res.Err != nil {
			failed[res.Record] = true
		}
	}
	for _, s := range steps {
		if s.outcome == "" || anyFailed(s.then) {
			continue
		}
		w.m.relayed.WithLabelValues(s.outcome).Inc()
		r.offsets.finish(s.h.ticket)
	}
}

func (r *relay) deadLetterRecord(h heldTask) {
	w := r.w
	if !r.offsets.start(h.ticket) {
		return
	}
	reason := "undecodable record on the retry topic (want a fleetstream.v1.Task with an id)"
	dl := &kgo.Record{Topic: w.opts.Topics.DLQ, Key: h.rec.Key, Value: h.rec.Value,
		Headers: append(slices.Clone(h.rec.Headers), kafka.RecordHeaders(kafka.DeadLetterHeaders(dlqStage, reason, h.rec.Topic, h.rec.Partition, h.rec.Offset))...)}
	if err := w.client.ProduceSync(w.produceCtx, dl).FirstErr(); err != nil {
		w.log.Error("retry relay: dead-letter undecodable record", "offset", h.rec.Offset, "err", err)
		return
	}
	w.m.relayed.WithLabelValues(outcomeDead).Inc()
	r.offsets.finish(h.ticket)
}

// cancel makes the held records of task id due now, so a cancelled
// scheduled or retrying task ends as cancelled at once rather than when it
// would have been due.
func (r *relay) cancel(id string) {
	r.mu.Lock()
	now, found := time.Now(), false
	for i := range r.held {
		if r.held[i].task.GetId() == id {
			r.held[i].fireAt, found = now, true
		}
	}
	if found {
		heap.Init(&r.held)
	}
	r.mu.Unlock()
	if found {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (r *relay) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	r.drop(revoked)
	m := r.offsets.revoke(ctx, revoked, r.w.opts.RevokeGrace)
	if err := commit(ctx, cl, r.offsets, m); err != nil {
		r.w.m.commitErrors.Inc()
		r.w.log.Warn("commit retry offsets before handing partitions over", "err", err)
	}
}

// drop forgets held records of partitions that are no longer ours.
func (r *relay) drop(parts map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := parts[r.w.opts.Topics.TasksRetry]
	r.held = slices.DeleteFunc(r.held, func(h heldTask) bool { return slices.Contains(ps, h.rec.Partition) })
	heap.Init(&r.held)
	r.w.m.held.Set(float64(len(r.held)))
}

// heldHeap orders held records by when they fire.
type heldHeap []heldTask

func (h heldHeap) Len() int           { return len(h) }
func (h heldHeap) Less(i, j int) bool { return h[i].fireAt.Before(h[j].fireAt) }
func (h heldHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)        { *h = append(*h, x.(heldTask)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = heldTask{}
	*h = old[:len(old)-1]
	return x
}
