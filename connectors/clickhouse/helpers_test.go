package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/chlocal"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func TestMain(m *testing.M) { chlocal.Main(m) }

// database returns a connection and a fresh database, migrated when
// migrate is true.
func database(t *testing.T, migrate bool) (driver.Conn, string) {
	t.Helper()
	addr, db := chlocal.ForTest(t)
	ctx := context.Background()
	conn, err := Open(ctx, Options{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if migrate {
		if err := Migrate(ctx, conn, db, nil); err != nil {
			t.Fatal(err)
		}
	}
	return conn, db
}

// cluster is a Kafka with fleetstream's topics: kfake, or the real broker
// of the integration lane.
type cluster struct {
	seeds  []string
	topics kafka.Topics
	client *kgo.Client // producer and reader
	adm    *kadm.Client
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	topics := kafkatest.Namespace(t, kafka.DefaultTopics())
	topics.Partitions = 4
	c := &cluster{seeds: kafkatest.Cluster(t, topics), topics: topics}
	var err error
	if c.client, err = kafka.NewClient(c.seeds); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.client.Close)
	c.adm = kadm.NewClient(c.client)
	return c
}

// produceEvents writes events keyed by aggregate id and returns the
// records as Kafka stored them (with partition and offset).
func (c *cluster) produceEvents(t *testing.T, events ...*fleetv1.Event) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, len(events))
	for i, ev := range events {
		value, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: c.topics.Events, Key: []byte(ev.GetAggregateId()), Value: value,
			Headers: kafka.RecordHeaders(kafka.Headers(ev, ev.GetTraceId()))}
	}
	return c.produce(t, recs...)
}

func (c *cluster) produce(t *testing.T, recs ...*kgo.Record) []*kgo.Record {
	t.Helper()
	if err := c.client.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// runSink starts a sink on the cluster; stop (also run at cleanup) stops
// it and waits for Run to return.
func (c *cluster) runSink(t *testing.T, conn driver.Conn, db string, m *Metrics, tune ...func(*SinkOptions)) (stop func()) {
	t.Helper()
	opts := SinkOptions{Seeds: c.seeds, Topics: c.topics, Group: c.topics.Group(DefaultSinkGroup), Conn: conn, Database: db,
		FlushInterval: 20 * time.Millisecond, Metrics: m, Logger: testLogger(t)}
	for _, f := range tune {
		f(&opts)
	}
	s, err := NewSink(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("sink Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("sink did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// committed returns the sink group's committed offset per partition of the
// events topic (absent: nothing committed).
func (c *cluster) committed(t *testing.T) map[int32]int64 {
	t.Helper()
	out := map[int32]int64{}
	offs, err := c.adm.FetchOffsets(context.Background(), c.topics.Group(DefaultSinkGroup))
	if errors.Is(err, kerr.GroupIDNotFound) {
		return out // the group has not joined yet
	}
	if err != nil {
		t.Fatal(err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == c.topics.Events && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// waitCaughtUp waits until the sink group has committed the end of every
// partition of the events topic: everything produced so far is written.
func (c *cluster) waitCaughtUp(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := c.adm.ListEndOffsets(context.Background(), c.topics.Events)
		if err != nil {
			t.Fatal(err)
		}
		committed := c.committed(t)
		behind := 0
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 && committed[o.Partition] < o.Offset {
				behind++
			}
		})
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink still behind on %d partitions after 30s (committed %v)", behind, committed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var epoch = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

// hostState is a host aggregate state at a version.
func hostState(id, hostname, osName, osVersion, health string, version uint64) *fleetv1.Host {
	return &fleetv1.Host{
		Id: id,
		Details: &fleetv1.HostDetails{
			Hostname: hostname, Fqdn: hostname + ".example.internal", OsName: osName, OsVersion: osVersion,
			KernelVersion: "5.14.21", Arch: "x86_64", CpuCount: 4, SocketCount: 1, TotalMemoryMb: 16384,
			IpAddresses: []string{"10.0.0.1", "10.0.0.2"}, AgentVersion: "2.4.0",
		},
		Health:       health,
		Heartbeat:    "unknown",
		RegisteredAt: timestamppb.New(epoch),
		UpdatedAt:    timestamppb.New(epoch.Add(time.Duration(version) * time.Minute)),
		Version:      version,
	}
}

// hostEvent wraps a host state in an event with the given payload.
func hostEvent(h *fleetv1.Host, eventID string, payload func(*fleetv1.Event)) *fleetv1.Event {
	ev := &fleetv1.Event{
		EventId: eventID, AggregateType: "host", AggregateId: h.GetId(), Version: h.GetVersion(),
		OccurredAt: h.GetUpdatedAt(), TraceId: "trace-" + eventID, CommandId: "cmd-" + eventID,
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Host{Host: h}},
	}
	payload(ev)
	return ev
}

func registered(h *fleetv1.Host, eventID string) *fleetv1.Event {
	return hostEvent(h, eventID, func(ev *fleetv1.Event) {
		ev.Payload = &fleetv1.Event_HostRegistered{HostRegistered: &fleetv1.HostRegistered{Details: h.GetDetails()}}
	})
}

func detailsUpdated(h *fleetv1.Host, eventID string, changed ...string) *fleetv1.Event {
	return hostEvent(h, eventID, func(ev *fleetv1.Event) {
		ev.Payload = &fleetv1.Event_HostDetailsUpdated{HostDetailsUpdated: &fleetv1.HostDetailsUpdated{Details: h.GetDetails(), ChangedFields: changed}}
	})
}

func rejected(h *fleetv1.Host, eventID, reason string) *fleetv1.Event {
	return hostEvent(h, eventID, func(ev *fleetv1.Event) {
		ev.Payload = &fleetv1.Event_CommandRejected{CommandRejected: &fleetv1.CommandRejected{Command: "UpdateHostDetails", Reason: reason}}
	})
}

func heartbeat(h *fleetv1.Host, eventID string) *fleetv1.Event {
	return hostEvent(h, eventID, func(ev *fleetv1.Event) {
		ev.Payload = &fleetv1.Event_HeartbeatSucceeded{HeartbeatSucceeded: &fleetv1.HeartbeatSucceeded{At: h.GetLastHeartbeatAt()}}
	})
}

// writeEvents projects events and inserts them the way the sink does,
// without Kafka: for query tests that need many rows.
func writeEvents(t *testing.T, conn driver.Conn, db string, events ...*fleetv1.Event) {
	t.Helper()
	var ev eventColumns
	var hosts hostColumns
	for i, e := range events {
		value, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		p, err := project(value)
		if err != nil {
			t.Fatal(err)
		}
		ev.add(p, 0, int64(i))
		if p.host != nil {
			hosts.add(p)
		}
	}
	ctx := context.Background()
	if err := insert(ctx, conn, fmt.Sprintf(eventsInsert, db+".events"), ev.values()); err != nil {
		t.Fatal(err)
	}
	if hosts.len() > 0 {
		if err := insert(ctx, conn, fmt.Sprintf(hostsInsert, db+".hosts"), hosts.values()); err != nil {
			t.Fatal(err)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}
