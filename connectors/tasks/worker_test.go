package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var (
	high   = fleetv1.Priority_PRIORITY_HIGH
	normal = fleetv1.Priority_PRIORITY_NORMAL
	low    = fleetv1.Priority_PRIORITY_LOW
)

// runOrder enqueues n tasks per queue (low first, so fetch order is
// against priority) while a gate task holds the only slot, waits until the
// worker has fetched them all, opens the gate and returns the priorities
// in the order the tasks started.
func runOrder(t *testing.T, policy Policy, n int) []fleetv1.Priority {
	e := newEnv(t)
	g := newGate()
	rec := &recorder{}
	_, reg, _ := e.worker(WorkerOptions{Handlers: map[string]Handler{"gate": g, "rec": rec}, Concurrency: 1, Prefetch: 10 * n, Policy: policy})
	t.Cleanup(g.release)
	e.enqueue(&fleetv1.Task{Type: "gate", Priority: high})
	g.waitStarted(t)
	for _, p := range []fleetv1.Priority{low, normal, high} {
		for i := range n {
			e.enqueue(&fleetv1.Task{Id: fmt.Sprintf("%s-%02d", QueueName(p), i), Type: "rec", Priority: p})
		}
	}
	eventually(t, "the worker fetched every task", func() error {
		if got := gauge(t, reg, "fleetstream_tasks_buffered"); got != float64(3*n) {
			return fmt.Errorf("%v buffered", got)
		}
		return nil
	})
	g.release()
	eventually(t, "every task ran", func() error {
		if got := len(rec.started()); got != 3*n {
			return fmt.Errorf("%d of %d ran", got, 3*n)
		}
		return nil
	})
	var order []fleetv1.Priority
	for _, task := range rec.started() {
		order = append(order, task.Priority)
	}
	return order
}

func TestStrictPriorityRunsHighThenNormalThenLow(t *testing.T) {
	const n = 8
	order := runOrder(t, Strict(), n)
	for i, p := range order {
		want := []fleetv1.Priority{high, normal, low}[i/n]
		if p != want {
			t.Fatalf("task %d of the run order is %s, want %s; order: %v", i, QueueName(p), QueueName(want), order)
		}
	}
}

