package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// env is a Kafka with the task topics, a queue to submit through and a
// status store to watch tasks with.
type env struct {
	t      testing.TB
	seeds  []string
	topics kafka.Topics
	client *kgo.Client
	queue  *Queue
	store  *StatusStore
}

func newEnv(t testing.TB) *env {
	t.Helper()
	topics := kafka.DefaultTopics()
	topics.Partitions = 3
	topics = kafkatest.Namespace(t, topics)
	seeds := kafkatest.Cluster(t, topics)
	client, err := kafka.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	e := &env{t: t, seeds: seeds, topics: topics, client: client, queue: NewQueue(client, topics, "test")}
	ctx, cancel := context.WithCancel(context.Background())
	store, err := NewStatusStore(seeds, topics, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := store.Run(ctx); err != nil {
			t.Errorf("status store: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	e.store = store
	return e
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// worker starts a worker with test-friendly timings; it stops when the
// test ends (or when the returned stop is called).
func (e *env) worker(opts WorkerOptions) (w *Worker, reg *prometheus.Registry, stop func()) {
	e.t.Helper()
	opts.Brokers, opts.Topics = e.seeds, e.topics
	if opts.Logger == nil {
		opts.Logger = testLogger(e.t)
	}
	reg = prometheus.NewRegistry()
	opts.Metrics = NewMetrics(reg)
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&opts.CommitInterval, 50*time.Millisecond)
	set(&opts.RetryBase, 20*time.Millisecond)
	set(&opts.RetryMax, time.Second)
	set(&opts.ShutdownGrace, 2*time.Second)
	set(&opts.RevokeGrace, time.Second)
	w, err := NewWorker(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("worker stopped with %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return w, reg, stop
}

func (e *env) enqueue(ts ...*fleetv1.Task) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.queue.Enqueue(ctx, ts...); err != nil {
		e.t.Fatal(err)
	}
}

// waitState waits until the status table shows task id in state.
func (e *env) waitState(id string, state fleetv1.TaskState) *fleetv1.TaskStatus {
	e.t.Helper()
	var st *fleetv1.TaskStatus
	eventually(e.t, fmt.Sprintf("task %s is %s", id, StateName(state)), func() error {
		st, _ = e.store.Get(id)
		if st.GetState() != state {
			return fmt.Errorf("state %s (%s)", StateName(st.GetState()), st.GetReason())
		}
		return nil
	})
	return st
}

// records returns what topic holds now.
func (e *env) records(topic string) []*kgo.Record {
	return kafkatest.ReadAll(e.t, e.seeds, topic)
}

func eventually(t testing.TB, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 30s", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gauge sums a gauge's series in reg.
func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return sumMetric(t, reg, name, func(m *dto.Metric) float64 { return m.GetGauge().GetValue() })
}

// counter sums a counter's series in reg whose labels include match.
func counter(t testing.TB, reg *prometheus.Registry, name string, match map[string]string) float64 {
	t.Helper()
	return sumMetric(t, reg, name, func(m *dto.Metric) float64 {
		for _, l := range m.GetLabel() {
			if v, ok := match[l.GetName()]; ok && v != l.GetValue() {
				return 0
			}
		}
		return m.GetCounter().GetValue()
	})
}

func sumMetric(t testing.TB, reg *prometheus.Registry, name string, value func(*dto.Metric) float64) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += value(m)
			}
		}
	}
	return sum
}

// recorder is a handler that notes which tasks started, in order, and
// runs fn (nil: succeed).
type recorder struct {
	mu     sync.Mutex
	starts []*fleetv1.Task
	at     map[string][]time.Time
	fn     func(ctx context.Context, t *fleetv1.Task, out Output) error
}

func (r *recorder) Run(ctx context.Context, t *fleetv1.Task, out Output) error {
	r.mu.Lock()
	r.starts = append(r.starts, t)
	if r.at == nil {
		r.at = map[string][]time.Time{}
	}
	r.at[t.Id] = append(r.at[t.Id], time.Now())
	r.mu.Unlock()
	if r.fn != nil {
		return r.fn(ctx, t, out)
	}
	return nil
}

func (r *recorder) started() []*fleetv1.Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*fleetv1.Task(nil), r.starts...)
}

func (r *recorder) times(id string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.at[id]...)
}

// gate is a handler that blocks until opened (or its context ends).
type gate struct {
	started chan struct{}
	open    chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{started: make(chan struct{}, 100), open: make(chan struct{})} }

func (g *gate) Run(ctx context.Context, _ *fleetv1.Task, _ Output) error {
	g.started <- struct{}{}
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

func (g *gate) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-g.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the gate task did not start within 30s")
	}
}

func header(r *kgo.Record, key string) string { return headerValue(r, key) }
