package host_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	"github.com/fleetstream/fleetstream/processors/host"
	"github.com/fleetstream/fleetstream/processors/scenario"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// A discovery produced to Kafka becomes a HostRegistered event in the
// event store and a host in the view, through both processors on a real
// (in-process) Kafka cluster.
func TestDiscoveryToHostRegisteredOnKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka cluster")
	}
	kafka.UseGokaConfig()
	topics := kafkatest.Namespace(t, kafka.DefaultTopics())
	seeds := kafkatest.Cluster(t, topics)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	topicManager := goka.TopicManagerBuilderWithTopicManagerConfig(kafka.TopicManagerConfig(1))

	scen, err := scenario.NewProcessor(seeds, topics, scenario.NewMetrics(nil), logger,
		goka.WithTopicManagerBuilder(topicManager), goka.WithStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := host.NewProcessor(seeds, topics, host.NewMetrics(nil), logger,
		goka.WithTopicManagerBuilder(topicManager), goka.WithStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatal(err)
	}
	view, err := host.NewView(seeds, topics,
		goka.WithViewTopicManagerBuilder(topicManager), goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for name, run := range map[string]func(context.Context) error{"scenario": scen.Run, "host": hosts.Run, "view": view.Run} {
		done := make(chan error, 1)
		go func() { done <- run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s stopped with %v", name, err)
			}
		})
	}

	const agent = "779cdd70-e9e2-58ca-b18a-bf3eb3f71244"
	collected := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d := &fleetv1.Discovery{
		AgentId:       agent,
		DiscoveryType: payload.HostDiscovery,
		CollectedAt:   timestamppb.New(collected),
		Payload:       []byte(`{"hostname": "suse", "os_version": "15-SP2", "cpu_count": 2, "ip_addresses": ["10.1.1.4"], "netmasks": ["16"]}`),
		Source:        "agent",
	}
	value, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	producer, err := kafka.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	rec := &kgo.Record{Topic: topics.Discoveries, Key: []byte(agent), Value: value,
		Headers: kafka.RecordHeaders(kafka.Headers(d, "trace-kfake"))}
	if err := producer.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce discovery: %v", err)
	}

	consumer, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topics.Events),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var registered *fleetv1.Event
	for registered == nil {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no HostRegistered event on the event store before the deadline")
		}
		fs.EachRecord(func(r *kgo.Record) {
			e := new(fleetv1.Event)
			if err := proto.Unmarshal(r.Value, e); err != nil {
				t.Fatalf("event store record at offset %d: %v", r.Offset, err)
			}
			if string(r.Key) == agent && e.GetHostRegistered() != nil {
				registered = e
			}
		})
	}
	if registered.Version != 1 || registered.TraceId != "trace-kfake" || !registered.OccurredAt.AsTime().Equal(collected) ||
		registered.GetHostRegistered().GetDetails().GetHostname() != "suse" ||
		registered.GetHostRegistered().GetDetails().GetNetmasks()[0] != 16 {
		t.Fatalf("HostRegistered %v", registered)
	}

	reader := host.NewReader(view)
	for {
		h, err := reader.Get(agent)
		if err != nil {
			t.Fatal(err)
		}
		if h != nil {
			if h.Version != 1 || h.Details.GetCpuCount() != 2 || h.Health != host.HealthUnknown {
				t.Fatalf("view host %v", h)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the view never returned the host")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if h, err := reader.Get("no-such-host"); h != nil || err != nil {
		t.Fatalf("Get(no-such-host) = %v, %v", h, err)
	}
}
