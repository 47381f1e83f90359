package scenario

import (
	"testing"
	"time"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Cluster commands go to the cluster topic keyed by cluster id, never to
// the host topic; the agent's cluster is remembered in its state.
func TestClusterCommandsAreRoutedToTheClusterAggregate(t *testing.T) {
	h := run(t)
	clusters := h.tt.NewQueueTracker(topics.ClusterCommands)

	h.send(t, discovery(payload.HAClusterDiscovery, fixture(t, "discovery/ha_cluster_discovery_hana_scale_up.json"), collectedAt), "trace-1")
	key, value, ok := clusters.Next()
	if !ok {
		t.Fatal("no cluster command")
	}
	cmd := value.(*fleetv1.Command)
	if key != hanaClusterID || cmd.GetAggregateId() != hanaClusterID || cmd.GetRegisterOnlineClusterHost().GetHostId() != fixtureAgent || cmd.GetTraceId() != "trace-1" {
		t.Fatalf("command keyed %q: %v", key, cmd)
	}
	h.noCommand(t)

	h.send(t, discovery(payload.HAClusterDiscovery, []byte("null"), collectedAt.Add(time.Minute)), "trace-2")
	key, value, ok = clusters.Next()
	if !ok || key != hanaClusterID || value.(*fleetv1.Command).GetDeregisterClusterHost().GetHostId() != fixtureAgent {
		t.Fatalf("after null: %q %v", key, value)
	}
	if _, _, ok := clusters.Next(); ok {
		t.Fatal("more than one command")
	}
	state := h.tt.TableValue(scenarioTable, fixtureAgent).(*fleetv1.ScenarioState)
	if state.GetClusterId() != "" || state.GetFingerprints()[payload.HAClusterDiscovery] == 0 {
		t.Fatalf("state %v", state)
	}
}
