package tasks

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// StatusStore holds the task status table in memory: every task's latest
// TaskStatus and pending cancellation, read from the compacted status and
// cancellation topics, with counts per queue, type and state kept as
// records arrive. The API reads tasks and statistics from it. Returned
// messages are shared: do not modify them.
type StatusStore struct {
	client *kgo.Client
	topics kafka.Topics
	log    *slog.Logger
	// up is set once Run learned how far the topics reach.
	up atomic.Pointer[catchUp]

	mu      sync.RWMutex
	tasks   map[string]*fleetv1.TaskStatus
	cancels map[string]*fleetv1.TaskCancel
	counts  map[countKey]int64
}

type countKey struct {
	queue int
	typ   string
	state fleetv1.TaskState
}

// NewStatusStore reads the status and cancellation topics of topics from
// brokers once Run runs.
func NewStatusStore(brokers []string, topics kafka.Topics, log *slog.Logger, opts ...kgo.Opt) (*StatusStore, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(topics.TasksStatus, topics.TasksCancel),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("task status store: %w", err)
	}
	return &StatusStore{client: cl, topics: topics, log: log,
		tasks: map[string]*fleetv1.TaskStatus{}, cancels: map[string]*fleetv1.TaskCancel{}, counts: map[countKey]int64{}}, nil
}

// statusRetention matches the retention of the status topic
// (internal/kafka): finished tasks older than this are forgotten in memory
// as Kafka forgets them.
const statusRetention = 7 * 24 * time.Hour

// Run reads the topics until ctx ends. It first notes how far they reach,
// so Ready tells when everything written before the start is loaded.
func (s *StatusStore) Run(ctx context.Context) error {
	defer s.client.Close()
	up, err := newCatchUp(ctx, kadm.NewClient(s.client), s.topics.TasksStatus, s.topics.TasksCancel)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("task status store: %w", err)
	}
	s.up.Store(up)
	lastPrune := time.Now()
	for {
		fs := s.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(lastPrune) > time.Hour {
			s.prune(time.Now().Add(-statusRetention))
			lastPrune = time.Now()
		}
		fs.EachError(func(t string, p int32, err error) {
			s.log.Warn("read task status", "topic", t, "partition", p, "err", err)
		})
		s.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if r.Topic == s.topics.TasksCancel {
				s.applyCancel(r)
			} else {
				s.applyStatus(r)
			}
		})
		s.mu.Unlock()
		fs.EachRecord(up.observe)
	}
}

// Ready reports whether the statuses written before the start are loaded.
func (s *StatusStore) Ready() bool {
	up := s.up.Load()
	return up != nil && up.caughtUp()
}

func (s *StatusStore) applyStatus(r *kgo.Record) {
	id := string(r.Key)
	if old := s.tasks[id]; old != nil {
		s.counts[keyOf(old)]--
		delete(s.tasks, id)
	}
	if r.Value == nil {
		return
	}
	st := &fleetv1.TaskStatus{}
	if err := proto.Unmarshal(r.Value, st); err != nil || st.GetTask() == nil {
		s.log.Warn("undecodable task status ignored", "task_id", id, "offset", r.Offset, "err", err)
		return
	}
	s.tasks[id] = st
	s.counts[keyOf(st)]++
}

func (s *StatusStore) applyCancel(r *kgo.Record) {
	id := string(r.Key)
	if r.Value == nil {
		delete(s.cancels, id)
		return
	}
	c := &fleetv1.TaskCancel{}
	if err := proto.Unmarshal(r.Value, c); err != nil {
		s.log.Warn("undecodable cancellation ignored", "task_id", id, "offset", r.Offset, "err", err)
		return
	}
	s.cancels[id] = c
}

// prune forgets finished tasks last updated before cutoff.
func (s *StatusStore) prune(cutoff time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, st := range s.tasks {
		if finished(st.GetState()) && st.GetUpdatedAt().AsTime().Before(cutoff) {
			s.counts[keyOf(st)]--
			delete(s.tasks, id)
			delete(s.cancels, id)
		}
	}
}

