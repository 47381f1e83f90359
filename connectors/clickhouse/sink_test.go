package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// fleetHistory is the event history of three hosts: registrations, a
// details update, a heartbeat and a rejected command.
func fleetHistory() []*fleetv1.Event {
	a1 := hostState("host-a", "alpha", "SLES", "15-SP4", "passing", 1)
	a2 := hostState("host-a", "alpha", "SLES", "15-SP5", "passing", 2)
	// A rejection carries the state it did not change. Its state differs
	// here so the test would see it if the sink projected rejections.
	aRejected := hostState("host-a", "alpha", "SLES", "15-SP5", "critical", 2)
	b1 := hostState("host-b", "bravo", "SLES", "15-SP5", "unknown", 1)
	c1 := hostState("host-c", "charlie", "Ubuntu", "22.04", "unknown", 1)
	c2 := hostState("host-c", "charlie", "Ubuntu", "22.04", "passing", 2)
	c2.Heartbeat = "passing"
	c2.LastHeartbeatAt = timestamppb.New(epoch.Add(time.Hour))
	return []*fleetv1.Event{
		registered(a1, "e-a1"),
		registered(b1, "e-b1"),
		registered(c1, "e-c1"),
		detailsUpdated(a2, "e-a2", "os_version"),
		heartbeat(c2, "e-c2"),
		rejected(aRejected, "e-a2-rejected", "hostname cannot change"),
	}
}

