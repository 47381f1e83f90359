// Package kafkatest gives tests of every role a Kafka with fleetstream's
// topics: an in-process kfake cluster by default, or the real broker named
// by FLEETSTREAM_TEST_KAFKA (the integration lane of `make test`), with the
// same test code for both. It also reads topics back.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/internal/kafka"
)

// EnvBroker names the environment variable holding a real Kafka broker's
// address (host:port, or several separated by commas) to test against.
const EnvBroker = "FLEETSTREAM_TEST_KAFKA"

// Broker returns the seeds of the real broker tests run against, or nil
// when they run on kfake.
func Broker() []string {
	v := strings.TrimSpace(os.Getenv(EnvBroker))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// RequireBroker returns the real broker's seeds, or skips t: for tests of
// what only a real Kafka shows.
func RequireBroker(t testing.TB) []string {
	t.Helper()
	seeds := Broker()
	if seeds == nil {
		t.Skipf("needs a real Kafka broker: set %s=host:port (make test starts one with deploy/kafka/kafka.sh and sets it)", EnvBroker)
	}
	return seeds
}

// unsafeTopicChars are replaced in namespaces: Kafka refuses a topic whose
// name collides with another's once '.' and '_' are treated alike, and
// fleetstream's names use '.'.
var unsafeTopicChars = regexp.MustCompile(`[^a-zA-Z0-9-]+`)

// Namespace returns topics in a namespace of their own, named after t, so
// tests sharing one broker (packages run in parallel) never read each
// other's records or join each other's consumer groups.
func Namespace(t testing.TB, topics kafka.Topics) kafka.Topics {
	t.Helper()
	name := unsafeTopicChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return topics.WithNamespace("test-" + name + "-" + hex.EncodeToString(b[:]) + ".")
}

// Cluster returns the seed brokers of a Kafka with every topic of topics
// created: kfake, stopped when the test ends, or the real broker of
// FLEETSTREAM_TEST_KAFKA, where topics must carry a namespace (Namespace)
// and are deleted with their consumer groups when the test ends.
func Cluster(t testing.TB, topics kafka.Topics) []string {
	t.Helper()
	seeds := Broker()
	if seeds == nil {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatalf("start kfake: %v", err)
		}
		t.Cleanup(c.Close)
		seeds = c.ListenAddrs()
	} else if topics.Namespace == "" {
		t.Fatalf("the broker %v is shared by every test: give the topics a namespace (topics = kafkatest.Namespace(t, topics))", seeds)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), topics.All(), 1); err != nil {
		t.Fatalf("create topics on %v: %v", seeds, err)
	}
	if Broker() != nil {
		DropWhenDone(t, seeds, topics)
	}
	return seeds
}

// DropWhenDone deletes the topics and consumer groups of topics'
// namespace from the shared broker when t ends, so repeated runs do not
// pile up. Registered before the test starts its processors, it runs after
// they stopped (cleanups run last in, first out); failures are reported,
// not fatal: they leak, not break.
func DropWhenDone(t testing.TB, seeds []string, topics kafka.Topics) {
	t.Helper()
	if topics.Namespace == "" {
		t.Fatal("DropWhenDone deletes a namespace's topics: give the topics one (kafkatest.Namespace)")
	}
	t.Cleanup(func() { dropNamespace(t, seeds, topics) })
}

func dropNamespace(t testing.TB, seeds []string, topics kafka.Topics) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Logf("drop namespace %s: %v", topics.Namespace, err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if groups, err := adm.ListGroups(ctx); err == nil {
		var ours []string
		for _, g := range groups.Groups() {
			if strings.HasPrefix(g, topics.Namespace) {
				ours = append(ours, g)
			}
		}
		if _, err := adm.DeleteGroups(ctx, ours...); err != nil && len(ours) > 0 {
			t.Logf("drop consumer groups %v: %v", ours, err)
		}
	}
	var names []string
	for _, tp := range topics.All() {
		names = append(names, tp.Name)
	}
	if _, err := adm.DeleteTopics(ctx, names...); err != nil {
		t.Logf("drop topics %v: %v", names, err)
	}
}

// ReadAll returns every record currently in topic, in partition order.
func ReadAll(t testing.TB, seeds []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	end, want := map[int32]int64{}, map[int32]bool{}
	ends.Each(func(o kadm.ListedOffset) {
		end[o.Partition] = o.Offset
		if o.Offset > 0 {
			want[o.Partition] = true
		}
	})
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %v (still waiting for partitions %v)", topic, err, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return // produced after we looked
			}
			out = append(out, r)
			if r.Offset+1 == end[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}