func TestWeightedPrioritySharesByWeight(t *testing.T) {
	const n = 12
	policy, err := Weighted(3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	order := runOrder(t, policy, n)
	count := map[fleetv1.Priority]int{}
	for _, p := range order[:12] {
		count[p]++
	}
	if count[high] != 6 || count[normal] != 4 || count[low] != 2 {
		t.Fatalf("the first 12 tasks were %d high, %d normal, %d low; want 6, 4, 2 (weights 3:2:1); order: %v", count[high], count[normal], count[low], order)
	}
}

func TestFailingTaskRetriesWithBackoffThenSucceeds(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{fn: func(_ context.Context, task *fleetv1.Task, _ Output) error {
		if task.Attempt < 3 {
			return fmt.Errorf("boom %d", task.Attempt)
		}
		if task.LastError != "boom 2" {
			return Permanent(fmt.Errorf("attempt 3 sees last_error %q, want boom 2", task.LastError))
		}
		return nil
	}}
	base := 200 * time.Millisecond
	_, reg, _ := e.worker(WorkerOptions{Handlers: map[string]Handler{"flaky": rec}, RetryBase: base})
	e.enqueue(&fleetv1.Task{Id: "flaky-1", Type: "flaky"})
	st := e.waitState("flaky-1", fleetv1.TaskState_TASK_STATE_COMPLETED)
	if st.Task.Attempt != 3 {
		t.Errorf("completed on attempt %d, want 3", st.Task.Attempt)
	}
	at := rec.times("flaky-1")
	if len(at) != 3 {
		t.Fatalf("ran %d times, want 3", len(at))
	}
	// Equal jitter: at least half of base·2^(n-1) between attempts.
	if d := at[1].Sub(at[0]); d < base/2 {
		t.Errorf("second attempt %s after the first, want at least %s", d, base/2)
	}
	if d := at[2].Sub(at[1]); d < base {
		t.Errorf("third attempt %s after the second, want at least %s", d, base)
	}
	if got := len(e.records(e.topics.TasksRetry)); got != 2 {
		t.Errorf("retry topic holds %d records, want 2 (one per failed attempt)", got)
	}
	if got := counter(t, reg, "fleetstream_tasks_finished_total", map[string]string{"type": "flaky", "outcome": outcomeRetried}); got != 2 {
		t.Errorf("retried counter %v, want 2", got)
	}
	if got := counter(t, reg, "fleetstream_tasks_finished_total", map[string]string{"type": "flaky", "outcome": outcomeCompleted}); got != 1 {
		t.Errorf("completed counter %v, want 1", got)
	}
}

// deadLetters returns the task records on the DLQ by task id.
func (e *env) deadLetters() map[string]dead {
	out := map[string]dead{}
	for _, r := range e.records(e.topics.DLQ) {
		task := &fleetv1.Task{}
		if err := proto.Unmarshal(r.Value, task); err != nil {
			e.t.Fatalf("DLQ record at %d is no task: %v", r.Offset, err)
		}
		out[task.Id] = dead{task: task, reason: header(r, kafka.HeaderDLQReason), stage: header(r, kafka.HeaderDLQStage), from: header(r, kafka.HeaderDLQTopic)}
	}
	return out
}

type dead struct {
	task                *fleetv1.Task
	reason, stage, from string
}

func TestExhaustedAttemptsGoToTheDLQWithTheReason(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{fn: func(context.Context, *fleetv1.Task, Output) error { return errors.New("api unreachable") }}
	e.worker(WorkerOptions{Handlers: map[string]Handler{"down": rec}})
	e.enqueue(&fleetv1.Task{Id: "down-1", Type: "down", MaxAttempts: 3})
	st := e.waitState("down-1", fleetv1.TaskState_TASK_STATE_DEAD)
	want := "gave up after 3 attempts: api unreachable"
	if st.Reason != want {
		t.Errorf("status reason %q, want %q", st.Reason, want)
	}
	if got := len(rec.times("down-1")); got != 3 {
		t.Errorf("ran %d times, want 3", got)
	}
	d, ok := e.deadLetters()["down-1"]
	if !ok {
		t.Fatal("the task is not on the DLQ")
	}
	if d.reason != want || d.stage != "tasks" || d.from != e.topics.TasksNormal || d.task.Attempt != 3 || d.task.LastError != "api unreachable" {
		t.Errorf("DLQ record: reason %q stage %q from %q attempt %d last_error %q", d.reason, d.stage, d.from, d.task.Attempt, d.task.LastError)
	}
}

func TestPermanentErrorGoesToTheDLQAtOnce(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{fn: func(context.Context, *fleetv1.Task, Output) error {
		return Permanent(errors.New("access denied"))
	}}
	e.worker(WorkerOptions{Handlers: map[string]Handler{"denied": rec}})
	e.enqueue(&fleetv1.Task{Id: "denied-1", Type: "denied"})
	st := e.waitState("denied-1", fleetv1.TaskState_TASK_STATE_DEAD)
	if !strings.Contains(st.Reason, "permanent error in attempt 1: access denied") {
		t.Errorf("reason %q", st.Reason)
	}
	if got := len(rec.times("denied-1")); got != 1 {
		t.Errorf("ran %d times, want 1", got)
	}
	if d := e.deadLetters()["denied-1"]; d.reason != st.Reason {
		t.Errorf("DLQ reason %q, status reason %q", d.reason, st.Reason)
	}
}

func TestRequeuedDeadTaskRunsAgain(t *testing.T) {
	e := newEnv(t)
	var fixed atomic.Bool
	rec := &recorder{fn: func(context.Context, *fleetv1.Task, Output) error {
		if !fixed.Swap(true) {
			return Permanent(errors.New("credentials rejected"))
		}
		return nil
	}}
	e.worker(WorkerOptions{Handlers: map[string]Handler{"creds": rec}, Concurrency: 1})
	e.enqueue(&fleetv1.Task{Id: "creds-1", Type: "creds", Payload: []byte(`{"account":"1"}`)})
	deadSt := e.waitState("creds-1", fleetv1.TaskState_TASK_STATE_DEAD)
	if err := e.queue.Requeue(context.Background(), deadSt.Task); err != nil {
		t.Fatal(err)
	}
	st := e.waitState("creds-1", fleetv1.TaskState_TASK_STATE_COMPLETED)
	if st.Task.Attempt != 1 || string(st.Task.Payload) != `{"account":"1"}` {
		t.Errorf("requeued task completed as attempt %d with payload %s; want attempt 1 (reset) and the same payload", st.Task.Attempt, st.Task.Payload)
	}
	if got := len(rec.times("creds-1")); got != 2 {
		t.Errorf("ran %d times, want 2", got)
	}
}

func TestCancelPendingTaskSkipsIt(t *testing.T) {
	e := newEnv(t)
	g := newGate()
	rec := &recorder{}
	w, _, _ := e.worker(WorkerOptions{Handlers: map[string]Handler{"gate": g, "rec": rec}, Concurrency: 1})
	t.Cleanup(g.release)
	e.enqueue(&fleetv1.Task{Type: "gate"})
	g.waitStarted(t)
	e.enqueue(&fleetv1.Task{Id: "doomed", Type: "rec"}, &fleetv1.Task{Id: "kept", Type: "rec"})
	e.waitState("doomed", fleetv1.TaskState_TASK_STATE_PENDING)
	if err := e.queue.Cancel(context.Background(), "doomed", "not needed any more"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker saw the cancellation", func() error {
		if w.cancels.get("doomed") == nil {
			return errors.New("not yet")
		}
		return nil
	})
	g.release()
	st := e.waitState("doomed", fleetv1.TaskState_TASK_STATE_CANCELLED)
	e.waitState("kept", fleetv1.TaskState_TASK_STATE_COMPLETED)
	if st.Reason != "not needed any more" {
		t.Errorf("reason %q", st.Reason)
	}
	for _, task := range rec.started() {
		if task.Id == "doomed" {
			t.Fatal("the cancelled task ran")
		}
	}
}

