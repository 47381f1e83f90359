package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// WorkerOptions configure NewWorker. Brokers, Topics and Handlers are
// required; every other field has the default its comment names.
type WorkerOptions struct {
	Brokers []string
	Topics  kafka.Topics
	// Handlers run tasks by type. A task of a type missing here is
	// dead-lettered: every worker of a group must register every type.
	Handlers map[string]Handler
	// Group is the consumer group of the priority topics. Default
	// Topics.Group(DefaultWorkerGroup).
	Group string
	// RelayGroup is the consumer group of the retry topic. Default
	// Topics.Group(DefaultRelayGroup).
	RelayGroup string
	// ID names this worker in task statuses. Default host-pid.
	ID string
	// Concurrency is how many tasks run at once. Default 16: collectors
	// mostly wait on remote APIs.
	Concurrency int
	// Policy picks the queue of the next task. Default strict.
	Policy Policy
	// Prefetch is how many fetched tasks per queue may wait for a slot
	// before fetching pauses. Default 2×Concurrency; more smooths bursts,
	// less keeps tasks visible as pending (lag) rather than fetched.
	Prefetch int
	// MaxAttempts applies to tasks whose max_attempts is 0. Default 5.
	MaxAttempts uint32
	// RetryBase and RetryMax bound the backoff before a retry:
	// RetryBase·2^(attempt-1), capped at RetryMax, half of it jitter.
	// Defaults 1s and 10m.
	RetryBase, RetryMax time.Duration
	// TaskTimeout bounds one attempt; an attempt that times out is retried.
	// Default 15m; negative means no limit (a hung handler then holds its
	// partition's commit offset back until the worker stops).
	TaskTimeout time.Duration
	// CommitInterval is how often finished offsets are committed. Default
	// 1s; a crash repeats at most this much finished work (plus the tasks
	// after an unfinished one).
	CommitInterval time.Duration
	// SessionTimeout is how long Kafka waits for a silent worker before
	// giving its partitions to others. Default 45s (the minimum a broker
	// accepts is usually 6s).
	SessionTimeout time.Duration
	// ShutdownGrace is how long running tasks may finish after Run's
	// context ends before they are cancelled and left to the next owner.
	// Default 30s.
	ShutdownGrace time.Duration
	// RevokeGrace is how long running tasks of partitions taken away in a
	// rebalance may finish before the offsets are handed over. Default 10s.
	RevokeGrace time.Duration
	// ParkAfter is how long the relay holds a retry record that is not yet
	// due before appending it to the retry topic again. Default 5m.
	ParkAfter time.Duration
	// MaxHeld bounds the retry records the relay holds in memory; past it,
	// it stops fetching. Default 100000.
	MaxHeld int
	// KafkaOptions are added to every Kafka client (e.g. SASL, TLS).
	KafkaOptions []kgo.Opt
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics default to metrics registered nowhere.
	Metrics *Metrics
}

func (o *WorkerOptions) defaults() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("tasks worker: no Kafka brokers")
	case o.Topics.TasksNormal == "":
		return errors.New("tasks worker: Topics has no task topics: start from kafka.DefaultTopics()")
	case len(o.Handlers) == 0:
		return errors.New("tasks worker: no handlers: register at least one task type")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if o.Group == "" {
		o.Group = o.Topics.Group(DefaultWorkerGroup)
	}
	if o.RelayGroup == "" {
		o.RelayGroup = o.Topics.Group(DefaultRelayGroup)
	}
	if o.ID == "" {
		host, _ := os.Hostname()
		o.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 2 * o.Concurrency
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 5
	}
	def(&o.RetryBase, time.Second)
	def(&o.RetryMax, 10*time.Minute)
	def(&o.TaskTimeout, 15*time.Minute)
	def(&o.CommitInterval, time.Second)
	def(&o.ShutdownGrace, 30*time.Second)
	def(&o.RevokeGrace, 10*time.Second)
	def(&o.ParkAfter, 5*time.Minute)
	if o.MaxHeld <= 0 {
		o.MaxHeld = 100000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	return nil
}

// Errors a task's context is cancelled with; context.Cause tells them apart.
var (
	errShutdown       = errors.New("worker shutting down")
	errAttemptTimeout = errors.New("attempt timed out")
	errDeadline       = errors.New("task deadline passed")
)

// cancelRequested is the cause of a task cancelled through the
// cancellation topic.
type cancelRequested struct{ reason string }

