package scenario

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/fields"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// hostPolicy registers the host on its first discovery and afterwards
// sends only the fields that differ from the details last sent.
func hostPolicy(next *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error) {
	details, err := payload.DecodeHost(d.GetPayload())
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "host_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	if !next.GetHostRegistered() {
		next.Host, next.HostRegistered = details, true
		register := &fleetv1.Command{Body: &fleetv1.Command_RegisterHost{
			RegisterHost: &fleetv1.RegisterHost{Details: proto.CloneOf(details)},
		}}
		// Then the facts that came before (policy_host_facts.go).
		return append([]*fleetv1.Command{register}, hostFacts(next)...), outcomeCommands, nil
	}
	changed := fields.Diff(next.GetHost(), details)
	if len(changed) == 0 {
		next.Host = details
		return nil, outcomeNoDifference, nil
	}
	update := new(fleetv1.HostDetails)
	if err := fields.Copy(update, details, changed); err != nil {
		return nil, "", fmt.Errorf("host_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	next.Host = details
	return []*fleetv1.Command{{Body: &fleetv1.Command_UpdateHostDetails{
		UpdateHostDetails: &fleetv1.UpdateHostDetails{Details: update, ChangedFields: changed},
	}}}, outcomeCommands, nil
}
