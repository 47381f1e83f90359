package brokertest_test

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
)

// goka speaks Kafka 4's protocol with fleetstream's Sarama configuration:
// records an emitter writes arrive with their headers, in the partition a
// franz-go producer would have chosen for the same key.
func TestGokaEmitterOnKafka4(t *testing.T) {
	e := newEnv(t, 4)
	c := kafka.GokaConfig()
	if c.Version != sarama.V3_6_0_0 || c.Producer.RequiredAcks != sarama.WaitForAll || c.Consumer.Offsets.Initial != sarama.OffsetOldest {
		t.Fatalf("GokaConfig: version %v, acks %v, initial offset %v", c.Version, c.Producer.RequiredAcks, c.Consumer.Offsets.Initial)
	}
	em, err := goka.NewEmitter(e.seeds, goka.Stream(e.topics.Discoveries), new(codec.String),
		goka.WithEmitterTopicManagerBuilder(e.topicManager()))
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := range n {
		key := hostID(i)
		if err := em.EmitSyncWithHeaders(key, "value of "+key, goka.Headers{kafka.HeaderTraceID: []byte("trace-" + key)}); err != nil {
			t.Fatalf("emit %s: %v", key, err)
		}
	}
	if err := em.Finish(); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.ReadAll(t, e.seeds, e.topics.Discoveries)
	if len(recs) != n {
		t.Fatalf("read %d records, want %d", len(recs), n)
	}
	franz := kafka.Partitioner().ForTopic(e.topics.Discoveries)
	used := map[int32]bool{}
	for _, r := range recs {
		key := string(r.Key)
		if got := string(r.Value); got != "value of "+key {
			t.Errorf("record %s holds %q", key, got)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != kafka.HeaderTraceID || string(r.Headers[0].Value) != "trace-"+key {
			t.Errorf("record %s has headers %v", key, r.Headers)
		}
		if want := int32(franz.Partition(&kgo.Record{Key: r.Key}, int(e.topics.Partitions))); r.Partition != want {
			t.Errorf("goka wrote %s to partition %d, franz-go's partitioner picks %d", key, r.Partition, want)
		}
		used[r.Partition] = true
	}
	if len(used) < 2 {
		t.Errorf("%d keys all landed in %v: the check above proves nothing", n, used)
	}
}