func (c cancelRequested) Error() string { return "cancelled: " + c.reason }

// clockSkew is how far in the future a not_before may be and still run
// now on a worker: the relay moves a task when its own clock reaches
// not_before, and a worker whose clock lags a little must not send it back.
const clockSkew = 50 * time.Millisecond

// fetchMaxWait is how long a fetch waits for new records. A queue whose
// buffer is full is paused, and resuming it takes effect only with the next
// fetch: a long wait there stalls the queue (franz-go's default is 5s).
const fetchMaxWait = 100 * time.Millisecond

// maxErrorLen bounds the error text kept in a task and its status.
const maxErrorLen = 2048

// Worker runs tasks from the priority topics: `fleetstream collect`.
type Worker struct {
	opts    WorkerOptions
	log     *slog.Logger
	m       *Metrics
	topics  [3]string
	queueOf map[string]int

	client  *kgo.Client
	queue   *Queue
	offsets *offsets
	cancels *cancels

	// taskCtx parents every attempt; stopTasks ends those still running
	// when the shutdown grace is over.
	taskCtx   context.Context
	stopTasks context.CancelCauseFunc
	// produceCtx bounds writes of outcomes; cancelled last.
	produceCtx context.Context
	tasks      sync.WaitGroup

	mu      sync.Mutex
	buf     [3][]fetched
	paused  [3]bool
	picker  picker
	running map[string]map[*context.CancelCauseFunc]struct{}
	wake    chan struct{}
}

// fetched is a polled record waiting for a slot.
type fetched struct {
	rec    *kgo.Record
	ticket *ticket
}

// NewWorker checks opts; Run connects.
func NewWorker(opts WorkerOptions) (*Worker, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	w := &Worker{
		opts:    opts,
		log:     opts.Logger.With("worker", opts.ID),
		m:       opts.Metrics,
		topics:  queueTopics(opts.Topics),
		queueOf: map[string]int{},
		offsets: newOffsets(),
		picker:  picker{policy: opts.Policy},
		running: map[string]map[*context.CancelCauseFunc]struct{}{},
		wake:    make(chan struct{}, 1),
	}
	for i, t := range w.topics {
		w.queueOf[t] = i
	}
	return w, nil
}

// Run runs tasks until ctx ends, then lets running tasks finish for
// ShutdownGrace, commits what finished and leaves the group. Tasks still
// running after the grace are cancelled and run again by the next owner of
// their partition.
func (w *Worker) Run(ctx context.Context) error {
	o := w.opts
	cancels, err := newCancels(ctx, o.Brokers, o.Topics.TasksCancel, w.log, o.KafkaOptions)
	if err != nil {
		return fmt.Errorf("tasks worker: %w", err)
	}
	w.cancels = cancels
	relay := newRelay(w)
	cancels.onCancel(func(req *fleetv1.TaskCancel) {
		w.cancelRunning(req)
		relay.cancel(req.GetTaskId())
	})
	bg, stopBg := context.WithCancel(context.Background())
	var bgDone sync.WaitGroup
	defer func() { stopBg(); bgDone.Wait() }()
	bgDone.Go(func() { cancels.run(bg) })
	if err := cancels.wait(ctx); err != nil {
		return nil // stopped before it started
	}

	groupOpts := []kgo.Opt{
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(w.topics[:]...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { w.offsets.assign(a) }),
		kgo.OnPartitionsRevoked(w.revoked),
		kgo.OnPartitionsLost(w.lost),
		kgo.FetchMaxWait(fetchMaxWait),
	}
	if o.SessionTimeout > 0 {
		groupOpts = append(groupOpts, kgo.SessionTimeout(o.SessionTimeout))
	}
	client, err := kafka.NewClient(o.Brokers, append(groupOpts, o.KafkaOptions...)...)
	if err != nil {
		return fmt.Errorf("tasks worker: kafka client: %w", err)
	}
	w.client = client
	w.queue = NewQueue(client, o.Topics, o.ID)
	var stopProduce context.CancelFunc
	w.produceCtx, stopProduce = context.WithCancel(context.Background())
	defer stopProduce()
	w.taskCtx, w.stopTasks = context.WithCancelCause(context.Background())
	defer w.stopTasks(nil)

	// A relay that fails stops the worker: retries would pile up unseen.
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	relayErr := make(chan error, 1)
	go func() {
		err := relay.run(ctx)
		if err != nil {
			stopRun()
		}
		relayErr <- err
	}()

	var loops sync.WaitGroup
	loops.Go(func() { w.poll(ctx) })
	loops.Go(func() { w.commitLoop(ctx) })
	w.log.Info("task worker started", "group", o.Group, "concurrency", o.Concurrency, "policy", o.Policy.String(), "types", slices.Sorted(maps.Keys(o.Handlers)))
	w.dispatch(ctx)
	loops.Wait()
	// The relay produces through client: it stops first.
	err = <-relayErr

	w.drain(stopProduce)
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Completed statuses are written asynchronously: their offsets are
	// released by the acknowledgements Flush waits for.
	if ferr := client.Flush(fctx); ferr != nil {
		w.log.Warn("flush task statuses at shutdown", "err", ferr)
	}
	if cerr := commit(fctx, client, w.offsets, w.offsets.uncommitted()); cerr != nil {
		w.log.Warn("final commit failed; finished tasks after the last commit run again", "err", cerr)
	}
	client.Close()
	w.log.Info("task worker stopped")
	return err
}

