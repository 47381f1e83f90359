// Package cloudresource is the cloud_resource aggregate: the goka group
// that validates DiscoverResource and DeleteResource commands against the
// resource's current state (its group table, keyed by the resource key
// "<provider>:<account>:<resource id>") and emits ResourceDiscovered,
// ResourceChanged and ResourceDeleted to the event store.
//
// A deletion is an explicit tombstone: the resource stays in the table,
// marked deleted with its last spec, so a later discovery restores it
// (ResourceDiscovered with restored set) with its history intact. Rules are
// pure functions in this file; group.go wires them to Kafka and view.go
// serves the table to readers.
package cloudresource

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/fields"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// AggregateType is the aggregate_type of the resource's events.
const AggregateType = "cloud_resource"

// outcomeStale is the outcome of a command older than the resource's last
// change, or deleting it for a collection it has moved out of: applying it
// would undo newer facts.
const outcomeStale aggregate.Outcome = "stale"

// decision is what one command does to one resource.
type decision = aggregate.Decision[*fleetv1.CloudResource]

// decide applies cmd to the resource's current state (nil: never seen). It
// never modifies current. Events and ids derive from the command and the
// state, never the clock, so a reprocessed command re-emits identical
// records, and applying a command twice changes nothing the second time.
func decide(current *fleetv1.CloudResource, cmd *fleetv1.Command) decision {
	switch body := cmd.GetBody().(type) {
	case *fleetv1.Command_DiscoverResource:
		return discover(current, cmd, body.DiscoverResource)
	case *fleetv1.Command_DeleteResource:
		return remove(current, cmd, body.DeleteResource)
	default:
		return rejected(current, cmd, fmt.Sprintf("%s is not a cloud resource command", aggregate.CommandName(cmd)))
	}
}

func discover(current *fleetv1.CloudResource, cmd *fleetv1.Command, c *fleetv1.DiscoverResource) decision {
	spec := c.GetSpec()
	if err := checkSpec(spec, cmd.GetAggregateId()); err != nil {
		return rejected(current, cmd, err.Error())
	}
	if stale(current, cmd) {
		return decision{Outcome: outcomeStale}
	}
	ch := change{cmd: cmd}
	switch {
	case current == nil:
		ch.next = &fleetv1.CloudResource{Id: cmd.GetAggregateId(), Spec: proto.CloneOf(spec), DiscoveredAt: cmd.GetIssuedAt()}
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ResourceDiscovered{
			ResourceDiscovered: &fleetv1.ResourceDiscovered{Spec: proto.CloneOf(spec)},
		}})
	case current.GetDeleted():
		ch.next = proto.CloneOf(current)
		ch.next.Spec, ch.next.Deleted, ch.next.DeletedAt = proto.CloneOf(spec), false, nil
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ResourceDiscovered{
			ResourceDiscovered: &fleetv1.ResourceDiscovered{Spec: proto.CloneOf(spec), Restored: true},
		}})
	default:
		changed := fields.Diff(current.GetSpec(), spec)
		if len(changed) == 0 {
			return decision{Outcome: aggregate.Noop}
		}
		ch.next = proto.CloneOf(current)
		ch.next.Spec = proto.CloneOf(spec)
		ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ResourceChanged{ResourceChanged: &fleetv1.ResourceChanged{
			Spec:              proto.CloneOf(spec),
			ChangedFields:     changed,
			ChangedTags:       changedTags(current.GetSpec().GetTags(), spec.GetTags()),
			ChangedAttributes: changedAttributes(current.GetSpec(), spec),
		}}})
	}
	return ch.decision()
}

func remove(current *fleetv1.CloudResource, cmd *fleetv1.Command, c *fleetv1.DeleteResource) decision {
	switch {
	case current == nil:
		return rejected(nil, cmd, fmt.Sprintf("resource %s is not known: nothing to delete", cmd.GetAggregateId()))
	case current.GetDeleted():
		return decision{Outcome: aggregate.Noop}
	case stale(current, cmd) || c.GetCollection() != collectionOf(current.GetSpec()):
		return decision{Outcome: outcomeStale}
	}
	ch := change{cmd: cmd, next: proto.CloneOf(current)}
	ch.next.Deleted, ch.next.DeletedAt = true, cmd.GetIssuedAt()
	ch.record(&fleetv1.Event{Payload: &fleetv1.Event_ResourceDeleted{ResourceDeleted: &fleetv1.ResourceDeleted{
		Collection: c.GetCollection(), CollectionId: c.GetCollectionId(),
	}}})
	return ch.decision()
}

// stale reports whether cmd was issued before the resource's last change:
// a collector task retried late must not undo a newer collection.
func stale(current *fleetv1.CloudResource, cmd *fleetv1.Command) bool {
	last := current.GetUpdatedAt()
	return last != nil && cmd.GetIssuedAt().AsTime().Before(last.AsTime())
}

func checkSpec(spec *fleetv1.ResourceSpec, id string) error {
	if spec == nil {
		return errors.New("DiscoverResource has no spec")
	}
	for _, f := range []struct{ name, value string }{
		{"provider", spec.GetProvider()}, {"account", spec.GetAccount()}, {"region", spec.GetRegion()},
		{"kind", spec.GetKind()}, {"resource_id", spec.GetResourceId()},
	} {
		if f.value == "" {
			return fmt.Errorf("DiscoverResource spec has no %s", f.name)
		}
	}
	if key := payload.ResourceKey(spec.GetProvider(), spec.GetAccount(), spec.GetResourceId()); key != id {
		return fmt.Errorf("DiscoverResource for %s carries the spec of %s: key commands by provider:account:resource_id", id, key)
	}
	return nil
}

func collectionOf(s *fleetv1.ResourceSpec) string {
	return payload.CollectionKey(s.GetProvider(), s.GetAccount(), s.GetRegion(), s.GetKind())
}

// changedTags are the tag keys added, removed or given another value.
func changedTags(before, after map[string]string) []string {
	var keys []string
	for k, v := range before {
		if w, ok := after[k]; !ok || w != v {
			keys = append(keys, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// changedAttributes are the top-level attribute keys added, removed or
// given another value.
func changedAttributes(before, after *fleetv1.ResourceSpec) []string {
	b, a := before.GetAttributes().GetFields(), after.GetAttributes().GetFields()
	var keys []string
	for k, v := range b {
		if w, ok := a[k]; !ok || !proto.Equal(v, w) {
			keys = append(keys, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// change accumulates the events of one accepted command.
type change struct {
	cmd    *fleetv1.Command
	next   *fleetv1.CloudResource
	events []*fleetv1.Event
}

// record stamps e, whose payload is set, as the resource's next version.
func (c *change) record(e *fleetv1.Event) {
	c.next.Version++
	c.next.UpdatedAt = c.cmd.GetIssuedAt()
	aggregate.Stamp(e, AggregateType, c.cmd, c.next)
	c.events = append(c.events, e)
}

func (c *change) decision() decision {
	return decision{Events: c.events, State: c.next, Outcome: aggregate.Accepted}
}

// rejected is a CommandRejected event at the resource's current version;
// the state is untouched.
func rejected(current *fleetv1.CloudResource, cmd *fleetv1.Command, reason string) decision {
	return aggregate.Reject(AggregateType, current, cmd, reason)
}