func TestSinkProjectsEventsAndIgnoresRedelivery(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	kc := newCluster(t)
	m := NewMetrics(prometheus.NewRegistry())
	history := fleetHistory()
	kc.produceEvents(t, history...)
	kc.runSink(t, conn, db, m)
	kc.waitCaughtUp(t)

	if got := testutil.ToFloat64(m.rows.WithLabelValues("events")); got != float64(len(history)) {
		t.Fatalf("events rows written = %v, want %d", got, len(history))
	}
	assertReadModel := func(stage string) {
		t.Helper()
		hosts, next, err := ListHosts(ctx, conn, db, HostFilter{}, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		if next != "" || len(hosts) != 3 {
			t.Fatalf("%s: ListHosts = %d hosts, next %q; want 3 hosts, one page", stage, len(hosts), next)
		}
		want := map[string]struct {
			version           uint64
			osVersion, health string
		}{
			"host-a": {2, "15-SP5", "passing"}, // not "critical": the rejection is not projected
			"host-b": {1, "15-SP5", "unknown"},
			"host-c": {2, "22.04", "passing"},
		}
		for _, h := range hosts {
			w := want[h.GetId()]
			if h.GetVersion() != w.version || h.GetDetails().GetOsVersion() != w.osVersion || h.GetHealth() != w.health {
				t.Errorf("%s: host %s = version %d, os %s, health %s; want %+v", stage, h.GetId(), h.GetVersion(),
					h.GetDetails().GetOsVersion(), h.GetHealth(), w)
			}
		}
		if c := hosts[2]; c.GetHeartbeat() != "passing" || !c.GetLastHeartbeatAt().AsTime().Equal(epoch.Add(time.Hour)) ||
			len(c.GetDetails().GetIpAddresses()) != 2 {
			t.Errorf("%s: host-c state not rebuilt from ClickHouse: %v", stage, c)
		}

		events, next2, err := ListEvents(ctx, conn, db, "host", "host-a", 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range events {
			got = append(got, fmt.Sprintf("%s@%d", e.EventType, e.Version))
		}
		if strings.Join(got, " ") != "HostRegistered@1 HostDetailsUpdated@2 CommandRejected@2" || next2 != nil {
			t.Fatalf("%s: host-a events = %v (next %v)", stage, got, next2)
		}
		upd := events[1]
		var payload map[string]any
		if err := json.Unmarshal([]byte(upd.Payload), &payload); err != nil {
			t.Fatalf("payload %q: %v", upd.Payload, err)
		}
		if _, ok := payload["changed_fields"]; !ok {
			t.Errorf("%s: payload lacks proto field name changed_fields: %s", stage, upd.Payload)
		}
		if upd.EventID != "e-a2" || upd.TraceID != "trace-e-a2" || upd.CommandID != "cmd-e-a2" ||
			!upd.OccurredAt.Equal(epoch.Add(2*time.Minute)) || upd.AggregateType != "host" || upd.AggregateID != "host-a" {
			t.Errorf("%s: event row = %+v", stage, upd)
		}
		for id, want := range map[string]uint64{"host-a": 3, "host-b": 1, "host-c": 2} {
			if n, err := CountEvents(ctx, conn, db, "host", id); err != nil || n != want {
				t.Errorf("%s: CountEvents(%s) = %d, %v; want %d", stage, id, n, err, want)
			}
		}
	}
	assertReadModel("first delivery")

	// Redelivery: the same events again, as after a crash before a commit.
	kc.produceEvents(t, history...)
	kc.waitCaughtUp(t)
	if got := testutil.ToFloat64(m.rows.WithLabelValues("events")); got != float64(2*len(history)) {
		t.Fatalf("events rows written after redelivery = %v, want %d (redelivered records not processed)", got, 2*len(history))
	}
	assertReadModel("after redelivery")
	if got := testutil.ToFloat64(m.deadLetters.WithLabelValues(reasonUndecodable)) + testutil.ToFloat64(m.deadLetters.WithLabelValues(reasonInvalid)); got != 0 {
		t.Errorf("dead letters = %v, want 0", got)
	}
	// The sink counts a batch once its commit returned: the commit can be
	// seen (waitCaughtUp) a moment before.
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(m.batches) < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if testutil.ToFloat64(m.batches) < 2 {
		t.Errorf("batches = %v, want at least 2", testutil.ToFloat64(m.batches))
	}
}

func TestSinkSendsBadRecordsToDLQAndGoesOn(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	kc := newCluster(t)
	m := NewMetrics(prometheus.NewRegistry())

	before := registered(hostState("host-d", "delta", "SLES", "15-SP5", "unknown", 1), "e-d1")
	noID := registered(hostState("host-d", "delta", "SLES", "15-SP5", "unknown", 2), "")
	noIDValue, err := proto.Marshal(noID)
	if err != nil {
		t.Fatal(err)
	}
	after := detailsUpdated(hostState("host-d", "delta", "SLES", "15-SP6", "unknown", 2), "e-d2", "os_version")
	kc.produceEvents(t, before)
	// Same key as host-d: same partition, between its good events.
	bad := kc.produce(t,
		&kgo.Record{Topic: kc.topics.Events, Key: []byte("host-d"), Value: []byte("not a protobuf"),
			Headers: []kgo.RecordHeader{{Key: kafka.HeaderTraceID, Value: []byte("t-bad")}}},
		&kgo.Record{Topic: kc.topics.Events, Key: []byte("host-d"), Value: noIDValue},
	)
	kc.produceEvents(t, after)
	kc.runSink(t, conn, db, m)
	kc.waitCaughtUp(t)

	if n, err := CountEvents(ctx, conn, db, "host", "host-d"); err != nil || n != 2 {
		t.Fatalf("host-d events = %d, %v; want the 2 good ones", n, err)
	}
	hosts, _, err := ListHosts(ctx, conn, db, HostFilter{}, 10, "")
	if err != nil || len(hosts) != 1 || hosts[0].GetDetails().GetOsVersion() != "15-SP6" {
		t.Fatalf("hosts = %v, %v; want host-d at 15-SP6 (written after the bad records)", hosts, err)
	}
	if got := testutil.ToFloat64(m.deadLetters.WithLabelValues(reasonUndecodable)); got != 1 {
		t.Errorf("undecodable dead letters = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.deadLetters.WithLabelValues(reasonInvalid)); got != 1 {
		t.Errorf("invalid dead letters = %v, want 1", got)
	}

	dlq := readTopic(t, kc, kc.topics.DLQ, 2)
	wantReasons := []string{"not a fleetstream.v1.Event", "event without event_id"}
	for i, r := range dlq {
		h := map[string]string{}
		for _, rh := range r.Headers {
			h[rh.Key] = string(rh.Value)
		}
		src := bad[i]
		if !strings.Contains(h[kafka.HeaderDLQReason], wantReasons[i]) || h[kafka.HeaderDLQStage] != dlqStage ||
			h[kafka.HeaderDLQTopic] != kc.topics.Events || h[kafka.HeaderDLQPartition] != strconv.Itoa(int(src.Partition)) ||
			h[kafka.HeaderDLQOffset] != strconv.FormatInt(src.Offset, 10) {
			t.Errorf("dead letter %d headers = %v; want reason %q from %s/%d@%d", i, h, wantReasons[i], src.Topic, src.Partition, src.Offset)
		}
		if string(r.Value) != string(src.Value) || string(r.Key) != "host-d" {
			t.Errorf("dead letter %d does not carry the original record: key %q value %q", i, r.Key, r.Value)
		}
	}
	if h := dlq[0].Headers; len(h) == 0 || h[0].Key != kafka.HeaderTraceID {
		t.Errorf("dead letter lost the original headers: %v", h)
	}
}

// readTopic reads n records of topic from the start, in offset order (the
// test writes them to one partition).
func readTopic(t *testing.T, kc *cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(out), n, topic)
		}
		fetches.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	if len(out) != n {
		t.Fatalf("%s has %d records, want %d", topic, len(out), n)
	}
	return out
}

// A batch ClickHouse refuses is retried, never committed past: here the
// tables do not exist until the sink has failed at least once.
func TestSinkCommitsOnlyAfterClickHouseAcknowledged(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, false)
	kc := newCluster(t)
	m := NewMetrics(prometheus.NewRegistry())
	history := fleetHistory()
	kc.produceEvents(t, history...)
	kc.runSink(t, conn, db, m)

	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(m.retries.WithLabelValues("events")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("sink did not retry the failing insert")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := kc.committed(t); len(c) != 0 {
		t.Fatalf("offsets %v committed while ClickHouse had written nothing", c)
	}
	if err := Migrate(ctx, conn, db, nil); err != nil {
		t.Fatal(err)
	}
	kc.waitCaughtUp(t)
	if n, err := CountEvents(ctx, conn, db, "host", "host-a"); err != nil || n != 3 {
		t.Fatalf("host-a events after ClickHouse recovered = %d, %v; want 3", n, err)
	}
	if got := testutil.ToFloat64(m.rows.WithLabelValues("events")); got != float64(len(history)) {
		t.Fatalf("events rows = %v, want %d", got, len(history))
	}
}

func TestNewSinkValidates(t *testing.T) {
	conn, _ := database(t, false)
	topics := kafka.DefaultTopics()
	for name, opts := range map[string]SinkOptions{
		"no seeds":     {Topics: topics, Conn: conn},
		"no conn":      {Seeds: []string{"x:9092"}, Topics: topics},
		"no topics":    {Seeds: []string{"x:9092"}, Conn: conn},
		"bad database": {Seeds: []string{"x:9092"}, Topics: topics, Conn: conn, Database: "a-b"},
	} {
		if _, err := NewSink(opts); err == nil {
			t.Errorf("%s: NewSink succeeded", name)
		}
	}
	s, err := NewSink(SinkOptions{Seeds: []string{"x:9092"}, Topics: topics, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	if s.group != DefaultSinkGroup || s.batchSize != DefaultBatchSize || s.flushInterval != DefaultFlushInterval || s.database != DefaultDatabase {
		t.Errorf("defaults not applied: group %s batch %d interval %s database %s", s.group, s.batchSize, s.flushInterval, s.database)
	}
}

// A batch is written when it is full or its flush interval has passed, and
// the batch in hand when the sink stops is written before Run returns.
func TestSinkBatchesBySizeAndTimeAndFlushesOnStop(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	kc := newCluster(t)
	m := NewMetrics(prometheus.NewRegistry())
	events := func(from, to uint64) []*fleetv1.Event {
		var out []*fleetv1.Event
		for v := from; v <= to; v++ {
			out = append(out, detailsUpdated(hostState("host-g", "golf", "SLES", "15-SP5", "passing", v), fmt.Sprintf("g-%03d", v), "agent_version"))
		}
		return out
	}
	kc.produceEvents(t, events(1, 40)...) // one key: one partition
	stop := kc.runSink(t, conn, db, m, func(o *SinkOptions) {
		o.BatchSize = 10
		o.FlushInterval = time.Hour // only size triggers a write here
	})
	kc.waitCaughtUp(t)
	if got := testutil.ToFloat64(m.batches); got != 4 {
		t.Fatalf("40 records in batches of 10 took %v batches", got)
	}
	if got := testutil.ToFloat64(m.rows.WithLabelValues("hosts")); got != 4 {
		t.Errorf("host rows = %v, want one per batch (the newest version of host-g)", got)
	}

	kc.produceEvents(t, events(41, 45)...)
	time.Sleep(300 * time.Millisecond)
	if n, _ := CountEvents(ctx, conn, db, "host", "host-g"); n != 40 {
		t.Fatalf("a partial batch was written before its flush interval: %d events", n)
	}
	stop()
	if n, _ := CountEvents(ctx, conn, db, "host", "host-g"); n != 45 {
		t.Fatalf("after stop: %d events, want 45 (the batch in hand is written on stop)", n)
	}
	if c := kc.committed(t); len(c) != 1 {
		t.Fatalf("committed offsets %v, want one partition", c)
	} else {
		for _, off := range c {
			if off != 45 {
				t.Fatalf("committed offset %d after stop, want 45", off)
			}
		}
	}
	hosts, _, err := ListHosts(ctx, conn, db, HostFilter{}, 10, "")
	if err != nil || len(hosts) != 1 || hosts[0].GetVersion() != 45 {
		t.Fatalf("hosts = %v, %v; want host-g at version 45", hosts, err)
	}
}
