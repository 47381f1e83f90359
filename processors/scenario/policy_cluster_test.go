package scenario

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const (
	hanaClusterID = "47d1190ffb4f781974c8356d7f863b03"
	nwClusterID   = "8bca366a6cb7816555538092a1ddd5aa"
)

// clusterAgent runs cluster discoveries of one agent through detect,
// threading its state as the group table does.
type clusterAgent struct {
	state  *fleetv1.ScenarioState
	offset int64
}

func (a *clusterAgent) discover(t *testing.T, raw []byte) []*fleetv1.Command {
	t.Helper()
	a.offset++
	res, err := detect(a.state, discovery(payload.HAClusterDiscovery, raw, collectedAt.Add(time.Duration(a.offset)*time.Second)), origin{topic: "d", offset: a.offset})
	if err != nil {
		t.Fatal(err)
	}
	if res.state != nil {
		a.state = res.state
	}
	for _, c := range res.commands {
		if c.GetCommandId() == "" || c.GetIssuedAt() == nil || c.GetAggregateId() == "" {
			t.Errorf("envelope not stamped: %v", c)
		}
	}
	return res.commands
}

func describeCluster(c *fleetv1.Command) string {
	return aggregate.CommandName(c) + " " + c.GetAggregateId()
}

func wantCommands(t *testing.T, got []*fleetv1.Command, want ...string) {
	t.Helper()
	var names []string
	for _, c := range got {
		names = append(names, describeCluster(c))
	}
	if len(names) != len(want) {
		t.Fatalf("commands %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("commands %v, want %v", names, want)
		}
	}
}

func TestClusterPolicyLifecycle(t *testing.T) {
	a := &clusterAgent{}
	scaleUp := fixture(t, "discovery/ha_cluster_discovery_hana_scale_up.json")

	cmds := a.discover(t, scaleUp)
	wantCommands(t, cmds, "RegisterOnlineClusterHost "+hanaClusterID)
	r := cmds[0].GetRegisterOnlineClusterHost()
	if r.GetHostId() != fixtureAgent || r.GetClusterName() != "hana_cluster" || !r.GetDesignatedController() ||
		r.GetDetails().GetType() != payload.ClusterTypeHanaScaleUp || r.GetDetails().GetHanaSids()[0] != "PRD" ||
		r.GetDiscoveredHealth().GetReplication() != payload.HealthPassing {
		t.Fatalf("DC registration %v", r)
	}
	if a.state.GetClusterId() != hanaClusterID || a.state.GetClusterCommand() == 0 {
		t.Fatalf("state %v", a.state)
	}

	// New bytes, same facts: nothing; the same bytes: nothing either.
	wantCommands(t, a.discover(t, modified(t, scaleUp, nil)))
	wantCommands(t, a.discover(t, scaleUp))

	cmds = a.discover(t, fixture(t, "discovery/ha_cluster_discovery_hana_scale_up_maintenance.json"))
	wantCommands(t, cmds, "RegisterOnlineClusterHost "+hanaClusterID)
	if !cmds[0].GetRegisterOnlineClusterHost().GetDetails().GetMaintenanceMode() {
		t.Fatal("maintenance mode not sent")
	}

	cmds = a.discover(t, fixture(t, "discovery/ha_cluster_discovery_host_offline.json"))
	wantCommands(t, cmds, "RegisterOfflineClusterHost "+hanaClusterID)
	if o := cmds[0].GetRegisterOfflineClusterHost(); o.GetHostId() != fixtureAgent || o.GetClusterName() != "ha_cluster" {
		t.Fatalf("offline registration %v", o)
	}

	unclustered := fixture(t, "discovery/ha_cluster_discovery_unclustered.json")
	cmds = a.discover(t, unclustered)
	wantCommands(t, cmds, "DeregisterClusterHost "+hanaClusterID)
	if cmds[0].GetDeregisterClusterHost().GetHostId() != fixtureAgent || a.state.GetClusterId() != "" {
		t.Fatalf("deregistration %v, state %v", cmds[0], a.state)
	}
	// Still not clustered (other bytes, so past the fingerprint): nothing.
	wantCommands(t, a.discover(t, []byte(" null")))
}