// drain waits for running tasks, cancels them after the grace, and gives
// their outcome writes a last chance before cancelling those too.
func (w *Worker) drain(stopProduce context.CancelFunc) {
	if waitTimeout(&w.tasks, w.opts.ShutdownGrace) {
		return
	}
	w.log.Warn("cancelling tasks still running after the shutdown grace; the next worker runs them again", "grace", w.opts.ShutdownGrace)
	w.stopTasks(errShutdown)
	if waitTimeout(&w.tasks, 10*time.Second) {
		return
	}
	stopProduce()
	w.tasks.Wait()
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// poll fetches records into the per-queue buffers, pausing a queue's topic
// while its buffer is full.
func (w *Worker) poll(ctx context.Context) {
	for {
		fs := w.client.PollRecords(ctx, 10000)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			w.log.Warn("fetch tasks", "topic", t, "partition", p, "err", err)
		})
		got := false
		w.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			tk := w.offsets.take(r)
			if tk == nil {
				return // revoked while polling: the new owner reads it
			}
			q := w.queueOf[r.Topic]
			w.buf[q] = append(w.buf[q], fetched{rec: r, ticket: tk})
			got = true
		})
		for q := range w.buf {
			if len(w.buf[q]) >= w.opts.Prefetch && !w.paused[q] {
				w.client.PauseFetchTopics(w.topics[q])
				w.paused[q] = true
			}
			w.m.buffered.WithLabelValues(queueNames[q]).Set(float64(len(w.buf[q])))
		}
		w.mu.Unlock()
		if got {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// dispatch starts buffered tasks as slots free up, until ctx ends.
func (w *Worker) dispatch(ctx context.Context) {
	slots := make(chan struct{}, w.opts.Concurrency)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		f, ok := w.next(ctx)
		if !ok {
			return
		}
		w.tasks.Go(func() {
			defer func() { <-slots }()
			w.handle(f)
		})
	}
}

// next takes the next task by the policy, waiting for one.
func (w *Worker) next(ctx context.Context) (fetched, bool) {
	for {
		w.mu.Lock()
		var ready [3]bool
		for q := range w.buf {
			ready[q] = len(w.buf[q]) > 0
		}
		if q := w.picker.pick(ready); q >= 0 {
			f := w.buf[q][0]
			w.buf[q][0] = fetched{}
			w.buf[q] = w.buf[q][1:]
			if w.paused[q] && len(w.buf[q]) <= w.opts.Prefetch/2 {
				w.client.ResumeFetchTopics(w.topics[q])
				w.paused[q] = false
			}
			w.m.buffered.WithLabelValues(queueNames[q]).Set(float64(len(w.buf[q])))
			w.mu.Unlock()
			return f, true
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-ctx.Done():
			return fetched{}, false
		}
	}
}

func (w *Worker) commitLoop(ctx context.Context) {
	t := time.NewTicker(w.opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := commit(ctx, w.client, w.offsets, w.offsets.uncommitted()); err != nil && ctx.Err() == nil {
			w.m.commitErrors.Inc()
			w.log.Warn("commit task offsets", "err", err)
		}
	}
}

