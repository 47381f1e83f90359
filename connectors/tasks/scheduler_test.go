package tasks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func (e *env) scheduler(jobs []Job, id string) (*Scheduler, *prometheus.Registry, func()) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	s, err := NewScheduler(SchedulerOptions{Brokers: e.seeds, Topics: e.topics, Jobs: jobs, ID: id, Logger: testLogger(e.t), Metrics: NewMetrics(reg)})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("scheduler %s: %v", id, err)
			}
		})
	}
	e.t.Cleanup(stop)
	return s, reg, stop
}

func TestOnlyTheLeaderSchedulesAndAnotherTakesOver(t *testing.T) {
	e := newEnv(t)
	jobs := []Job{{Name: "tick", Spec: "@every 1s", Type: "tick", Priority: "low", Payload: map[string]any{"n": 1}}}
	a, regA, stopA := e.scheduler(jobs, "a")
	b, regB, stopB := e.scheduler(jobs, "b")
	fired := func(reg *prometheus.Registry) float64 {
		return counter(t, reg, "fleetstream_scheduler_fired_total", map[string]string{"job": "tick"})
	}
	eventually(t, "one scheduler leads", func() error {
		if a.Leader() == b.Leader() {
			return fmt.Errorf("a leads: %v, b leads: %v", a.Leader(), b.Leader())
		}
		return nil
	})
	leader, follower, regL, regF, stopLeader := a, b, regA, regB, stopA
	if b.Leader() {
		leader, follower, regL, regF, stopLeader = b, a, regB, regA, stopB
	}
	eventually(t, "the leader fires twice", func() error {
		if n := fired(regL); n < 2 {
			return fmt.Errorf("fired %v times", n)
		}
		return nil
	})
	if n := fired(regF); n != 0 || follower.Leader() {
		t.Fatalf("the follower fired %v times (leader: %v)", n, follower.Leader())
	}
	stopLeader()
	if leader.Leader() {
		t.Fatal("a stopped scheduler still claims to lead")
	}
	eventually(t, "the other scheduler takes over and fires twice", func() error {
		if n := fired(regF); !follower.Leader() || n < 2 {
			return fmt.Errorf("leads: %v, fired %v times", follower.Leader(), n)
		}
		return nil
	})

	total := fired(regL) + fired(regF)
	recs := e.records(e.topics.TasksLow)
	seen := map[string]bool{}
	for _, r := range recs {
		task := &fleetv1.Task{}
		if err := proto.Unmarshal(r.Value, task); err != nil {
			t.Fatal(err)
		}
		if seen[task.Id] {
			t.Errorf("slot %s enqueued twice", task.Id)
		}
		seen[task.Id] = true
		if !strings.HasPrefix(task.Id, "sched.tick.") || task.Type != "tick" || string(task.Payload) != `{"n":1}` || task.Source != "schedule:tick" {
			t.Errorf("scheduled task %+v", task)
		}
	}
	if len(recs) < int(total) {
		t.Errorf("%d tasks on the queue, the schedulers fired %v", len(recs), total)
	}
}
