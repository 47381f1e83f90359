package tasks

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// catchUp tells when a consumer has read everything its topics held when it
// started: the cancellation set, the status table and the scheduler's marks
// are only trustworthy from then on.
type catchUp struct {
	mu   sync.Mutex
	want map[topicPartition]int64
	done chan struct{}
}

func newCatchUp(ctx context.Context, adm *kadm.Client, topics ...string) (*catchUp, error) {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("start offsets of %v: %w", topics, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %v: %w", topics, err)
	}
	c := &catchUp{want: map[topicPartition]int64{}, done: make(chan struct{})}
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
			return
		}
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok && s.Err == nil && s.Offset >= o.Offset {
			return // empty
		}
		c.want[topicPartition{o.Topic, o.Partition}] = o.Offset
	})
	if lerr != nil {
		return nil, lerr
	}
	if len(c.want) == 0 {
		close(c.done)
	}
	return c, nil
}

// observe notes a consumed record.
func (c *catchUp) observe(r *kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := topicPartition{r.Topic, r.Partition}
	end, ok := c.want[tp]
	if !ok || r.Offset+1 < end {
		return
	}
	delete(c.want, tp)
	if len(c.want) == 0 {
		close(c.done)
	}
}

func (c *catchUp) caughtUp() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *catchUp) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commit commits m through cl and records it in o when every partition
// succeeded; a failed commit is retried with the next one.
func commit(ctx context.Context, cl *kgo.Client, o *offsets, m map[string]map[int32]kgo.EpochOffset) error {
	if len(m) == 0 {
		return nil
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, m, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
					cerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, e)
				}
			}
		}
	})
	if cerr != nil {
		return fmt.Errorf("commit offsets: %w", cerr)
	}
	o.committed(m)
	return nil
}
