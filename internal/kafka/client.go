package kafka

import (
	"hash/fnv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// saramaHash is goka's default key hash (FNV-1a 32) as franz-go's
// Sarama-compatible hasher: records we produce land in the partition where
// goka processors and views look their keys up.
func saramaHash(key []byte) uint32 {
	h := fnv.New32a()
	h.Write(key)
	return h.Sum32()
}

// Partitioner partitions like goka/Sarama. Every producer of a goka input
// topic must use it, or view lookups silently miss.
func Partitioner() kgo.Partitioner {
	return kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(saramaHash))
}

// NewClient returns a franz-go client for seeds with the producer settings
// every fleetstream producer shares: idempotent, acks=all, goka-compatible
// partitioning, a short linger so ingest latency stays low under load.
func NewClient(seeds []string, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(Partitioner()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.ProducerBatchCompression(kgo.SnappyCompression(), kgo.NoCompression()),
	}
	return kgo.NewClient(append(base, opts...)...)
}
