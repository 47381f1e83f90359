package brokertest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	"github.com/fleetstream/fleetstream/internal/system"
)

// `fleetstream migrate` (system.Prepare) creates every topic of the table
// with its partitions, one replica on one broker and the configs that keep
// state (compacted tables) and history (an event store that never
// deletes); run again it verifies them, and it names each drift with its
// fix instead of starting processors on a wrong layout.
func TestMigrateCreatesAndVerifiesTopics(t *testing.T) {
	seeds := kafkatest.RequireBroker(t)
	topics := kafkatest.Namespace(t, kafka.DefaultTopics())
	topics.Partitions = 6
	kafkatest.DropWhenDone(t, seeds, topics)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := system.Config{Brokers: seeds, Topics: topics, Replication: 1, Logger: slog.New(slog.DiscardHandler)}
	if err := system.Prepare(ctx, cfg, true, false); err != nil {
		t.Fatalf("migrate: %v", err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var names []string
	for _, tp := range topics.All() {
		names = append(names, tp.Name)
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range topics.All() {
		d := details[tp.Name]
		if d.Err != nil {
			t.Errorf("topic %s: %v", tp.Name, d.Err)
			continue
		}
		if got := int32(len(d.Partitions)); got != tp.Partitions {
			t.Errorf("topic %s has %d partitions, want %d", tp.Name, got, tp.Partitions)
		}
		if got := d.Partitions.NumReplicas(); got != 1 {
			t.Errorf("topic %s has %d replicas, want 1", tp.Name, got)
		}
	}
	// The broker's own view of the configs, stated here independently of
	// the table so a wrong table fails too.
	want := map[string]map[string]string{
		topics.Discoveries:  {"cleanup.policy": "delete"},
		topics.HostCommands: {"cleanup.policy": "delete"},
		topics.Events:       {"cleanup.policy": "delete", "retention.ms": "-1"},
		kafka.TableTopic(topics.Group(kafka.ScenarioGroup)): {"cleanup.policy": "compact"},
		kafka.TableTopic(topics.Group(kafka.HostGroup)):     {"cleanup.policy": "compact"},
	}
	for _, tp := range topics.All() {
		if want[tp.Name] == nil {
			want[tp.Name] = tp.Configs // topics added later: as their definition says
		}
	}
	configs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	for name, kv := range want {
		rc, err := configs.On(name, nil)
		if err == nil {
			err = rc.Err
		}
		if err != nil {
			t.Errorf("configs of %s: %v", name, err)
			continue
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		for k, v := range kv {
			if got[k] != v {
				t.Errorf("topic %s has %s=%q, want %q", name, k, got[k], v)
			}
		}
	}

	if err := system.Prepare(ctx, cfg, true, false); err != nil {
		t.Fatalf("migrate again, on topics as defined: %v", err)
	}

	// Drift, as an operator could cause it.
	table := kafka.TableTopic(topics.Group(kafka.HostGroup))
	alter := func(topic, key, value string) {
		t.Helper()
		resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: kadm.StringPtr(value)}}, topic)
		if err == nil {
			_, err = resp.On(topic, nil)
		}
		if err != nil {
			t.Fatalf("alter %s of %s: %v", key, topic, err)
		}
	}
	alter(table, "cleanup.policy", "delete")
	alter(topics.Events, "retention.ms", "86400000")
	if _, err := adm.CreatePartitions(ctx, 2, topics.Discoveries); err != nil {
		t.Fatal(err)
	}
	// The broker applies the changes asynchronously: ask until it shows them.
	eventually(t, 30*time.Second, "migrate reports the drift", func() error {
		err := system.Prepare(ctx, cfg, true, false)
		if err == nil {
			return errors.New("migrate accepted a table that deletes, an event store with a retention and a topic with 8 partitions")
		}
		for _, s := range []string{
			"topic " + table + " has cleanup.policy=delete, want compact",
			"topic " + topics.Events + " has retention.ms=86400000, want -1",
			"topic " + topics.Discoveries + " has 8 partitions, want 6",
		} {
			if !strings.Contains(err.Error(), s) {
				return fmt.Errorf("migrate's error does not say %q: %w", s, err)
			}
		}
		return nil
	})
}
