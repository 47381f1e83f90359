package facts

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

const testAgent = "9cd46919-5f19-59aa-993e-cf3736c71053"

// startService runs a Service on a fresh Kafka until the test ends.
func startService(t *testing.T, cfg ServiceConfig) (seeds []string, topics kafka.Topics) {
	t.Helper()
	topics = kafkatest.Namespace(t, kafka.DefaultTopics())
	topics.Partitions = 4
	seeds = kafkatest.Cluster(t, topics)
	cfg.AgentID, cfg.Brokers, cfg.Topics = testAgent, seeds, topics
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	svc, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return seeds, topics
}

// reader collects the records of topics as they arrive.
type reader struct {
	mu   sync.Mutex
	recs map[string][]*kgo.Record
}

func readTopics(t *testing.T, seeds []string, topics ...string) *reader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	r := &reader{recs: map[string][]*kgo.Record{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
				r.mu.Lock()
				r.recs[rec.Topic] = append(r.recs[rec.Topic], rec)
				r.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return r
}

func (r *reader) records(topic string) []*kgo.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs[topic])
}

// waitFor polls cond until it holds or 20 s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func produce(t *testing.T, seeds []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kafka.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func request(t *testing.T, topic, key string, req *fleetv1.FactsGatheringRequested, trace string) *kgo.Record {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b, Headers: kafka.RecordHeaders(kafka.Headers(req, trace))}
}

func TestServiceAnswersRequests(t *testing.T) {
	metrics := NewMetrics(prometheus.NewRegistry())
	tools := toolDir(t, map[string]string{"cibadmin": "cat " + abs(t, "testdata/cib.xml")})
	seeds, topics := startService(t, ServiceConfig{
		Gatherers: NewRegistry(Config{Root: "testdata/root", Path: []string{tools}, Metrics: metrics}),
		Metrics:   metrics,
	})
	out := readTopics(t, seeds, topics.Facts, topics.DLQ)

	fact := func(check, name, gatherer, arg string) *fleetv1.FactRequest {
		return &fleetv1.FactRequest{CheckId: check, Name: name, Gatherer: gatherer, Argument: arg}
	}
	ask := &fleetv1.FactsGatheringRequested{
		ExecutionId: "exec-1", GroupId: "cluster-1", AgentId: testAgent, RequestedAt: timestamppb.Now(),
		Facts: []*fleetv1.FactRequest{
			fact("61451E", "corosync", "corosync.conf@v1", ""),
			fact("0B0F87", "sbd", "sbd_config@v1", ""),
			fact("156F64", "cib", "cibadmin@v1", ""),
			fact("156F64", "saptune", "saptune@v1", ""),
			fact("A1", "swappiness", "sysctl@v1", "vm.swappiness"),
			fact("A2", "pkg", "package_version@v1", "--all"),
			fact("A3", "nope", "nope@v9", ""),
			fact("A4", "corosync_again", "corosync.conf@v1", ""),
		},
	}
	stale := &fleetv1.FactsGatheringRequested{ExecutionId: "exec-0", AgentId: testAgent,
		RequestedAt: timestamppb.New(time.Now().Add(-10 * time.Minute)), Facts: ask.Facts[:1]}
	other := &fleetv1.FactsGatheringRequested{ExecutionId: "exec-1", AgentId: "other-agent", Facts: ask.Facts[:1], RequestedAt: timestamppb.Now()}
	// One partition holds one agent's requests in order: the answer to
	// exec-1 comes after the stale and the broken request were handled.
	produce(t, seeds,
		request(t, topics.AgentRequests, "other-agent", other, "t0"),
		&kgo.Record{Topic: topics.AgentRequests, Key: []byte(testAgent), Value: []byte("\xff\xffnot protobuf")},
		request(t, topics.AgentRequests, testAgent, stale, "t1"),
		request(t, topics.AgentRequests, testAgent, ask, "trace-42"),
	)
	waitFor(t, "the answer", func() bool { return len(out.records(topics.Facts)) > 0 })

	rec := out.records(topics.Facts)[0]
	if string(rec.Key) != testAgent || header(rec, kafka.HeaderSchema) != "fleetstream.v1.FactsGathered" ||
		header(rec, kafka.HeaderContentType) != kafka.ContentTypeProtobuf || header(rec, kafka.HeaderTraceID) != "trace-42" {
		t.Errorf("record key %s, headers %v", rec.Key, rec.Headers)
	}
	got := &fleetv1.FactsGathered{}
	if err := proto.Unmarshal(rec.Value, got); err != nil {
		t.Fatal(err)
	}
	if got.ExecutionId != "exec-1" || got.GroupId != "cluster-1" || got.AgentId != testAgent || got.GatheredAt == nil || len(got.Facts) != len(ask.Facts) {
		t.Fatalf("answer %v", got)
	}
	for i, f := range got.Facts {
		q := ask.Facts[i]
		if f.CheckId != q.CheckId || f.Name != q.Name || f.Gatherer != q.Gatherer || f.Argument != q.Argument {
			t.Errorf("fact %d answers %v, asked %v", i, f, q)
		}
	}
	totem := got.Facts[0].GetValue().GetStructValue().GetFields()["totem"].GetStructValue().GetFields()
	if totem["token"].GetStringValue() != "30000" || totem["consensus"].GetStringValue() != "36000" {
		t.Errorf("corosync totem %v", totem)
	}
	if got.Facts[1].GetValue().GetStructValue().GetFields()["SBD_WATCHDOG_DEV"].GetStringValue() != "/dev/watchdog" {
		t.Errorf("sbd %v", got.Facts[1])
	}
	cib := got.Facts[2].GetValue().GetStructValue().AsMap()["cib"].(map[string]any)
	if cib["validate-with"] != "pacemaker-3.9" {
		t.Errorf("cib %v", got.Facts[2].Error)
	}
	if got.Facts[4].GetValue().GetStringValue() != "10" {
		t.Errorf("swappiness %v", got.Facts[4])
	}
	if !proto.Equal(got.Facts[7].Value, got.Facts[0].Value) {
		t.Error("the same fact asked twice got two values")
	}
	for i, want := range map[int]string{
		3: "saptune is not installed on this host",
		5: `"--all" is not a package name`,
		6: `unknown gatherer "nope@v9"`,
	} {
		if f := got.Facts[i]; f.Value != nil || !strings.Contains(f.Error, want) {
			t.Errorf("fact %s: value %v, error %q, want error %q", f.Name, f.Value, f.Error, want)
		}
	}
	for i, f := range got.Facts {
		if (f.Error == "") != (i != 3 && i != 5 && i != 6) {
			t.Errorf("fact %s: unexpected error %q", f.Name, f.Error)
		}
	}

	// The broken request went to the DLQ, said why, and counted.
	waitFor(t, "the dead letter", func() bool { return len(out.records(topics.DLQ)) == 1 })
	dl := out.records(topics.DLQ)[0]
	if string(dl.Value) != "\xff\xffnot protobuf" || header(dl, kafka.HeaderDLQStage) != "agent.facts" ||
		!strings.HasPrefix(header(dl, kafka.HeaderDLQReason), "not a fleetstream.v1.FactsGatheringRequested") ||
		header(dl, kafka.HeaderDLQTopic) != topics.AgentRequests {
		t.Errorf("dead letter %q, headers %v", dl.Value, dl.Headers)
	}
	if n := testutil.ToFloat64(metrics.deadLetters.WithLabelValues("undecodable")); n != 1 {
		t.Errorf("dead letters %v", n)
	}
	if a, s := testutil.ToFloat64(metrics.requests.WithLabelValues("answered")), testutil.ToFloat64(metrics.requests.WithLabelValues("stale")); a != 1 || s != 1 {
		t.Errorf("requests answered %v, stale %v", a, s)
	}
	if n := testutil.ToFloat64(metrics.gatherErrors.WithLabelValues("saptune@v1", "missing")); n != 1 {
		t.Errorf("saptune missing errors %v", n)
	}
	if n := testutil.CollectAndCount(metrics.gatherSeconds); n != 7 {
		t.Errorf("gather durations of %d gatherers, want 7 (each distinct one once, however often asked)", n)
	}
	if n := len(out.records(topics.Facts)); n != 1 {
		t.Errorf("%d answers, want 1 (the other agent's and the stale request are not ours to answer)", n)
	}
}

