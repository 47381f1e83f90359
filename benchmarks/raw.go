package benchmarks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/internal/kafka"
)

// RawResult is the ceiling a phase's throughput is compared with: the
// phase's own records (same keys, values, headers, so the same sizes and
// count) produced with franz-go, with the settings of every fleetstream
// producer (acks=all, idempotent, the goka partitioner, 2 ms linger,
// snappy), and consumed back, on the same broker, right after the phase.
type RawResult struct {
	Records int
	Bytes   int64
	// Seconds from the first produce to the last record consumed.
	Seconds float64
	PerSec  float64
}

// offsets are a topic's end offsets by partition.
type offsets map[int32]int64

func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (offsets, error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	if err := listed.Error(); err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := offsets{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// copyRecords reads topic's records from the offsets from to the offsets to.
func copyRecords(ctx context.Context, seeds []string, topic string, from, to offsets) ([]*kgo.Record, error) {
	start := map[int32]kgo.Offset{}
	remaining := 0
	for p, end := range to {
		if end > from[p] {
			start[p] = kgo.NewOffset().At(from[p])
			remaining++
		}
	}
	if remaining == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out []*kgo.Record
	done := map[int32]bool{}
	for len(done) < remaining {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read back %s: %w", topic, err)
		}
		var fetchErr error
		fs.EachError(func(_ string, _ int32, err error) { fetchErr = err })
		if fetchErr != nil {
			return nil, fmt.Errorf("read back %s: %w", topic, fetchErr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= to[r.Partition] {
				return
			}
			out = append(out, &kgo.Record{Key: r.Key, Value: r.Value, Headers: r.Headers})
			if r.Offset == to[r.Partition]-1 {
				done[r.Partition] = true
			}
		})
	}
	return out, nil
}

// rawProduceConsume measures recs through a new topic of partitions
// partitions named topic, deleted afterwards.
func rawProduceConsume(ctx context.Context, seeds []string, adm *kadm.Client, topic string, partitions int32, recs []*kgo.Record) (RawResult, error) {
	res := RawResult{Records: len(recs)}
	for _, r := range recs {
		res.Bytes += int64(len(r.Key) + len(r.Value))
		for _, h := range r.Headers {
			res.Bytes += int64(len(h.Key) + len(h.Value))
		}
	}
	if len(recs) == 0 {
		return res, errors.New("no records to measure")
	}
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		return res, fmt.Errorf("create %s: %w", topic, err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopic(ctx, topic)
	}()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	producer, err := kafka.NewClient(seeds)
	if err != nil {
		return res, err
	}
	defer producer.Close()
	start, err := warmUp(ctx, producer, topic, partitions)
	if err != nil {
		return res, err
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return res, err
	}
	defer consumer.Close()

	consumed := make(chan time.Time, 1)
	go func() {
		n := 0
		for n < len(recs) {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			n += fs.NumRecords()
		}
		consumed <- time.Now()
	}()
	var (
		mu       sync.Mutex
		failed   int
		firstErr error
	)
	began := time.Now()
	for _, r := range recs {
		rec := &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
		producer.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed++
				firstErr = cmp.Or(firstErr, err)
				mu.Unlock()
			}
		})
	}
	if err := producer.Flush(ctx); err != nil {
		return res, fmt.Errorf("produce to %s: %w", topic, err)
	}
	if failed > 0 {
		return res, fmt.Errorf("produce to %s: %d records failed, first: %w", topic, failed, firstErr)
	}
	select {
	case end := <-consumed:
		res.Seconds = end.Sub(began).Seconds()
		res.PerSec = float64(len(recs)) / res.Seconds
		return res, nil
	case <-ctx.Done():
		return res, fmt.Errorf("consume %s: %w", topic, ctx.Err())
	}
}

// warmUp produces to every partition of a new topic until each has taken
// a record, and returns the offsets after them. A new topic's partitions
// answer NOT_LEADER for a moment after their creation, and the producer's
// first request initialises its id: neither belongs in the measurement, as
// the pipeline's clients are long past both.
func warmUp(ctx context.Context, producer *kgo.Client, topic string, partitions int32) (map[int32]kgo.Offset, error) {
	after := map[int32]int64{}
	for i := 0; int32(len(after)) < partitions; i++ {
		if i == 100*int(partitions) {
			return nil, fmt.Errorf("warm up %s: %d of %d partitions took a record", topic, len(after), partitions)
		}
		r, err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "warm-up-%d", i)}).First()
		if err != nil {
			return nil, fmt.Errorf("warm up %s: %w", topic, err)
		}
		after[r.Partition] = r.Offset + 1
	}
	out := make(map[int32]kgo.Offset, partitions)
	for p, o := range after {
		out[p] = kgo.NewOffset().At(o)
	}
	return out, nil
}