// revoked hands partitions over: buffered tasks of them are dropped (the
// new owner reads them), running ones get RevokeGrace to finish, then what
// finished is committed.
func (w *Worker) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	w.dropBuffered(revoked)
	m := w.offsets.revoke(ctx, revoked, w.opts.RevokeGrace)
	if err := commit(ctx, cl, w.offsets, m); err != nil {
		w.m.commitErrors.Inc()
		w.log.Warn("commit before handing partitions over; their finished tasks run again", "err", err)
	}
}

func (w *Worker) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	w.dropBuffered(lost)
	w.offsets.lose(lost)
}

func (w *Worker) dropBuffered(parts map[string][]int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for q, topic := range w.topics {
		ps := parts[topic]
		if len(ps) == 0 {
			continue
		}
		w.buf[q] = slices.DeleteFunc(w.buf[q], func(f fetched) bool { return slices.Contains(ps, f.rec.Partition) })
		w.m.buffered.WithLabelValues(queueNames[q]).Set(float64(len(w.buf[q])))
	}
}

// cancelRunning cancels the running attempts of a task (on every worker
// that reads the request; only the one running it has anything to do).
func (w *Worker) cancelRunning(req *fleetv1.TaskCancel) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for cancel := range w.running[req.GetTaskId()] {
		(*cancel)(cancelRequested{reason: req.GetReason()})
	}
}

// handle decides what to do with one fetched task and does it.
func (w *Worker) handle(f fetched) {
	if !w.offsets.start(f.ticket) {
		return
	}
	q := w.queueOf[f.rec.Topic]
	t := &fleetv1.Task{}
	if err := proto.Unmarshal(f.rec.Value, t); err != nil || t.GetId() == "" || t.GetType() == "" {
		w.deadLetterRecord(f, q, fmt.Sprintf("undecodable task record (want a fleetstream.v1.Task with id and type): %v", err))
		return
	}
	trace := headerValue(f.rec, kafka.HeaderTraceID)
	if trace == "" {
		trace = t.Id
	}
	now := time.Now()
	switch {
	case w.cancels.get(t.Id) != nil:
		w.endCancelled(f, q, t, trace, w.cancels.get(t.Id).GetReason(), 0)
	case t.Deadline != nil && !t.Deadline.AsTime().After(now):
		w.endDead(f, q, t, trace, fmt.Sprintf("deadline %s passed before attempt %d could start", t.Deadline.AsTime().Format(time.RFC3339), t.Attempt+1), 0)
	case t.NotBefore != nil && t.NotBefore.AsTime().After(now.Add(clockSkew)):
		w.handOn(f, q, t, trace, fleetv1.TaskState_TASK_STATE_SCHEDULED, outcomeScheduled)
	case w.opts.Handlers[t.Type] == nil:
		w.endDead(f, q, t, trace, fmt.Sprintf("no handler for task type %q on worker %s (it runs %s)", t.Type, w.opts.ID, strings.Join(slices.Sorted(maps.Keys(w.opts.Handlers)), ", ")), 0)
	default:
		w.runTask(f, q, t, trace, w.opts.Handlers[t.Type])
	}
}

func (w *Worker) runTask(f fetched, q int, t *fleetv1.Task, trace string, h Handler) {
	t.Attempt++
	ctx, cancel := context.WithCancelCause(w.taskCtx)
	defer cancel(nil)
	if w.opts.TaskTimeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, w.opts.TaskTimeout, errAttemptTimeout)
		defer stop()
	}
	if t.Deadline != nil {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadlineCause(ctx, t.Deadline.AsTime(), errDeadline)
		defer stop()
	}
	ctx = withTrace(ctx, trace)
	w.register(t.Id, &cancel)
	defer w.unregister(t.Id, &cancel)
	// A request that arrived between handle's check and register.
	if c := w.cancels.get(t.Id); c != nil {
		cancel(cancelRequested{reason: c.GetReason()})
	}

	start := time.Now()
	due := t.GetEnqueuedAt().AsTime()
	if nb := t.GetNotBefore(); nb != nil && nb.AsTime().After(due) {
		due = nb.AsTime()
	}
	w.m.waitSeconds.WithLabelValues(queueNames[q]).Observe(max(0, start.Sub(due).Seconds()))
	if rec, err := w.queue.statusRecord(&fleetv1.TaskStatus{Task: t, State: fleetv1.TaskState_TASK_STATE_ACTIVE, StartedAt: timestamppb.New(start)}, trace); err == nil {
		w.client.Produce(w.produceCtx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				w.log.Warn("store active status", "task_id", t.Id, "err", err)
			}
		})
	}
	w.m.active.WithLabelValues(t.Type).Inc()
	err := w.call(ctx, h, t)
	w.m.active.WithLabelValues(t.Type).Dec()
	run := time.Since(start)
	cause := context.Cause(ctx)
	var cr cancelRequested
	switch {
	case err == nil:
		w.endCompleted(f, q, t, trace, start, run)
	case errors.Is(cause, errShutdown):
		w.log.Info("task abandoned at shutdown; the next worker runs it again", "task_id", t.Id, "type", t.Type)
	case errors.As(cause, &cr):
		w.endCancelled(f, q, t, trace, cr.reason, run)
	case errors.Is(cause, errDeadline):
		w.endDead(f, q, t, trace, fmt.Sprintf("deadline passed during attempt %d: %v", t.Attempt, err), run)
	case IsPermanent(err):
		w.endDead(f, q, t, trace, fmt.Sprintf("permanent error in attempt %d: %v", t.Attempt, err), run)
	case t.Attempt >= w.maxAttempts(t):
		w.endDead(f, q, t, trace, fmt.Sprintf("gave up after %d attempts: %v", t.Attempt, err), run)
	default:
		if errors.Is(cause, errAttemptTimeout) {
			err = fmt.Errorf("attempt timed out after %s: %w", w.opts.TaskTimeout, err)
		}
		w.retry(f, q, t, trace, err, run)
	}
}

