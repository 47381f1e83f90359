package scenario

import (
	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// clusterPolicy turns an ha_cluster_discovery into cluster membership
// commands, addressed to the cluster the payload names (its Id):
//
//   - a null payload after the host was clustered: DeregisterClusterHost;
//   - another cluster id than before: DeregisterClusterHost from the old
//     cluster, then a registration to the new one;
//   - RegisterOfflineClusterHost when the host is not online in the
//     cluster (the agent says so, or crm_mon shows its node offline),
//     RegisterOnlineClusterHost otherwise. Only the designated
//     controller's carries the cluster's details and discovered health:
//     the other members' views are partial or lagging.
//
// The registration is remembered by its hash: a discovery whose bytes
// changed but whose registration did not (crm_mon's counters, key order)
// sends nothing.
func clusterPolicy(next *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error) {
	p, err := payload.DecodeHACluster(d.GetPayload())
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "ha_cluster_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	var commands []*fleetv1.Command
	previous := next.GetClusterId()
	if previous != "" && (p == nil || p.ID != previous) {
		commands = append(commands, &fleetv1.Command{
			AggregateId: previous,
			Body: &fleetv1.Command_DeregisterClusterHost{DeregisterClusterHost: &fleetv1.DeregisterClusterHost{
				HostId: d.GetAgentId(),
			}},
		})
		next.ClusterId, next.ClusterCommand = "", 0
	}
	if p == nil {
		if len(commands) == 0 {
			return nil, outcomeNoDifference, nil
		}
		return commands, outcomeCommands, nil
	}
	register := clusterRegistration(p, d.GetAgentId(), next.GetHost().GetHostname())
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(register)
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "ha_cluster_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	hash := xxhash.Sum64(b)
	if next.GetClusterId() == p.ID && next.GetClusterCommand() == hash {
		return nil, outcomeNoDifference, nil
	}
	next.ClusterId, next.ClusterCommand = p.ID, hash
	register.AggregateId = p.ID
	return append(commands, register), outcomeCommands, nil
}

// clusterRegistration is the register command (aggregate id unset) of the
// host agentID, named hostname, in the discovery p.
func clusterRegistration(p *payload.HACluster, agentID, hostname string) *fleetv1.Command {
	details := p.Details()
	if !p.HostOnline() || !nodeOnline(details, hostname) {
		return &fleetv1.Command{Body: &fleetv1.Command_RegisterOfflineClusterHost{RegisterOfflineClusterHost: &fleetv1.RegisterOfflineClusterHost{
			HostId: agentID, ClusterName: p.Name, HostName: hostname,
		}}}
	}
	c := &fleetv1.RegisterOnlineClusterHost{HostId: agentID, ClusterName: p.Name, HostName: hostname, DesignatedController: p.DC}
	if p.DC {
		c.Details, c.DiscoveredHealth = details, payload.DiscoveredHealth(details)
	}
	return &fleetv1.Command{Body: &fleetv1.Command_RegisterOnlineClusterHost{RegisterOnlineClusterHost: c}}
}

// nodeOnline is false when crm_mon lists the node hostname offline; a host
// whose name is not known yet, or not among the nodes, is taken at the
// agent's word.
func nodeOnline(d *fleetv1.ClusterDetails, hostname string) bool {
	for _, n := range d.GetNodes() {
		if hostname != "" && n.GetName() == hostname {
			return n.GetOnline()
		}
	}
	return true
}
