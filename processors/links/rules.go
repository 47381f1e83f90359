// Package links maintains the relationships between entities (cloud
// resources and hosts) and emits EntityLinked and EntityUnlinked events
// when they start and stop holding.
//
// # What a link is
//
// A link is declared by one entity, its source: a cloud resource declares
// its links in its spec (an instance in_vpc, has_security_group,
// behind_load_balancer; a vSphere VM runs_on_host, uses_datastore,
// on_network), and a host declares that it runs_on_vm the EC2 instance its
// agent's cloud_discovery names. A link is active while its source declares
// it, the source is not deleted and the target is not deleted. So it ends
// (EntityUnlinked, with the reason) when the source stops declaring it
// ("undeclared"), when the source is deleted ("source_deleted") or when the
// target is deleted ("target_deleted"); a target restored later brings the
// link back.
//
// # Keying
//
// goka keeps one table value per key and lets a callback write only the
// value of the key it is processing, but a link touches two entities. The
// table is keyed by entity id (resource key "<provider>:<account>:<id>" or
// host id), and each entity's value holds both sides of its links:
//
//   - outgoing: the links it declares, each with a status (pending, active,
//     target deleted). The source owns the link: only the source's key
//     decides whether it holds and emits its events, so every event of one
//     link comes from one key, in order, with that key's version: the
//     links read model collapses them by (from, relation, to) and version.
//   - incoming: who declares a link to it, so its deletion and restoration
//     can be told to them.
//
// The two sides talk through the group's loop topic, each message keyed by
// the entity that must act on it: a source sends attach and detach to the
// target; the target records or forgets the incoming link and answers
// attach (and later announces every deletion or restoration) with its
// status, which the source applies to its links to that target. A newly
// declared link stays pending until that answer, so no link to a deleted
// target is ever reported active. Statuses carry the target's generation
// (incremented at each deletion and restoration), so one overtaken by a
// newer one is ignored.
//
// The inputs are keyed the same way without a hop: fleet.events.v1 is
// keyed by aggregate id (a resource's events by its key) and
// fleet.discoveries.v1 by agent id (a host's cloud_discovery by its host
// id). Resource ids and host ids do not collide in practice: resource keys
// start with "<provider>:<account>:", host ids are agent UUIDs.
//
// # Bounds and what is left out
//
// An entity remembers at most MaxIncoming incoming links (a VPC or a
// datastore can be the target of thousands; the table value must stay far
// below Kafka's message size). Beyond that they are only counted: when such
// a hub is deleted, the links of the sources it does not remember end when
// those sources are collected again without it, which providers enforce
// anyway (AWS refuses to delete a VPC or security group in use).
//
// From the Trento agent's cloud_discovery only AWS identifies the machine
// (account_id and instance_id of the EC2 metadata): that host is linked to
// "aws:<account>:<instance id>". For vmware the agent sends no metadata
// (no BIOS UUID, no managed object reference), and azure, gcp, kvm and
// nutanix have no collector, so those hosts are not linked.
//
// Rules are pure functions in this file; group.go wires them to Kafka.
package links

