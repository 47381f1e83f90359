package tasks

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// BenchmarkQueueNoop measures the queue's own overhead: tasks/s of no-op
// tasks through enqueue (status, then task record), a worker (active and
// completed statuses, commits) and back. Run it with a fixed count:
//
//	go test -run '^$' -bench QueueNoop -benchtime 20000x ./connectors/tasks/
//
// On kfake by default; FLEETSTREAM_TEST_KAFKA=host:9092 runs it against a
// real broker (kafkatest).
//
//   - drain: b.N tasks wait on the queue, then a worker starts and runs them
//     all (includes its group join).
//   - flow: a producer enqueues b.N tasks in batches of 500 while the
//     worker runs them; from the first enqueue to the last completion.
func BenchmarkQueueNoop(b *testing.B) {
	for _, conc := range []int{16, 64} {
		b.Run(fmt.Sprintf("drain/concurrency=%d", conc), func(b *testing.B) {
			e := newEnv(b)
			enqueueN(e, b.N)
			b.ResetTimer()
			start := time.Now()
			_, reg, stop := e.worker(WorkerOptions{Handlers: map[string]Handler{NoopType: Noop}, Concurrency: conc, CommitInterval: 200 * time.Millisecond})
			waitCompleted(b, reg, b.N)
			elapsed := time.Since(start)
			b.StopTimer()
			stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
		})
		b.Run(fmt.Sprintf("flow/concurrency=%d", conc), func(b *testing.B) {
			e := newEnv(b)
			_, reg, stop := e.worker(WorkerOptions{Handlers: map[string]Handler{NoopType: Noop}, Concurrency: conc, CommitInterval: 200 * time.Millisecond})
			e.enqueue(&fleetv1.Task{Type: NoopType})
			waitCompleted(b, reg, 1)
			b.ResetTimer()
			start := time.Now()
			go enqueueN(e, b.N)
			waitCompleted(b, reg, b.N+1)
			elapsed := time.Since(start)
			b.StopTimer()
			stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
		})
	}
}

func enqueueN(e *env, n int) {
	const batch = 500
	for done := 0; done < n; done += batch {
		ts := make([]*fleetv1.Task, min(batch, n-done))
		for i := range ts {
			ts[i] = &fleetv1.Task{Type: NoopType, Payload: []byte(`{"bench":true}`)}
		}
		if err := e.queue.Enqueue(context.Background(), ts...); err != nil {
			e.t.Error(err)
			return
		}
	}
}

func waitCompleted(b *testing.B, reg *prometheus.Registry, n int) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for counter(b, reg, "fleetstream_tasks_finished_total", map[string]string{"outcome": outcomeCompleted}) < float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d tasks not completed within 5 minutes", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
