package host

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// The facts other discoveries than host_discovery tell about a host: each
// replaces what the host had, and the same facts again are a no-op.

func updateProvider(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.UpdateProvider) decision {
	if c.GetProvider().GetProvider() == "" {
		return rejected(current, cmd, "UpdateProvider has no provider")
	}
	if proto.Equal(current.GetProvider(), c.GetProvider()) {
		return decision{Outcome: aggregate.Noop}
	}
	ch := newChange(current, cmd)
	ch.next.Provider = proto.CloneOf(c.GetProvider())
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ProviderUpdated{
		ProviderUpdated: &fleetv1.ProviderUpdated{Provider: proto.CloneOf(c.GetProvider())},
	}})
	return ch.decision(current.GetHealth())
}

func updateSlesSubscriptions(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.UpdateSlesSubscriptions) decision {
	if slices.EqualFunc(current.GetSlesSubscriptions(), c.GetSubscriptions(), func(a, b *fleetv1.SlesSubscription) bool { return proto.Equal(a, b) }) {
		return decision{Outcome: aggregate.Noop}
	}
	ch := newChange(current, cmd)
	ch.next.SlesSubscriptions = cloneAll(c.GetSubscriptions())
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_SlesSubscriptionsUpdated{
		SlesSubscriptionsUpdated: &fleetv1.SlesSubscriptionsUpdated{Subscriptions: cloneAll(c.GetSubscriptions())},
	}})
	return ch.decision(current.GetHealth())
}

func updateSaptuneStatus(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.UpdateSaptuneStatus) decision {
	if c.GetStatus() == nil {
		return rejected(current, cmd, "UpdateSaptuneStatus has no status")
	}
	if proto.Equal(current.GetSaptuneStatus(), c.GetStatus()) {
		return decision{Outcome: aggregate.Noop}
	}
	ch := newChange(current, cmd)
	ch.next.SaptuneStatus = proto.CloneOf(c.GetStatus())
	ch.next.SaptuneHealth = saptuneHealth(c.GetStatus())
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_SaptuneStatusUpdated{
		SaptuneStatusUpdated: &fleetv1.SaptuneStatusUpdated{Status: proto.CloneOf(c.GetStatus()), SaptuneHealth: ch.next.SaptuneHealth},
	}})
	return ch.decision(current.GetHealth())
}

func updateChecksHealth(current *fleetv1.Host, cmd *fleetv1.Command, c *fleetv1.UpdateChecksHealth) decision {
	h := c.GetHealth()
	if _, ok := healthRank[h]; !ok {
		return rejected(current, cmd, fmt.Sprintf("checks health %q is none of unknown, passing, warning, critical", h))
	}
	if h == current.GetChecksHealth() {
		return decision{Outcome: aggregate.Noop}
	}
	ch := newChange(current, cmd)
	ch.next.ChecksHealth = h
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_HostChecksHealthChanged{
		HostChecksHealthChanged: &fleetv1.HostChecksHealthChanged{ChecksHealth: h},
	}})
	return ch.decision(current.GetHealth())
}

func cloneAll[M proto.Message](ms []M) []M {
	out := make([]M, len(ms))
	for i, m := range ms {
		out[i] = proto.CloneOf(m)
	}
	return out
}