func (w *Worker) maxAttempts(t *fleetv1.Task) uint32 {
	if t.MaxAttempts > 0 {
		return t.MaxAttempts
	}
	return w.opts.MaxAttempts
}

// call runs the handler, turning a panic into an error (retried: a panic
// is as likely to come from bad input as from a passing fault).
func (w *Worker) call(ctx context.Context, h Handler, t *fleetv1.Task) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("task handler panicked", "task_id", t.Id, "type", t.Type, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler of %s panicked: %v", t.Type, p)
		}
	}()
	return h.Run(ctx, t, output{w: w, parent: t})
}

func (w *Worker) register(id string, cancel *context.CancelCauseFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[id] == nil {
		w.running[id] = map[*context.CancelCauseFunc]struct{}{}
	}
	w.running[id][cancel] = struct{}{}
}

func (w *Worker) unregister(id string, cancel *context.CancelCauseFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.running[id], cancel)
	if len(w.running[id]) == 0 {
		delete(w.running, id)
	}
}

// endCompleted stores the COMPLETED status without waiting: the offset is
// released once Kafka acknowledged it, while the slot is free at once.
func (w *Worker) endCompleted(f fetched, q int, t *fleetv1.Task, trace string, start time.Time, run time.Duration) {
	w.count(q, t, outcomeCompleted, run)
	rec, err := w.queue.statusRecord(&fleetv1.TaskStatus{Task: t, State: fleetv1.TaskState_TASK_STATE_COMPLETED,
		StartedAt: timestamppb.New(start), RunSeconds: run.Seconds()}, trace)
	if err != nil {
		w.log.Error("task completed but its status cannot be stored; it runs again", "task_id", t.Id, "err", err)
		return
	}
	w.client.Produce(w.produceCtx, rec, func(_ *kgo.Record, err error) {
		if err != nil {
			w.log.Error("task completed but its status was not stored; it runs again after a restart", "task_id", t.Id, "err", err)
			return
		}
		w.offsets.finish(f.ticket)
	})
}

// retry hands a failed attempt to the retry topic with its backoff.
func (w *Worker) retry(f fetched, q int, t *fleetv1.Task, trace string, err error, run time.Duration) {
	wait := backoff(t.Attempt, w.opts.RetryBase, w.opts.RetryMax)
	nb := time.Now().Add(wait)
	if t.Deadline != nil && nb.After(t.Deadline.AsTime()) {
		w.endDead(f, q, t, trace, fmt.Sprintf("attempt %d failed and the next one (in %s) would start after the deadline: %v", t.Attempt, wait.Round(time.Millisecond), err), run)
		return
	}
	t.LastError = truncate(err.Error())
	t.NotBefore = timestamppb.New(nb)
	w.log.Debug("task attempt failed; retrying", "task_id", t.Id, "type", t.Type, "attempt", t.Attempt, "backoff", wait, "err", err)
	w.recordRun(t, outcomeRetried, run)
	w.handOn(f, q, t, trace, fleetv1.TaskState_TASK_STATE_RETRYING, outcomeRetried)
}