func TestCancelRunningTaskCancelsItsContextAndDoesNotRetry(t *testing.T) {
	e := newEnv(t)
	sawCancel := make(chan error, 1)
	running := make(chan struct{})
	rec := &recorder{fn: func(ctx context.Context, _ *fleetv1.Task, _ Output) error {
		close(running)
		<-ctx.Done()
		sawCancel <- context.Cause(ctx)
		return ctx.Err()
	}}
	_, reg, _ := e.worker(WorkerOptions{Handlers: map[string]Handler{"long": rec}})
	e.enqueue(&fleetv1.Task{Id: "long-1", Type: "long", MaxAttempts: 5})
	<-running
	e.waitState("long-1", fleetv1.TaskState_TASK_STATE_ACTIVE)
	if err := e.queue.Cancel(context.Background(), "long-1", "operator stop"); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-sawCancel:
		if !strings.Contains(fmt.Sprint(cause), "operator stop") {
			t.Errorf("the handler's context ended with %v, want the cancellation", cause)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the running task's context was not cancelled")
	}
	st := e.waitState("long-1", fleetv1.TaskState_TASK_STATE_CANCELLED)
	if st.Reason != "operator stop" || st.Task.Attempt != 1 {
		t.Errorf("cancelled status: reason %q attempt %d", st.Reason, st.Task.Attempt)
	}
	if got := counter(t, reg, "fleetstream_tasks_finished_total", map[string]string{"outcome": outcomeCancelled}); got != 1 {
		t.Errorf("cancelled counter %v, want 1", got)
	}
	if n := len(e.records(e.topics.TasksRetry)); n != 0 {
		t.Errorf("a cancelled task went to the retry topic (%d records)", n)
	}
	if got := len(rec.times("long-1")); got != 1 {
		t.Errorf("ran %d times, want 1", got)
	}
}

func TestFanOutRunsOneChildPerRegionAndKind(t *testing.T) {
	e := newEnv(t)
	kinds := []string{"vpc", "subnet", "instance"}
	parent := &recorder{fn: func(ctx context.Context, task *fleetv1.Task, out Output) error {
		var children []*fleetv1.Task
		for _, region := range []string{"eu-west-1", "us-east-1"} {
			for _, kind := range kinds {
				children = append(children, &fleetv1.Task{Type: "collect-kind", Payload: fmt.Appendf(nil, `{"region":%q,"kind":%q}`, region, kind)})
			}
		}
		return out.Enqueue(ctx, children...)
	}}
	child := &recorder{}
	e.worker(WorkerOptions{Handlers: map[string]Handler{"collect-all": parent, "collect-kind": child}})
	e.enqueue(&fleetv1.Task{Id: "all-1", Type: "collect-all", Priority: low})
	e.waitState("all-1", fleetv1.TaskState_TASK_STATE_COMPLETED)
	eventually(t, "every child ran", func() error {
		if n := len(child.started()); n != 6 {
			return fmt.Errorf("%d of 6", n)
		}
		return nil
	})
	seen := map[string]bool{}
	for _, c := range child.started() {
		if c.ParentId != "all-1" || c.Priority != low || !strings.HasPrefix(c.Id, "all-1.") || c.Source != "fanout:collect-all" {
			t.Errorf("child %s: parent %q priority %s source %q", c.Id, c.ParentId, QueueName(c.Priority), c.Source)
		}
		seen[string(c.Payload)] = true
		e.waitState(c.Id, fleetv1.TaskState_TASK_STATE_COMPLETED)
	}
	if len(seen) != 6 {
		t.Errorf("children ran %d distinct payloads, want 6", len(seen))
	}
	list, _ := e.store.List(Filter{ParentID: "all-1"}, 100, "")
	if len(list) != 6 {
		t.Errorf("the status table lists %d children of all-1, want 6", len(list))
	}
}

