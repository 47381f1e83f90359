package kafka

import (
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// GokaConfig is the Sarama configuration of every goka processor, view and
// emitter. goka's defaults (acks=1, Kafka 2.0, newest offset) lose data:
// we wait for all replicas, start new groups at the oldest offset so
// records written before a processor started are processed, speak a
// protocol version both kfake and Kafka 4 accept, and flush produced
// batches after 5 ms instead of 100 ms: every pipeline hop pays it, and
// under load batches fill by size long before.
func GokaConfig() *sarama.Config {
	c := goka.DefaultConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = false
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	return c
}

// UseGokaConfig installs GokaConfig as goka's global configuration.
func UseGokaConfig() { goka.ReplaceGlobalConfig(GokaConfig()) }

// TopicManagerConfig makes goka verify, never create, topics: EnsureTopics
// owns creation so partitions and configs come from one table.
func TopicManagerConfig(replication int) *goka.TopicManagerConfig {
	c := goka.NewTopicManagerConfig()
	c.Table.Replication = replication
	c.Stream.Replication = replication
	c.NoCreate = true
	return c
}