import (
	"cmp"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cloudresource "github.com/fleetstream/fleetstream/processors/cloud_resource"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// AggregateType is the aggregate_type of link events; their aggregate id
// is the source entity.
const AggregateType = "links"

// Entity types of EntityRef.
const (
	EntityCloudResource = "cloud_resource"
	EntityHost          = "host"
)

// RelationRunsOnVM links a host to the virtual machine (EC2 instance) its
// agent reports it runs on.
const RelationRunsOnVM = "runs_on_vm"

// KindEC2Instance is the AWS collector's kind of EC2 instances.
const KindEC2Instance = "ec2_instance"

// Reasons a link ends (EntityUnlinked.reason).
const (
	ReasonUndeclared    = "undeclared"
	ReasonSourceDeleted = "source_deleted"
	ReasonTargetDeleted = "target_deleted"
)

// MaxIncoming bounds the incoming links an entity remembers.
const MaxIncoming = 2048

// send is a loop message for the entity key.
type send struct {
	key string
	msg *fleetv1.LinkMessage
}

// result is what one input does to one entity.
type result struct {
	// state is the entity after the input, nil when the table need not be
	// written.
	state  *fleetv1.EntityLinks
	events []*fleetv1.Event
	sends  []send
	// traceID of the input, carried on by the loop messages.
	traceID string
	// outcome labels the inputs metric.
	outcome outcome
}

type outcome string

const (
	outcomeApplied   outcome = "applied"   // state or events changed
	outcomeUnchanged outcome = "unchanged" // nothing to do
	outcomeStale     outcome = "stale"     // older than what was applied
	outcomeIgnored   outcome = "ignored"   // not about links
)

// step accumulates the effects of one input on one entity.
type step struct {
	key     string
	next    *fleetv1.EntityLinks
	at      *timestamppb.Timestamp
	cause   string
	traceID string
	events  []*fleetv1.Event
	sends   []send
	changed bool
}

func newStep(state *fleetv1.EntityLinks, key string, at *timestamppb.Timestamp, cause, traceID string) *step {
	next := new(fleetv1.EntityLinks)
	if state != nil {
		next = proto.CloneOf(state)
	}
	return &step{key: key, next: next, at: at, cause: cause, traceID: traceID}
}

func (s *step) result() result {
	r := result{events: s.events, sends: s.sends, traceID: s.traceID, outcome: outcomeUnchanged}
	if s.changed {
		r.state, r.outcome = s.next, outcomeApplied
	}
	return r
}

func (s *step) send(key string, msg *fleetv1.LinkMessage) {
	msg.At, msg.Cause = s.at, s.cause
	s.sends = append(s.sends, send{key: key, msg: msg})
}

// applyResourceEvent follows a cloud_resource event of the resource keyed
// key: its declared links, its deletion and restoration.
func applyResourceEvent(state *fleetv1.EntityLinks, key string, e *fleetv1.Event) result {
	if e.GetAggregateType() != cloudresource.AggregateType {
		return result{outcome: outcomeIgnored}
	}
	res := e.GetState().GetCloudResource()
	var deleted bool
	switch e.GetPayload().(type) {
	case *fleetv1.Event_ResourceDiscovered, *fleetv1.Event_ResourceChanged:
	case *fleetv1.Event_ResourceDeleted:
		deleted = true
	default:
		return result{outcome: outcomeIgnored} // rejections change nothing
	}
	if res == nil {
		return result{outcome: outcomeIgnored}
	}
	if e.GetVersion() <= state.GetResourceVersion() {
		return result{outcome: outcomeStale} // redelivered
	}
	s := newStep(state, key, e.GetOccurredAt(), e.GetEventId(), e.GetTraceId())
	spec := res.GetSpec()
	s.next.Entity = &fleetv1.EntityRef{Type: EntityCloudResource, Id: key, Kind: spec.GetKind()}
	s.next.ResourceVersion = e.GetVersion()
	s.changed = true
	if deleted {
		s.declare(nil, ReasonSourceDeleted)
		s.setDeleted(true)
		return s.result()
	}
	s.setDeleted(false)
	declared := make([]*fleetv1.OutgoingLink, 0, len(spec.GetLinks()))
	for _, l := range spec.GetLinks() {
		declared = append(declared, &fleetv1.OutgoingLink{
			Relation: l.GetRelation(),
			To:       &fleetv1.EntityRef{Type: EntityCloudResource, Id: payload.ResourceKey(spec.GetProvider(), spec.GetAccount(), l.GetId()), Kind: l.GetKind()},
		})
	}
	s.declare(declared, ReasonUndeclared)
	return s.result()
}

// applyCloudDiscovery follows the Trento agent's cloud_discovery of the host
// keyed by its agent id: the VM it runs on.
func applyCloudDiscovery(state *fleetv1.EntityLinks, d *fleetv1.Discovery, traceID, cause string) (result, error) {
	if d.GetDiscoveryType() != payload.CloudDiscovery {
		return result{outcome: outcomeIgnored}, nil
	}
	c, err := payload.DecodeCloud(d.GetPayload())
	if err != nil {
		return result{}, fmt.Errorf("cloud_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	aws, err := c.AWS()
	if err != nil {
		return result{}, fmt.Errorf("cloud_discovery of agent %s: %w", d.GetAgentId(), err)
	}
	if last := state.GetObservedAt(); last != nil && d.GetCollectedAt().AsTime().Before(last.AsTime()) {
		return result{outcome: outcomeStale}, nil
	}
	var declared []*fleetv1.OutgoingLink
	if aws != nil && aws.AccountID != "" && aws.InstanceID != "" {
		declared = append(declared, &fleetv1.OutgoingLink{
			Relation: RelationRunsOnVM,
			To:       &fleetv1.EntityRef{Type: EntityCloudResource, Id: payload.ResourceKey(payload.CloudAWS, aws.AccountID, aws.InstanceID), Kind: KindEC2Instance},
		})
	}
	s := newStep(state, d.GetAgentId(), d.GetCollectedAt(), cause, traceID)
	if s.next.Entity == nil || s.next.Entity.GetType() != EntityHost {
		s.next.Entity = &fleetv1.EntityRef{Type: EntityHost, Id: d.GetAgentId()}
		s.changed = true
	}
	s.declare(declared, ReasonUndeclared)
	if s.changed {
		// Only a change is recorded: an unchanged report every few
		// minutes would otherwise rewrite the table each time.
		s.next.ObservedAt = d.GetCollectedAt()
	}
	return s.result(), nil
}

// applyMessage follows a loop message to the entity keyed key.
func applyMessage(state *fleetv1.EntityLinks, key string, m *fleetv1.LinkMessage, traceID string) result {
	s := newStep(state, key, m.GetAt(), m.GetCause(), traceID)
	switch body := m.GetBody().(type) {
	case *fleetv1.LinkMessage_Attach:
		s.attach(body.Attach)
	case *fleetv1.LinkMessage_Detach:
		s.detach(body.Detach)
	case *fleetv1.LinkMessage_TargetStatus:
		s.targetStatus(body.TargetStatus)
	default:
		return result{outcome: outcomeIgnored}
	}
	return s.result()
}

// declare makes the entity's outgoing links exactly declared: links no
// longer declared end with reason, new ones are attached to their targets
// and stay pending until those answer.
func (s *step) declare(declared []*fleetv1.OutgoingLink, reason string) {
	slices.SortFunc(declared, compareOutgoing)
	declared = slices.CompactFunc(declared, func(a, b *fleetv1.OutgoingLink) bool { return compareOutgoing(a, b) == 0 })
	current := s.next.GetOutgoing()
	var next []*fleetv1.OutgoingLink
	for _, l := range current {
		if _, kept := slices.BinarySearchFunc(declared, l, compareOutgoing); kept {
			next = append(next, l)
			continue
		}
		if l.GetStatus() == fleetv1.LinkStatus_LINK_STATUS_ACTIVE {
			s.unlinked(l, reason)
		}
		s.send(l.GetTo().GetId(), &fleetv1.LinkMessage{Body: &fleetv1.LinkMessage_Detach{
			Detach: &fleetv1.LinkDetach{From: proto.CloneOf(s.next.GetEntity()), Relation: l.GetRelation()},
		}})
		s.changed = true
	}
	for _, l := range declared {
		if _, known := slices.BinarySearchFunc(current, l, compareOutgoing); known {
			continue
		}
		added := &fleetv1.OutgoingLink{Relation: l.GetRelation(), To: l.GetTo(), Status: fleetv1.LinkStatus_LINK_STATUS_PENDING}
		next = append(next, added)
		s.send(l.GetTo().GetId(), &fleetv1.LinkMessage{Body: &fleetv1.LinkMessage_Attach{
			Attach: &fleetv1.LinkAttach{From: proto.CloneOf(s.next.GetEntity()), Relation: l.GetRelation(), To: proto.CloneOf(l.GetTo())},
		}})
		s.changed = true
	}
	slices.SortFunc(next, compareOutgoing)
	s.next.Outgoing = next
}

// setDeleted records the entity's deletion or restoration and tells every
// source of an incoming link.
func (s *step) setDeleted(deleted bool) {
	if s.next.GetDeleted() == deleted {
		return
	}
	s.next.Deleted = deleted
	s.next.Generation++
	s.changed = true
	notified := map[string]bool{}
	for _, in := range s.next.GetIncoming() {
		if notified[in.GetFrom().GetId()] {
			continue // one status covers every relation from that source
		}
		notified[in.GetFrom().GetId()] = true
		s.send(in.GetFrom().GetId(), s.status())
	}
}

func (s *step) status() *fleetv1.LinkMessage {
	return &fleetv1.LinkMessage{Body: &fleetv1.LinkMessage_TargetStatus{TargetStatus: &fleetv1.TargetStatus{
		Target: proto.CloneOf(s.next.GetEntity()), Deleted: s.next.GetDeleted(), Generation: s.next.GetGeneration(),
	}}}
}

func (s *step) attach(a *fleetv1.LinkAttach) {
	if s.next.GetEntity() == nil {
		// A target never discovered itself learns who it is from its
		// first link.
		s.next.Entity = proto.CloneOf(a.GetTo())
		s.changed = true
	}
	in := &fleetv1.IncomingLink{From: a.GetFrom(), Relation: a.GetRelation()}
	if i, found := slices.BinarySearchFunc(s.next.Incoming, in, compareIncoming); !found {
		if len(s.next.Incoming) < MaxIncoming {
			s.next.Incoming = slices.Insert(s.next.Incoming, i, in)
		} else {
			s.next.UntrackedIncoming++
		}
		s.changed = true
	}
	s.send(a.GetFrom().GetId(), s.status())
}

func (s *step) detach(d *fleetv1.LinkDetach) {
	in := &fleetv1.IncomingLink{From: d.GetFrom(), Relation: d.GetRelation()}
	if i, found := slices.BinarySearchFunc(s.next.Incoming, in, compareIncoming); found {
		s.next.Incoming = slices.Delete(s.next.Incoming, i, i+1)
		s.changed = true
	} else if s.next.GetUntrackedIncoming() > 0 {
		s.next.UntrackedIncoming--
		s.changed = true
	}
}

// targetStatus applies a target's status to the links to it.
func (s *step) targetStatus(t *fleetv1.TargetStatus) {
	for _, l := range s.next.GetOutgoing() {
		if l.GetTo().GetId() != t.GetTarget().GetId() || t.GetGeneration() < l.GetTargetGeneration() {
			continue
		}
		if l.GetTargetGeneration() != t.GetGeneration() {
			l.TargetGeneration = t.GetGeneration()
			s.changed = true
		}
		was := l.GetStatus()
		switch {
		case t.GetDeleted() && was != fleetv1.LinkStatus_LINK_STATUS_TARGET_DELETED:
			l.Status = fleetv1.LinkStatus_LINK_STATUS_TARGET_DELETED
			if was == fleetv1.LinkStatus_LINK_STATUS_ACTIVE {
				s.unlinked(l, ReasonTargetDeleted)
			}
			s.changed = true
		case !t.GetDeleted() && was != fleetv1.LinkStatus_LINK_STATUS_ACTIVE:
			l.Status = fleetv1.LinkStatus_LINK_STATUS_ACTIVE
			s.linked(l)
			s.changed = true
		}
	}
}

func (s *step) linked(l *fleetv1.OutgoingLink) {
	from, to := proto.CloneOf(s.next.GetEntity()), proto.CloneOf(l.GetTo())
	s.record(&fleetv1.Event{Payload: &fleetv1.Event_EntityLinked{EntityLinked: &fleetv1.EntityLinked{
		From: from, Relation: l.GetRelation(), To: to,
	}}}, &fleetv1.Link{From: from, Relation: l.GetRelation(), To: to, Active: true})
}

func (s *step) unlinked(l *fleetv1.OutgoingLink, reason string) {
	from, to := proto.CloneOf(s.next.GetEntity()), proto.CloneOf(l.GetTo())
	s.record(&fleetv1.Event{Payload: &fleetv1.Event_EntityUnlinked{EntityUnlinked: &fleetv1.EntityUnlinked{
		From: from, Relation: l.GetRelation(), To: to, Reason: reason,
	}}}, &fleetv1.Link{From: from, Relation: l.GetRelation(), To: to, Reason: reason})
}

// record stamps e, whose payload is set, as the entity's next link
// version, with the link after it as state.
func (s *step) record(e *fleetv1.Event, link *fleetv1.Link) {
	s.next.Version++
	s.changed = true
	v := s.next.GetVersion()
	link.Version, link.UpdatedAt = v, s.at
	e.EventId = aggregate.EventID(AggregateType, s.key, v)
	e.AggregateType = AggregateType
	e.AggregateId = s.key
	e.Version = v
	e.OccurredAt = s.at
	e.TraceId = s.traceID
	// The input that caused the event: links have no commands.
	e.CommandId = s.cause
	e.State = &fleetv1.AggregateState{State: &fleetv1.AggregateState_Link{Link: link}}
	s.events = append(s.events, e)
}

func compareOutgoing(a, b *fleetv1.OutgoingLink) int {
	return cmp.Or(cmp.Compare(a.GetRelation(), b.GetRelation()), compareRef(a.GetTo(), b.GetTo()))
}

func compareIncoming(a, b *fleetv1.IncomingLink) int {
	return cmp.Or(compareRef(a.GetFrom(), b.GetFrom()), cmp.Compare(a.GetRelation(), b.GetRelation()))
}

func compareRef(a, b *fleetv1.EntityRef) int {
	return cmp.Or(cmp.Compare(a.GetType(), b.GetType()), cmp.Compare(a.GetId(), b.GetId()), cmp.Compare(a.GetKind(), b.GetKind()))
}