func keyOf(st *fleetv1.TaskStatus) countKey {
	return countKey{queue: queueIndex(st.GetTask().GetPriority()), typ: st.GetTask().GetType(), state: st.GetState()}
}

// Get returns a task's status and its cancellation request; nil status
// for an unknown id.
func (s *StatusStore) Get(id string) (*fleetv1.TaskStatus, *fleetv1.TaskCancel) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tasks[id], s.cancels[id]
}

// Filter narrows List; zero fields do not filter.
type Filter struct {
	State    fleetv1.TaskState
	Type     string
	Queue    fleetv1.Priority
	ParentID string
}

func (f Filter) match(st *fleetv1.TaskStatus) bool {
	t := st.GetTask()
	return (f.State == 0 || st.GetState() == f.State) &&
		(f.Type == "" || t.GetType() == f.Type) &&
		(f.Queue == 0 || queueIndex(t.GetPriority()) == queueIndex(f.Queue)) &&
		(f.ParentID == "" || t.GetParentId() == f.ParentID)
}

// List returns up to limit tasks matching f, newest (by enqueued_at, then
// id) first, after the key after ("" for the first page), and the key of
// the last one returned when more may follow.
func (s *StatusStore) List(f Filter, limit int, after string) ([]*fleetv1.TaskStatus, string) {
	type item struct {
		key string
		st  *fleetv1.TaskStatus
	}
	s.mu.RLock()
	items := make([]item, 0, 64)
	for _, st := range s.tasks {
		if !f.match(st) {
			continue
		}
		k := listKey(st)
		if after != "" && k >= after {
			continue
		}
		items = append(items, item{k, st})
	}
	s.mu.RUnlock()
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(b.key, a.key) })
	next := ""
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].key
	}
	out := make([]*fleetv1.TaskStatus, len(items))
	for i, it := range items {
		out[i] = it.st
	}
	return out, next
}

// listKey orders tasks by submission time, then id; fixed-width so that
// strings compare like the times.
func listKey(st *fleetv1.TaskStatus) string {
	return fmt.Sprintf("%020d|%s", st.GetTask().GetEnqueuedAt().AsTime().UnixNano(), st.GetTask().GetId())
}

// Counts returns the number of tasks by queue name, type and state.
func (s *StatusStore) Counts() map[string]map[string]*fleetv1.TaskCounts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string]map[string]*fleetv1.TaskCounts{}
	for k, n := range s.counts {
		if n == 0 {
			continue
		}
		q := queueNames[k.queue]
		if out[q] == nil {
			out[q] = map[string]*fleetv1.TaskCounts{}
		}
		c := out[q][k.typ]
		if c == nil {
			c = &fleetv1.TaskCounts{}
			out[q][k.typ] = c
		}
		addCount(c, k.state, n)
	}
	return out
}

func addCount(c *fleetv1.TaskCounts, state fleetv1.TaskState, n int64) {
	switch state {
	case fleetv1.TaskState_TASK_STATE_PENDING:
		c.Pending += n
	case fleetv1.TaskState_TASK_STATE_SCHEDULED:
		c.Scheduled += n
	case fleetv1.TaskState_TASK_STATE_ACTIVE:
		c.Active += n
	case fleetv1.TaskState_TASK_STATE_RETRYING:
		c.Retrying += n
	case fleetv1.TaskState_TASK_STATE_COMPLETED:
		c.Completed += n
	case fleetv1.TaskState_TASK_STATE_DEAD:
		c.Dead += n
	case fleetv1.TaskState_TASK_STATE_CANCELLED:
		c.Cancelled += n
	}
}

func sumCounts(dst, src *fleetv1.TaskCounts) {
	dst.Pending += src.Pending
	dst.Scheduled += src.Scheduled
	dst.Active += src.Active
	dst.Retrying += src.Retrying
	dst.Completed += src.Completed
	dst.Dead += src.Dead
	dst.Cancelled += src.Cancelled
}