// handOn writes the status, then the task to the retry topic, and only then
// releases the offset.
func (w *Worker) handOn(f fetched, q int, t *fleetv1.Task, trace string, state fleetv1.TaskState, outcome string) {
	if err := w.queue.writeStatus(w.produceCtx, trace, &fleetv1.TaskStatus{Task: t, State: state}); err != nil {
		w.log.Error("hand task to the retry topic: store status; it runs again after a restart", "task_id", t.Id, "err", err)
		return
	}
	rec, err := taskRecord(w.opts.Topics.TasksRetry, t, trace)
	if err == nil {
		err = w.client.ProduceSync(w.produceCtx, rec).FirstErr()
	}
	if err != nil {
		w.log.Error("hand task to the retry topic; it runs again after a restart", "task_id", t.Id, "err", err)
		return
	}
	w.m.finished.WithLabelValues(queueNames[q], t.Type, outcome).Inc()
	w.offsets.finish(f.ticket)
}

func (w *Worker) endDead(f fetched, q int, t *fleetv1.Task, trace, reason string, run time.Duration) {
	reason = truncate(reason)
	w.log.Warn("task dead-lettered", "task_id", t.Id, "type", t.Type, "attempt", t.Attempt, "reason", reason)
	// The dead letter first: a DEAD status promises it is there.
	dl, err := deadLetter(w.opts.Topics.DLQ, t, reason, f.rec, trace)
	if err == nil {
		err = w.client.ProduceSync(w.produceCtx, dl).FirstErr()
	}
	if err == nil {
		err = w.queue.writeStatus(w.produceCtx, trace, &fleetv1.TaskStatus{Task: t, State: fleetv1.TaskState_TASK_STATE_DEAD, Reason: reason, RunSeconds: run.Seconds()})
	}
	if err != nil {
		w.log.Error("dead-letter task; it runs again after a restart", "task_id", t.Id, "err", err)
		return
	}
	w.count(q, t, outcomeDead, run)
	w.offsets.finish(f.ticket)
}

func (w *Worker) endCancelled(f fetched, q int, t *fleetv1.Task, trace, reason string, run time.Duration) {
	if err := w.queue.writeStatus(w.produceCtx, trace, &fleetv1.TaskStatus{Task: t, State: fleetv1.TaskState_TASK_STATE_CANCELLED, Reason: reason, RunSeconds: run.Seconds()}); err != nil {
		w.log.Error("store cancelled status; the task is skipped again after a restart", "task_id", t.Id, "err", err)
		return
	}
	w.log.Info("task cancelled", "task_id", t.Id, "type", t.Type, "reason", reason, "was_running", run > 0)
	w.count(q, t, outcomeCancelled, run)
	w.offsets.finish(f.ticket)
}

// deadLetterRecord sends a record that is not a task to the DLQ as is.
func (w *Worker) deadLetterRecord(f fetched, q int, reason string) {
	h := kafka.DeadLetterHeaders(dlqStage, reason, f.rec.Topic, f.rec.Partition, f.rec.Offset)
	rec := &kgo.Record{Topic: w.opts.Topics.DLQ, Key: f.rec.Key, Value: f.rec.Value, Headers: append(slices.Clone(f.rec.Headers), kafka.RecordHeaders(h)...)}
	if err := w.client.ProduceSync(w.produceCtx, rec).FirstErr(); err != nil {
		w.log.Error("dead-letter undecodable task record", "topic", f.rec.Topic, "offset", f.rec.Offset, "err", err)
		return
	}
	w.log.Warn("undecodable task record dead-lettered", "topic", f.rec.Topic, "partition", f.rec.Partition, "offset", f.rec.Offset, "reason", reason)
	w.m.finished.WithLabelValues(queueNames[q], "", outcomeDead).Inc()
	w.offsets.finish(f.ticket)
}

func (w *Worker) count(q int, t *fleetv1.Task, outcome string, run time.Duration) {
	w.m.finished.WithLabelValues(queueNames[q], t.Type, outcome).Inc()
	w.recordRun(t, outcome, run)
}

func (w *Worker) recordRun(t *fleetv1.Task, outcome string, run time.Duration) {
	if run > 0 {
		w.m.runSeconds.WithLabelValues(t.Type, outcome).Observe(run.Seconds())
	}
}

func truncate(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	return s[:maxErrorLen] + "…"
}
