package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// SchedulerOptions configure NewScheduler. Brokers, Topics and Jobs are
// required.
type SchedulerOptions struct {
	Brokers []string
	Topics  kafka.Topics
	Jobs    []Job
	// Group elects the leader. Default Topics.Group(DefaultSchedulerGroup).
	Group string
	// ID names this scheduler in logs and marks. Default host-pid.
	ID string
	// SessionTimeout is how long a silent leader keeps leading before
	// another replica takes over. Default 45s; a stopping leader hands over
	// at once.
	SessionTimeout time.Duration
	KafkaOptions   []kgo.Opt
	Logger         *slog.Logger
	Metrics        *Metrics
}

// Scheduler enqueues the tasks of cron jobs. Run it on several replicas:
// only the leader fires.
type Scheduler struct {
	opts SchedulerOptions
	jobs []compiledJob
	log  *slog.Logger
	m    *Metrics

	leader atomic.Bool

	mu    sync.Mutex
	marks map[string]time.Time
	// consumed is the offset after the last mark read.
	consumed int64
	// stopLead ends the leader loop; leadDone is closed when it returned.
	stopLead context.CancelFunc
	leadDone chan struct{}
	runCtx   context.Context
}

// NewScheduler validates the jobs; Run connects.
func NewScheduler(opts SchedulerOptions) (*Scheduler, error) {
	switch {
	case len(opts.Brokers) == 0:
		return nil, errors.New("scheduler: no Kafka brokers")
	case opts.Topics.TasksSchedule == "":
		return nil, errors.New("scheduler: Topics has no schedule topic: start from kafka.DefaultTopics()")
	}
	jobs, err := compileJobs(opts.Jobs)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	if opts.Group == "" {
		opts.Group = opts.Topics.Group(DefaultSchedulerGroup)
	}
	if opts.ID == "" {
		host, _ := os.Hostname()
		opts.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	return &Scheduler{opts: opts, jobs: jobs, log: opts.Logger.With("scheduler", opts.ID), m: opts.Metrics, marks: map[string]time.Time{}}, nil
}

// Leader reports whether this scheduler currently fires jobs.
func (s *Scheduler) Leader() bool { return s.leader.Load() }

// Run takes part in the leader election until ctx ends, firing jobs while
// it leads; stopping leaves the group so another replica takes over.
func (s *Scheduler) Run(ctx context.Context) error {
	o := s.opts
	opts := []kgo.Opt{
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topics.TasksSchedule),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Every leader reads the marks from the start.
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
	}
	if o.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(o.SessionTimeout))
	}
	s.mu.Lock()
	s.runCtx = ctx
	s.mu.Unlock()
	client, err := kafka.NewClient(o.Brokers, append(opts, o.KafkaOptions...)...)
	if err != nil {
		return fmt.Errorf("scheduler: kafka client: %w", err)
	}
	s.log.Info("scheduler started", "jobs", len(s.jobs), "group", o.Group)
	for {
		fs := client.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			s.log.Warn("read schedule marks", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(s.apply)
	}
	client.Close() // revokes: the leader loop ends before this returns
	return nil
}

