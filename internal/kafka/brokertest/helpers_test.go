package brokertest_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	"github.com/fleetstream/fleetstream/processors/host"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// env is one test's namespace on the real broker: its topics, an admin
// client and a producer with fleetstream's settings.
type env struct {
	seeds  []string
	topics kafka.Topics
	adm    *kadm.Client
	client *kgo.Client
	logger *slog.Logger
}

// newEnv skips t without a real broker, else creates a namespace of
// topics with partitions partitions, deleted when t ends.
func newEnv(t *testing.T, partitions int32) *env {
	t.Helper()
	kafkatest.RequireBroker(t)
	kafka.UseGokaConfig()
	topics := kafkatest.Namespace(t, kafka.DefaultTopics())
	topics.Partitions = partitions
	seeds := kafkatest.Cluster(t, topics)
	client, err := kafka.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return &env{
		seeds:  seeds,
		topics: topics,
		adm:    kadm.NewClient(client),
		client: client,
		logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func (e *env) topicManager() goka.TopicManagerBuilder {
	return goka.TopicManagerBuilderWithTopicManagerConfig(kafka.TopicManagerConfig(1))
}

// hostProcessor is a host aggregate instance with fresh in-memory table
// storage, as a new pod without a disk would start; reg gets its metrics.
func (e *env) hostProcessor(t *testing.T, reg prometheus.Registerer) *goka.Processor {
	t.Helper()
	p, err := host.NewProcessor(e.seeds, e.topics, host.NewMetrics(reg), e.logger,
		goka.WithTopicManagerBuilder(e.topicManager()), goka.WithStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// running is a goka processor or view running in the background.
type running struct {
	name   string
	cancel context.CancelFunc
	done   chan error
	err    error
	exited bool
}

// start runs run until stop is called or the test ends.
func start(t *testing.T, name string, run func(context.Context) error) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{name: name, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the run and fails t when it ended with an error.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.exited {
		return
	}
	r.cancel()
	select {
	case r.err = <-r.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop within 60s", r.name)
	}
	r.exited = true
	if r.err != nil {
		t.Errorf("%s stopped with %v", r.name, r.err)
	}
}

// eventually polls check every 100ms until it returns nil, failing t
// with the last error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %v", what, err, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// caughtUp waits until group has committed every record of its input.
func (e *env) caughtUp(t *testing.T, group string) {
	t.Helper()
	eventually(t, 90*time.Second, "group "+group+" catches up", func() error {
		lags, err := e.adm.Lag(context.Background(), group)
		if err != nil {
			return err
		}
		if err := lags.Error(); err != nil {
			return err
		}
		l := lags[group]
		if len(l.Lag) == 0 {
			return fmt.Errorf("no committed offsets yet")
		}
		if total := l.Lag.Total(); total != 0 {
			return fmt.Errorf("lag %d", total)
		}
		return nil
	})
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func hostID(i int) string { return fmt.Sprintf("host-%04d", i) }

// command returns a host command with a unique id, issued at t0+seq.
func command(id string, seq int, body func(*fleetv1.Command)) *fleetv1.Command {
	c := &fleetv1.Command{
		CommandId:   uuid.NewString(),
		AggregateId: id,
		IssuedAt:    timestamppb.New(t0.Add(time.Duration(seq) * time.Second)),
		TraceId:     fmt.Sprintf("trace-%s-%d", id, seq),
	}
	body(c)
	return c
}

func details(id string, cpus int32) *fleetv1.HostDetails {
	return &fleetv1.HostDetails{Hostname: id, OsName: "SLES", OsVersion: "15-SP6", Arch: "x86_64", CpuCount: cpus}
}

func register(id string, seq int, cpus int32) *fleetv1.Command {
	return command(id, seq, func(c *fleetv1.Command) {
		c.Body = &fleetv1.Command_RegisterHost{RegisterHost: &fleetv1.RegisterHost{Details: details(id, cpus)}}
	})
}

func updateCPUs(id string, seq int, cpus int32) *fleetv1.Command {
	return command(id, seq, func(c *fleetv1.Command) {
		c.Body = &fleetv1.Command_UpdateHostDetails{UpdateHostDetails: &fleetv1.UpdateHostDetails{
			Details: details(id, cpus), ChangedFields: []string{"cpu_count"},
		}}
	})
}

// send produces commands to the host command topic, keyed by host, and
// waits for the broker's acknowledgement.
func (e *env) send(ctx context.Context, cmds ...*fleetv1.Command) error {
	recs := make([]*kgo.Record, len(cmds))
	for i, c := range cmds {
		v, err := proto.Marshal(c)
		if err != nil {
			return err
		}
		recs[i] = &kgo.Record{Topic: e.topics.HostCommands, Key: []byte(c.AggregateId), Value: v,
			Headers: kafka.RecordHeaders(kafka.Headers(c, c.TraceId))}
	}
	return e.client.ProduceSync(ctx, recs...).FirstErr()
}

// events returns the event store's records decoded, in partition and
// offset order.
func (e *env) events(t *testing.T) []*fleetv1.Event {
	t.Helper()
	var out []*fleetv1.Event
	for _, r := range kafkatest.ReadAll(t, e.seeds, e.topics.Events) {
		ev := new(fleetv1.Event)
		if err := proto.Unmarshal(r.Value, ev); err != nil {
			t.Fatalf("event at %d/%d: %v", r.Partition, r.Offset, err)
		}
		out = append(out, ev)
	}
	return out
}

// counter sums a counter vector of reg across its labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
