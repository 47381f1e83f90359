package sim

import (
	"container/heap"
	"sync"
	"time"
)

// The fleet keeps one pending call per host and kind in a queue ordered by
// due time: a scheduler hands due calls to a fixed set of workers, which
// bounds the requests in flight whatever the fleet's size, and workers put
// each host's next call back when theirs is done. When the workers cannot
// keep up, calls start late (the report's lag) rather than piling up.

// kind is what a call sends: a discovery type (its index in
// AgentDiscoveryTypes) or a heartbeat.
type kind uint8

const heartbeat kind = docCount

type call struct {
	due  time.Time
	host int
	kind kind
}

// calls is a min-heap by due time; at equal times discoveries go first,
// host_discovery leading, so a host is registered before its first
// heartbeat arrives.
type calls []call

func (c calls) Len() int { return len(c) }
func (c calls) Less(i, j int) bool {
	if !c[i].due.Equal(c[j].due) {
		return c[i].due.Before(c[j].due)
	}
	return c[i].kind < c[j].kind
}
func (c calls) Swap(i, j int) { c[i], c[j] = c[j], c[i] }
func (c *calls) Push(x any)   { *c = append(*c, x.(call)) }
func (c *calls) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

// queue is the calls heap shared by the scheduler and the workers.
type queue struct {
	mu    sync.Mutex
	calls calls
	// wake tells the scheduler that an earlier call may have arrived.
	wake chan struct{}
}

func newQueue(capacity int) *queue {
	return &queue{calls: make(calls, 0, capacity), wake: make(chan struct{}, 1)}
}

func (q *queue) push(c call) {
	q.mu.Lock()
	heap.Push(&q.calls, c)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// popDue returns the first call if it is due at now; otherwise how long
// until it is (or -1 if the queue is empty).
func (q *queue) popDue(now time.Time) (c call, wait time.Duration, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.calls) == 0 {
		return call{}, -1, false
	}
	if wait := q.calls[0].due.Sub(now); wait > 0 {
		return call{}, wait, false
	}
	return heap.Pop(&q.calls).(call), 0, true
}