// apply notes when a job last fired.
func (s *Scheduler) apply(r *kgo.Record) {
	m := &fleetv1.ScheduleMark{}
	if err := proto.Unmarshal(r.Value, m); err != nil {
		s.log.Warn("undecodable schedule mark ignored", "offset", r.Offset, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if at := m.GetFiredAt().AsTime(); m.GetJob() != "" && at.After(s.marks[m.GetJob()]) {
		s.marks[m.GetJob()] = at
	}
	s.consumed = max(s.consumed, r.Offset+1)
}

// readMarks waits until the marks written before this leadership are read.
func (s *Scheduler) readMarks(ctx context.Context, cl *kgo.Client) error {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, s.opts.Topics.TasksSchedule)
	if err != nil {
		return err
	}
	end, ok := ends.Lookup(s.opts.Topics.TasksSchedule, 0)
	if !ok || end.Err != nil {
		return fmt.Errorf("end offset of %s: %v", s.opts.Topics.TasksSchedule, end.Err)
	}
	for {
		s.mu.Lock()
		done := s.consumed >= end.Offset
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Scheduler) assigned(_ context.Context, cl *kgo.Client, a map[string][]int32) {
	if len(a[s.opts.Topics.TasksSchedule]) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopLead != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	s.stopLead, s.leadDone = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		s.lead(ctx, cl)
	}(s.leadDone)
}

// revoked ends the leader loop and waits for it, so no job fires after the
// partition moved on.
func (s *Scheduler) revoked(_ context.Context, _ *kgo.Client, r map[string][]int32) {
	if len(r[s.opts.Topics.TasksSchedule]) == 0 {
		return
	}
	s.mu.Lock()
	stop, done := s.stopLead, s.leadDone
	s.stopLead, s.leadDone = nil, nil
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// lead fires jobs while this scheduler owns the lease partition.
func (s *Scheduler) lead(ctx context.Context, cl *kgo.Client) {
	queue := NewQueue(cl, s.opts.Topics, "scheduler:"+s.opts.ID)
	if err := s.readMarks(ctx, cl); err != nil {
		if ctx.Err() == nil {
			s.log.Error("scheduler cannot read its marks; not leading until the next rebalance", "err", err)
		}
		return
	}
	s.leader.Store(true)
	s.m.leader.Set(1)
	defer func() {
		s.leader.Store(false)
		s.m.leader.Set(0)
		s.log.Info("scheduler stepped down")
	}()
	s.log.Info("scheduler leading")

	now := time.Now()
	next := make([]time.Time, len(s.jobs))
	s.mu.Lock()
	for i, j := range s.jobs {
		if last, ok := s.marks[j.Name]; ok {
			next[i] = j.schedule.Next(last)
		} else {
			next[i] = j.schedule.Next(now)
		}
	}
	s.mu.Unlock()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		soonest := now.Add(time.Hour)
		for i, j := range s.jobs {
			if !next[i].After(now) {
				s.fire(ctx, queue, j, next[i])
				if ctx.Err() != nil {
					return
				}
				// A leader that took over late fires a missed run once,
				// not once per missed slot.
				next[i] = j.schedule.Next(later(next[i], now))
			}
			if next[i].Before(soonest) {
				soonest = next[i]
			}
		}
		timer.Reset(time.Until(soonest))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// fire enqueues one run of j for slot, then records the mark.
func (s *Scheduler) fire(ctx context.Context, queue *Queue, j compiledJob, slot time.Time) {
	t := &fleetv1.Task{
		Id:          fmt.Sprintf("sched.%s.%d", j.Name, slot.Unix()),
		Type:        j.Type,
		Payload:     j.payload,
		Priority:    j.priority,
		MaxAttempts: j.MaxAttempts,
		Source:      "schedule:" + j.Name,
	}
	if j.deadline > 0 {
		t.Deadline = timestamppb.New(time.Now().Add(j.deadline))
	}
	if err := queue.Enqueue(ctx, t); err != nil {
		if ctx.Err() == nil {
			s.m.fireErrors.WithLabelValues(j.Name).Inc()
			s.log.Error("scheduled job not enqueued; it fires again at its next slot", "job", j.Name, "err", err)
		}
		return
	}
	s.m.fired.WithLabelValues(j.Name).Inc()
	s.log.Debug("job fired", "job", j.Name, "task_id", t.Id, "slot", slot)
	mark, err := proto.Marshal(&fleetv1.ScheduleMark{Job: j.Name, FiredAt: timestamppb.New(slot), TaskId: t.Id, Scheduler: s.opts.ID})
	if err == nil {
		rec := &kgo.Record{Topic: s.opts.Topics.TasksSchedule, Partition: 0, Key: []byte(j.Name), Value: mark,
			Headers: kafka.RecordHeaders(kafka.Headers(&fleetv1.ScheduleMark{}, t.Id))}
		err = queue.client.ProduceSync(ctx, rec).FirstErr()
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("job fired but its mark was not stored; a new leader may fire this slot again", "job", j.Name, "err", err)
	}
	s.mu.Lock()
	if slot.After(s.marks[j.Name]) {
		s.marks[j.Name] = slot
	}
	s.mu.Unlock()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
