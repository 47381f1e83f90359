package cluster

import (
	"testing"

	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var topics = kafka.DefaultTopics()

var clusterTable = goka.GroupTable(goka.Group(topics.Group(kafka.ClusterGroup)))

// The processor as production builds it, on goka's tester: events keyed by
// cluster id carry the state the table holds; a redelivered command emits
// nothing; a record that is no command is dead-lettered, not fatal.
func TestClusterGroup(t *testing.T) {
	h := aggregatetest.Run(t, topics, topics.ClusterCommands, NewProcessor, NewMetrics(prometheus.NewRegistry()))

	register := dcOnline(t, "h1", "node01", "discovery/ha_cluster_discovery_hana_scale_up.json")
	h.Send(t, register)
	events := h.Drain(t)
	if got := names(events); len(got) != 4 || got[0] != "ClusterRegistered" || got[3] != "ClusterHealthChanged" {
		t.Fatalf("events %v", got)
	}
	stored, _ := h.Tester.TableValue(clusterTable, clusterID).(*fleetv1.Cluster)
	if stored == nil || !proto.Equal(stored, events[3].GetState().GetCluster()) || stored.GetHealth() != "passing" || stored.GetVersion() != 4 {
		t.Fatalf("table %v", stored)
	}

	h.Send(t, register)
	if events := h.Drain(t); len(events) != 0 {
		t.Fatalf("redelivered register emitted %v", names(events))
	}

	h.Send(t, command(&fleetv1.MarkClusterHostStale{HostId: "h1", Stale: true}))
	if got := names(h.Drain(t)); len(got) != 1 || got[0] != "ClusterHostStaleChanged" {
		t.Fatalf("stale: %v", got)
	}

	h.Tester.Consume(topics.ClusterCommands, clusterID, []byte("not a command"))
	if _, _, ok := h.DLQ.Next(); !ok {
		t.Fatal("a bad record was not dead-lettered")
	}
	if n := testutil.ToFloat64(h.Metrics.DeadLetters.WithLabelValues("not_protobuf")); n != 1 {
		t.Errorf("dead letters %v", n)
	}
	if n := testutil.ToFloat64(h.Metrics.Commands.WithLabelValues("RegisterOnlineClusterHost", "noop")); n != 1 {
		t.Errorf("noop registers %v", n)
	}
}
