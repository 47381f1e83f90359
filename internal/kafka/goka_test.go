package kafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/fleetstream/fleetstream/internal/kafka"
)

// What goka's producer puts on the wire once UseGokaConfig ran: acks=all
// (-1). A single real broker cannot show it (acks=1 and acks=all behave
// alike there, and Kafka 4 caps min.insync.replicas at the replica
// count), so kfake reports the produce requests it receives.
func TestGokaProducesWithAcksAll(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "acks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var mu sync.Mutex
	var acks []int16
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		acks = append(acks, req.(*kmsg.ProduceRequest).Acks)
		mu.Unlock()
		return nil, nil, false // let the cluster handle it
	})
	kafka.UseGokaConfig()
	em, err := goka.NewEmitter(c.ListenAddrs(), "acks", new(codec.String),
		goka.WithEmitterTopicManagerBuilder(goka.TopicManagerBuilderWithTopicManagerConfig(kafka.TopicManagerConfig(1))))
	if err != nil {
		t.Fatal(err)
	}
	if err := em.EmitSync("k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := em.Finish(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acks) == 0 {
		t.Fatal("kfake saw no produce request")
	}
	for _, a := range acks {
		if a != -1 {
			t.Fatalf("goka produced with acks=%d, want -1 (all in-sync replicas)", a)
		}
	}
	// And the record is there.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("acks"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if fs := cl.PollRecords(ctx, 1); fs.Err0() != nil || fs.NumRecords() != 1 {
		t.Fatalf("reading the record back: %v", fs.Err0())
	}
}