// Not clustered from the start: nothing to say.
func TestClusterPolicyUnclusteredHost(t *testing.T) {
	a := &clusterAgent{}
	wantCommands(t, a.discover(t, fixture(t, "discovery/ha_cluster_discovery_unclustered.json")))
	if a.state.GetClusterId() != "" {
		t.Fatalf("state %v", a.state)
	}
}

// A host moved to another cluster leaves the old one first.
func TestClusterPolicyClusterChanged(t *testing.T) {
	a := &clusterAgent{}
	a.discover(t, fixture(t, "discovery/ha_cluster_discovery_hana_scale_up.json"))
	cmds := a.discover(t, fixture(t, "discovery/ha_cluster_discovery_ascs_ers.json"))
	wantCommands(t, cmds, "DeregisterClusterHost "+hanaClusterID, "RegisterOnlineClusterHost "+nwClusterID)
	// Not the DC: membership only.
	if r := cmds[1].GetRegisterOnlineClusterHost(); r.GetDesignatedController() || r.GetDetails() != nil || r.GetDiscoveredHealth() != nil {
		t.Fatalf("non-DC registration carries the cluster: %v", r)
	}
	if a.state.GetClusterId() != nwClusterID {
		t.Fatalf("state %v", a.state)
	}
}

// crm_mon showing this host's node offline makes it an offline member even
// when the agent's Online flag says otherwise.
func TestClusterPolicyNodeOfflineInCrmmon(t *testing.T) {
	a := &clusterAgent{state: &fleetv1.ScenarioState{Host: &fleetv1.HostDetails{Hostname: "node01"}, HostRegistered: true}}
	cmds := a.discover(t, fixture(t, "discovery/ha_cluster_discovery_hana_scale_up_node_status.json"))
	wantCommands(t, cmds, "RegisterOfflineClusterHost "+hanaClusterID)
	if cmds[0].GetRegisterOfflineClusterHost().GetHostName() != "node01" {
		t.Fatalf("offline %v", cmds[0])
	}
	b := &clusterAgent{state: &fleetv1.ScenarioState{Host: &fleetv1.HostDetails{Hostname: "node08"}, HostRegistered: true}}
	cmds = b.discover(t, fixture(t, "discovery/ha_cluster_discovery_hana_scale_up_node_status.json"))
	wantCommands(t, cmds, "RegisterOnlineClusterHost "+hanaClusterID)
	if cmds[0].GetRegisterOnlineClusterHost().GetHostName() != "node08" {
		t.Fatalf("online %v", cmds[0])
	}
}

func TestClusterPolicyRejectsMalformed(t *testing.T) {
	state := &fleetv1.ScenarioState{ClusterId: hanaClusterID, ClusterCommand: 7}
	before := proto.CloneOf(state)
	for _, raw := range []string{`{"Name":"no id","Online":false}`, `{"Id":"c","DC":"yes"}`, `[]`} {
		_, err := detect(state, discovery(payload.HAClusterDiscovery, []byte(raw), collectedAt), origin{})
		var r *rejection
		if !errors.As(err, &r) || r.reason != reasonMalformedPayload {
			t.Errorf("%s: %v, want a malformed_payload rejection", raw, err)
		}
	}
	if !proto.Equal(state, before) {
		t.Error("a rejected discovery changed the state")
	}
}

// Two members of one cluster (a real scenario): the DC's registration
// carries the details, the other's only its membership.
func TestClusterPolicyScenarioMembers(t *testing.T) {
	dc := &clusterAgent{}
	member := &clusterAgent{}
	d := dc.discover(t, fixture(t, "scenarios/hana-scale-up-cost-opt/2372b24f-3d7a-5d01-9b1a-a2c4c95c53d4_ha_cluster_discovery.json"))
	m := member.discover(t, fixture(t, "scenarios/hana-scale-up-cost-opt/fa7a5602-232b-5389-96a6-f5f5de6ff9a2_ha_cluster_discovery.json"))
	const id = "81237d528fa520f993b5d6e1cd8e7138"
	wantCommands(t, d, "RegisterOnlineClusterHost "+id)
	wantCommands(t, m, "RegisterOnlineClusterHost "+id)
	if det := d[0].GetRegisterOnlineClusterHost().GetDetails(); !det.GetCostOptimized() || det.GetHanaSids()[0] != "HDC" {
		t.Errorf("DC details %v", det)
	}
	if m[0].GetRegisterOnlineClusterHost().GetDetails() != nil {
		t.Error("the member's registration carries details")
	}
}
