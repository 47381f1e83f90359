package scenario

import (
	"slices"

	"google.golang.org/protobuf/proto"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// The host facts of the discoveries other than host_discovery: the
// provider (cloud_discovery), the SLES subscriptions
// (subscription_discovery) and the saptune status (saptune_discovery).
// Each policy remembers the facts it last saw in the agent's state and
// sends an update only when they differ: a payload whose bytes changed
// but whose facts did not (saptune's publish time and pid change at every
// run) sends nothing.
//
// A fact that arrives before the host's first host_discovery is held in
// the state and sent right after RegisterHost (hostFacts): the host
// aggregate would refuse it for an unknown host, and the agent sends some
// of these only every 15 minutes.

func cloudPolicy(next *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error) {
	p, err := payload.DecodeProvider(d.GetPayload())
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "cloud_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	if next.Provider != nil && proto.Equal(next.Provider, p) {
		return nil, outcomeNoDifference, nil
	}
	next.Provider = p
	return sendIfRegistered(next, updateProvider(p))
}

func subscriptionPolicy(next *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error) {
	subs, err := payload.DecodeSubscriptions(d.GetPayload())
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "subscription_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	if next.SlesSubscriptions != nil && slices.EqualFunc(next.SlesSubscriptions.GetSubscriptions(), subs, func(a, b *fleetv1.SlesSubscription) bool { return proto.Equal(a, b) }) {
		return nil, outcomeNoDifference, nil
	}
	next.SlesSubscriptions = &fleetv1.SlesSubscriptions{Subscriptions: subs}
	return sendIfRegistered(next, updateSubscriptions(next.SlesSubscriptions))
}

func saptunePolicy(next *fleetv1.ScenarioState, d *fleetv1.Discovery) ([]*fleetv1.Command, outcome, error) {
	s, err := payload.DecodeSaptune(d.GetPayload())
	if err != nil {
		return nil, "", reject(reasonMalformedPayload, "saptune_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	if next.SaptuneStatus != nil && proto.Equal(next.SaptuneStatus, s) {
		return nil, outcomeNoDifference, nil
	}
	next.SaptuneStatus = s
	return sendIfRegistered(next, updateSaptune(s))
}

// sendIfRegistered sends c, or holds it (the fact is in next already)
// until the host is registered.
func sendIfRegistered(next *fleetv1.ScenarioState, c *fleetv1.Command) ([]*fleetv1.Command, outcome, error) {
	if !next.GetHostRegistered() {
		return nil, outcomeHostUnknown, nil
	}
	return []*fleetv1.Command{c}, outcomeCommands, nil
}

// hostFacts are the updates of the facts held in state, sent after the
// host's RegisterHost.
func hostFacts(state *fleetv1.ScenarioState) []*fleetv1.Command {
	var out []*fleetv1.Command
	if p := state.GetProvider(); p != nil {
		out = append(out, updateProvider(p))
	}
	if s := state.GetSlesSubscriptions(); s != nil {
		out = append(out, updateSubscriptions(s))
	}
	if s := state.GetSaptuneStatus(); s != nil {
		out = append(out, updateSaptune(s))
	}
	return out
}

func updateProvider(p *fleetv1.HostProvider) *fleetv1.Command {
	return &fleetv1.Command{Body: &fleetv1.Command_UpdateProvider{UpdateProvider: &fleetv1.UpdateProvider{Provider: proto.CloneOf(p)}}}
}

func updateSubscriptions(s *fleetv1.SlesSubscriptions) *fleetv1.Command {
	c := proto.CloneOf(s)
	return &fleetv1.Command{Body: &fleetv1.Command_UpdateSlesSubscriptions{UpdateSlesSubscriptions: &fleetv1.UpdateSlesSubscriptions{Subscriptions: c.GetSubscriptions()}}}
}

func updateSaptune(s *fleetv1.SaptuneStatus) *fleetv1.Command {
	return &fleetv1.Command{Body: &fleetv1.Command_UpdateSaptuneStatus{UpdateSaptuneStatus: &fleetv1.UpdateSaptuneStatus{Status: proto.CloneOf(s)}}}
}
