package tasks

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// offsets tracks, per partition, the records a consumer took but has not
// finished, so that it commits only up to the lowest unfinished offset:
// with tasks running concurrently, a later record often finishes before an
// earlier one, and committing past the earlier one would lose it on a crash.
type offsets struct {
	mu    sync.Mutex
	parts map[topicPartition]*partition
}

type topicPartition struct {
	topic     string
	partition int32
}

type partition struct {
	// inflight holds the taken records in offset order; finished ones are
	// dropped from the front.
	inflight []*ticket
	// next is the offset to commit (the next one to consume) once every
	// record before it finished; -1 until one did.
	next, committed int64
	epoch           int32
	revoked         bool
}

// ticket is one taken record.
type ticket struct {
	part    *partition
	offset  int64
	epoch   int32
	started bool
	done    bool
}

func newOffsets() *offsets { return &offsets{parts: map[topicPartition]*partition{}} }

// assign starts tracking newly assigned partitions.
func (o *offsets) assign(assigned map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for topic, ps := range assigned {
		for _, p := range ps {
			o.parts[topicPartition{topic, p}] = &partition{next: -1, committed: -1}
		}
	}
}

// take registers a polled record; nil means its partition is not (or no
// longer) ours and the record must be dropped.
func (o *offsets) take(r *kgo.Record) *ticket {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.parts[topicPartition{r.Topic, r.Partition}]
	if p == nil {
		return nil
	}
	t := &ticket{part: p, offset: r.Offset, epoch: r.LeaderEpoch}
	p.inflight = append(p.inflight, t)
	return t
}

// start marks a ticket as being worked on; false means its partition was
// revoked meanwhile and the record must not run here.
func (o *offsets) start(t *ticket) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.part.revoked {
		return false
	}
	t.started = true
	return true
}

// finish marks a ticket done and advances its partition's commit offset
// past every finished record at the front.
func (o *offsets) finish(t *ticket) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	p := t.part
	i := 0
	for ; i < len(p.inflight) && p.inflight[i].done; i++ {
		p.next, p.epoch = p.inflight[i].offset+1, p.inflight[i].epoch
	}
	if i > 0 {
		p.inflight = append(p.inflight[:0], p.inflight[i:]...)
	}
}

// uncommitted returns the commit offsets that advanced since the last
// commit of the tracked partitions.
func (o *offsets) uncommitted() map[string]map[int32]kgo.EpochOffset {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	for tp, p := range o.parts {
		if p.next > p.committed {
			addOffset(out, tp, kgo.EpochOffset{Epoch: p.epoch, Offset: p.next})
		}
	}
	return out
}

// committed records a successful commit.
func (o *offsets) committed(m map[string]map[int32]kgo.EpochOffset) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for topic, ps := range m {
		for partition, eo := range ps {
			if p := o.parts[topicPartition{topic, partition}]; p != nil && eo.Offset > p.committed {
				p.committed = eo.Offset
			}
		}
	}
}

// revoke stops tracking partitions: records not started yet will not run;
// it waits up to grace for the started ones to finish and returns the
// offsets to commit before giving the partitions up.
func (o *offsets) revoke(ctx context.Context, revoked map[string][]int32, grace time.Duration) map[string]map[int32]kgo.EpochOffset {
	o.mu.Lock()
	var parts []*partition
	for topic, ps := range revoked {
		for _, p := range ps {
			if part := o.parts[topicPartition{topic, p}]; part != nil {
				part.revoked = true
				parts = append(parts, part)
			}
		}
	}
	o.mu.Unlock()

	deadline := time.Now().Add(grace)
	for o.running(parts) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	for topic, ps := range revoked {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if part := o.parts[tp]; part != nil {
				if part.next > part.committed {
					addOffset(out, tp, kgo.EpochOffset{Epoch: part.epoch, Offset: part.next})
				}
				delete(o.parts, tp)
			}
		}
	}
	return out
}

// lose forgets partitions without committing (the group session is gone).
func (o *offsets) lose(lost map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for topic, ps := range lost {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if part := o.parts[tp]; part != nil {
				part.revoked = true
				delete(o.parts, tp)
			}
		}
	}
}

// running reports whether any started record of parts is unfinished.
func (o *offsets) running(parts []*partition) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range parts {
		for _, t := range p.inflight {
			if t.started && !t.done {
				return true
			}
		}
	}
	return false
}

// all returns every tracked partition, for the final commit.
func (o *offsets) all() map[string][]int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string][]int32{}
	for tp := range o.parts {
		out[tp.topic] = append(out[tp.topic], tp.partition)
	}
	return out
}

func addOffset(m map[string]map[int32]kgo.EpochOffset, tp topicPartition, eo kgo.EpochOffset) {
	if m[tp.topic] == nil {
		m[tp.topic] = map[int32]kgo.EpochOffset{}
	}
	m[tp.topic][tp.partition] = eo
}