func TestServicePublishesChangedFactsPeriodically(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"etc/sysconfig/sbd", "proc/sys/vm/swappiness"} {
		b, err := os.ReadFile(filepath.Join("testdata/root", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	metrics := NewMetrics(prometheus.NewRegistry())
	seeds, topics := startService(t, ServiceConfig{
		Gatherers: NewRegistry(Config{Root: root, Path: []string{t.TempDir()}}),
		Interval:  20 * time.Millisecond,
		Periodic: []*fleetv1.FactRequest{
			{CheckId: "C1", Name: "swappiness", Gatherer: "sysctl@v1", Argument: "vm.swappiness"},
			{CheckId: "C2", Name: "sbd", Gatherer: "sbd_config@v1"},
			{CheckId: "C3", Name: "vm_swappiness", Gatherer: "sysctl@v1", Argument: "vm.swappiness"},
			{CheckId: "C4", Name: "corosync", Gatherer: "corosync.conf@v1"},
		},
		Metrics: metrics,
	})
	out := readTopics(t, seeds, topics.Facts)
	unchanged := func() float64 { return testutil.ToFloat64(metrics.publications.WithLabelValues("periodic_unchanged")) }

	waitFor(t, "the first publication", func() bool { return len(out.records(topics.Facts)) == 1 })
	waitFor(t, "three unchanged rounds", func() bool { return unchanged() >= 3 })
	if n := len(out.records(topics.Facts)); n != 1 {
		t.Fatalf("%d publications of unchanged facts, want 1", n)
	}
	first := decodeFacts(t, out.records(topics.Facts)[0])
	if first.ExecutionId != "" || first.AgentId != testAgent || len(first.Facts) != 3 {
		t.Fatalf("periodic facts %v", first)
	}
	// One fact per distinct gatherer and argument, sorted, without check.
	if f := first.Facts[0]; f.Gatherer != "corosync.conf@v1" || f.CheckId != "" || f.Name != "" || !strings.Contains(f.Error, "not a corosync cluster node") {
		t.Errorf("corosync fact %v", f)
	}
	if f := first.Facts[2]; f.Gatherer != "sysctl@v1" || f.Argument != "vm.swappiness" || f.GetValue().GetStringValue() != "10" {
		t.Errorf("swappiness fact %v", f)
	}

	if err := os.WriteFile(filepath.Join(root, "proc/sys/vm/swappiness"), []byte("60\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the changed facts", func() bool { return len(out.records(topics.Facts)) == 2 })
	second := decodeFacts(t, out.records(topics.Facts)[1])
	if v := second.Facts[2].GetValue().GetStringValue(); v != "60" {
		t.Errorf("swappiness after the change: %q", v)
	}
	if n := testutil.ToFloat64(metrics.publications.WithLabelValues("periodic")); n != 2 {
		t.Errorf("periodic publications %v, want 2", n)
	}
}

func decodeFacts(t *testing.T, r *kgo.Record) *fleetv1.FactsGathered {
	t.Helper()
	m := &fleetv1.FactsGathered{}
	if err := proto.Unmarshal(r.Value, m); err != nil {
		t.Fatal(err)
	}
	return m
}