func TestTaskDueLaterWaitsOnTheRetryTopicAndIsParked(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{}
	e.worker(WorkerOptions{Handlers: map[string]Handler{"later": rec}, ParkAfter: 150 * time.Millisecond})
	due := time.Now().Add(time.Second)
	e.enqueue(&fleetv1.Task{Id: "later-1", Type: "later", NotBefore: timestamppb.New(due)})
	if st, _ := e.store.Get("later-1"); st != nil && st.State != fleetv1.TaskState_TASK_STATE_SCHEDULED {
		t.Errorf("state right after enqueue: %s, want scheduled", StateName(st.State))
	}
	e.waitState("later-1", fleetv1.TaskState_TASK_STATE_COMPLETED)
	at := rec.times("later-1")
	if len(at) != 1 || at[0].Before(due) {
		t.Fatalf("ran at %v, due %v", at, due)
	}
	if n := len(e.records(e.topics.TasksRetry)); n < 3 {
		t.Errorf("retry topic holds %d records; want the submission plus at least two parkings (park every 150ms, due in 1s)", n)
	}
}

func TestExpiredDeadlineGoesToTheDLQ(t *testing.T) {
	e := newEnv(t)
	g := newGate()
	rec := &recorder{}
	e.worker(WorkerOptions{Handlers: map[string]Handler{"gate": g, "rec": rec}, Concurrency: 1})
	t.Cleanup(g.release)
	e.enqueue(&fleetv1.Task{Type: "gate"})
	g.waitStarted(t)
	e.enqueue(&fleetv1.Task{Id: "late", Type: "rec", Deadline: timestamppb.New(time.Now().Add(100 * time.Millisecond))})
	e.waitState("late", fleetv1.TaskState_TASK_STATE_PENDING)
	time.Sleep(150 * time.Millisecond) // let the deadline pass while the gate holds the slot
	g.release()
	st := e.waitState("late", fleetv1.TaskState_TASK_STATE_DEAD)
	if !strings.Contains(st.Reason, "passed before attempt 1 could start") {
		t.Errorf("reason %q", st.Reason)
	}
	if len(rec.started()) != 0 {
		t.Error("the expired task ran")
	}
	if _, ok := e.deadLetters()["late"]; !ok {
		t.Error("the expired task is not on the DLQ")
	}
}

func TestUnknownTypeAndGarbageAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.worker(WorkerOptions{Handlers: map[string]Handler{NoopType: Noop}})
	e.enqueue(&fleetv1.Task{Id: "mystery", Type: "nobody.handles.this"})
	st := e.waitState("mystery", fleetv1.TaskState_TASK_STATE_DEAD)
	if !strings.Contains(st.Reason, `no handler for task type "nobody.handles.this"`) {
		t.Errorf("reason %q", st.Reason)
	}
	if err := e.client.ProduceSync(context.Background(), &kgo.Record{Topic: e.topics.TasksHigh, Key: []byte("x"), Value: []byte("not a task")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the garbage record is on the DLQ", func() error {
		for _, r := range e.records(e.topics.DLQ) {
			if string(r.Value) == "not a task" && strings.Contains(header(r, kafka.HeaderDLQReason), "undecodable task record") {
				return nil
			}
		}
		return errors.New("not yet")
	})
}

func TestCancelScheduledTaskEndsItWithoutWaitingForItsTime(t *testing.T) {
	e := newEnv(t)
	rec := &recorder{}
	e.worker(WorkerOptions{Handlers: map[string]Handler{"later": rec}})
	e.enqueue(&fleetv1.Task{Id: "tomorrow", Type: "later", NotBefore: timestamppb.New(time.Now().Add(24 * time.Hour))})
	e.waitState("tomorrow", fleetv1.TaskState_TASK_STATE_SCHEDULED)
	if err := e.queue.Cancel(context.Background(), "tomorrow", "plan changed"); err != nil {
		t.Fatal(err)
	}
	if st := e.waitState("tomorrow", fleetv1.TaskState_TASK_STATE_CANCELLED); st.Reason != "plan changed" {
		t.Errorf("reason %q", st.Reason)
	}
	if len(rec.started()) != 0 {
		t.Error("the cancelled task ran")
	}
}
