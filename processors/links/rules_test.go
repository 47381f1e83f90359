package links

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cloudresource "github.com/fleetstream/fleetstream/processors/cloud_resource"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// world applies the rules to a set of entities and delivers their loop
// messages in order, as the loop topic does for one partition.
type world struct {
	states map[string]*fleetv1.EntityLinks
	queue  []send
	events []*fleetv1.Event
	// resource versions, per key, for resourceEvent.
	versions map[string]uint64
}

func newWorld() *world {
	return &world{states: map[string]*fleetv1.EntityLinks{}, versions: map[string]uint64{}}
}

func (w *world) apply(key string, r result) {
	if r.state != nil {
		w.states[key] = r.state
	}
	w.events = append(w.events, r.events...)
	w.queue = append(w.queue, r.sends...)
}

// settle delivers loop messages until none is left.
func (w *world) settle() {
	for len(w.queue) > 0 {
		s := w.queue[0]
		w.queue = w.queue[1:]
		w.apply(s.key, applyMessage(w.states[s.key], s.key, s.msg, "trace-loop"))
	}
}

// drain returns the link events since the last call as
// "Linked|Unlinked(reason) from -relation-> to".
func (w *world) drain(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, e := range w.events {
		if e.GetAggregateType() != AggregateType || e.GetAggregateId() != e.GetState().GetLink().GetFrom().GetId() {
			t.Errorf("event envelope %v", e)
		}
		switch p := e.GetPayload().(type) {
		case *fleetv1.Event_EntityLinked:
			out = append(out, fmt.Sprintf("Linked %s -%s-> %s", p.EntityLinked.From.Id, p.EntityLinked.Relation, p.EntityLinked.To.Id))
		case *fleetv1.Event_EntityUnlinked:
			out = append(out, fmt.Sprintf("Unlinked(%s) %s -%s-> %s", p.EntityUnlinked.Reason, p.EntityUnlinked.From.Id, p.EntityUnlinked.Relation, p.EntityUnlinked.To.Id))
		}
	}
	w.events = nil
	return out
}

// resource emits a cloud_resource event for an AWS resource of account
// 111 and applies it, then settles.
func (w *world) resource(t *testing.T, id, kind string, deleted bool, links ...*fleetv1.ResourceLink) {
	t.Helper()
	key := payload.ResourceKey("aws", "111", id)
	w.versions[key]++
	v := w.versions[key]
	spec := &fleetv1.ResourceSpec{Provider: "aws", Account: "111", Region: "eu-west-1", Kind: kind, ResourceId: id, Links: links}
	e := &fleetv1.Event{
		EventId: fmt.Sprintf("ev-%s-%d", id, v), AggregateType: cloudresource.AggregateType, AggregateId: key, Version: v,
		OccurredAt: timestamppb.New(t0.Add(time.Duration(v) * time.Minute)), TraceId: "trace-" + id,
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_CloudResource{CloudResource: &fleetv1.CloudResource{Id: key, Spec: spec, Deleted: deleted, Version: v}}},
	}
	switch {
	case deleted:
		e.Payload = &fleetv1.Event_ResourceDeleted{ResourceDeleted: &fleetv1.ResourceDeleted{}}
	case v == 1:
		e.Payload = &fleetv1.Event_ResourceDiscovered{ResourceDiscovered: &fleetv1.ResourceDiscovered{Spec: spec}}
	default:
		e.Payload = &fleetv1.Event_ResourceChanged{ResourceChanged: &fleetv1.ResourceChanged{Spec: spec}}
	}
	r := applyResourceEvent(w.states[key], key, e)
	if r.outcome == outcomeStale || r.outcome == outcomeIgnored {
		t.Fatalf("event %v: %s", e, r.outcome)
	}
	w.apply(key, r)
	w.settle()
}

func link(relation, kind, id string) *fleetv1.ResourceLink {
	return &fleetv1.ResourceLink{Relation: relation, Kind: kind, Id: id}
}

func expect(t *testing.T, w *world, want ...string) {
	t.Helper()
	if got := w.drain(t); !slices.Equal(got, want) {
		t.Fatalf("events\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestResourceLinksLifecycle(t *testing.T) {
	w := newWorld()
	const i1, vpc, sg = "aws:111:i-1", "aws:111:vpc-1", "aws:111:sg-1"

	w.resource(t, "i-1", "ec2_instance", false, link("in_vpc", "vpc", "vpc-1"), link("has_security_group", "security_group", "sg-1"))
	expect(t, w, "Linked "+i1+" -has_security_group-> "+sg, "Linked "+i1+" -in_vpc-> "+vpc)
	if v := w.states[vpc]; v.GetEntity().GetKind() != "vpc" || len(v.GetIncoming()) != 1 || v.GetIncoming()[0].GetFrom().GetId() != i1 {
		t.Fatalf("target state %v", v)
	}
	if got := current(w.states[i1]); len(got) != 2 || !got[0].Active {
		t.Fatalf("current links %v", got)
	}

	w.resource(t, "vpc-1", "vpc", false) // the target discovered itself: nothing changes
	expect(t, w)

	w.resource(t, "i-1", "ec2_instance", false, link("in_vpc", "vpc", "vpc-1")) // security group dropped
	expect(t, w, "Unlinked(undeclared) "+i1+" -has_security_group-> "+sg)
	if in := w.states[sg].GetIncoming(); len(in) != 0 {
		t.Fatalf("detached target still lists %v", in)
	}

	w.resource(t, "vpc-1", "vpc", true) // target deleted
	expect(t, w, "Unlinked(target_deleted) "+i1+" -in_vpc-> "+vpc)
	if got := current(w.states[vpc]); len(got) != 0 {
		t.Fatalf("a deleted entity lists links %v", got)
	}
	w.resource(t, "vpc-1", "vpc", false) // and restored
	expect(t, w, "Linked "+i1+" -in_vpc-> "+vpc)

	w.resource(t, "i-1", "ec2_instance", true) // source deleted
	expect(t, w, "Unlinked(source_deleted) "+i1+" -in_vpc-> "+vpc)
	if s := w.states[i1]; len(s.GetOutgoing()) != 0 || !s.GetDeleted() || len(w.states[vpc].GetIncoming()) != 0 {
		t.Fatalf("after the source's deletion: %v / %v", s, w.states[vpc])
	}
	w.resource(t, "i-1", "ec2_instance", false, link("in_vpc", "vpc", "vpc-1")) // restored
	expect(t, w, "Linked "+i1+" -in_vpc-> "+vpc)

	// Versions count the source's link events, one by one.
	if v := w.states[i1].GetVersion(); v != 7 {
		t.Errorf("i-1 link version %d, want 7", v)
	}
}

func TestNoLinkToADeletedTarget(t *testing.T) {
	w := newWorld()
	w.resource(t, "vpc-9", "vpc", false)
	w.resource(t, "vpc-9", "vpc", true)
	w.resource(t, "i-2", "ec2_instance", false, link("in_vpc", "vpc", "vpc-9"))
	expect(t, w) // never reported active
	if l := w.states["aws:111:i-2"].GetOutgoing()[0]; l.GetStatus() != fleetv1.LinkStatus_LINK_STATUS_TARGET_DELETED {
		t.Fatalf("link %v", l)
	}
	w.resource(t, "vpc-9", "vpc", false)
	expect(t, w, "Linked aws:111:i-2 -in_vpc-> aws:111:vpc-9")
}

func TestStaleTargetStatusIsIgnored(t *testing.T) {
	w := newWorld()
	w.resource(t, "i-1", "ec2_instance", false, link("in_vpc", "vpc", "vpc-1"))
	w.drain(t)
	// An old "deleted" status (generation 1) after a newer "restored" one
	// (generation 2) changes nothing.
	for _, st := range []*fleetv1.TargetStatus{{Target: &fleetv1.EntityRef{Id: "aws:111:vpc-1"}, Deleted: false, Generation: 2}, {Target: &fleetv1.EntityRef{Id: "aws:111:vpc-1"}, Deleted: true, Generation: 1}} {
		w.apply("aws:111:i-1", applyMessage(w.states["aws:111:i-1"], "aws:111:i-1", &fleetv1.LinkMessage{Body: &fleetv1.LinkMessage_TargetStatus{TargetStatus: st}}, ""))
	}
	expect(t, w)
}

func TestResourceEventsAreAppliedOnce(t *testing.T) {
	w := newWorld()
	w.resource(t, "i-1", "ec2_instance", false, link("in_vpc", "vpc", "vpc-1"))
	w.drain(t)
	old := &fleetv1.Event{AggregateType: cloudresource.AggregateType, AggregateId: "aws:111:i-1", Version: 1,
		Payload: &fleetv1.Event_ResourceDiscovered{ResourceDiscovered: &fleetv1.ResourceDiscovered{}},
		State:   &fleetv1.AggregateState{State: &fleetv1.AggregateState_CloudResource{CloudResource: &fleetv1.CloudResource{Spec: &fleetv1.ResourceSpec{}}}}}
	if r := applyResourceEvent(w.states["aws:111:i-1"], "aws:111:i-1", old); r.outcome != outcomeStale || r.state != nil || len(r.sends) != 0 {
		t.Fatalf("redelivered event: %+v", r)
	}
	host := &fleetv1.Event{AggregateType: "host", AggregateId: "h1", Version: 9}
	if r := applyResourceEvent(nil, "h1", host); r.outcome != outcomeIgnored {
		t.Fatalf("host event: %s", r.outcome)
	}
}

// fixturePayload reads a Trento fixture's payload.
func fixturePayload(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/trento/discovery/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		AgentID string          `json:"agent_id"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Payload
}

const agentID = "0a055c90-4cb6-54ce-ac9c-ae3fedaf40d4"

func cloudDiscovery(t *testing.T, fixture string, at time.Time) *fleetv1.Discovery {
	return &fleetv1.Discovery{AgentId: agentID, DiscoveryType: payload.CloudDiscovery, CollectedAt: timestamppb.New(at), Payload: fixturePayload(t, fixture)}
}

func TestHostLinkedToItsEC2Instance(t *testing.T) {
	w := newWorld()
	const instance = "aws:12345:i-12345"
	apply := func(d *fleetv1.Discovery) result {
		t.Helper()
		r, err := applyCloudDiscovery(w.states[agentID], d, "trace-cloud", "discoveries/0/7")
		if err != nil {
			t.Fatal(err)
		}
		w.apply(agentID, r)
		w.settle()
		return r
	}

	apply(cloudDiscovery(t, "cloud_discovery_aws.json", t0))
	expect(t, w, "Linked "+agentID+" -runs_on_vm-> "+instance)
	if h := w.states[agentID]; h.GetEntity().GetType() != EntityHost || h.GetOutgoing()[0].GetTo().GetKind() != KindEC2Instance {
		t.Fatalf("host state %v", h)
	}
	if r := apply(cloudDiscovery(t, "cloud_discovery_aws.json", t0.Add(time.Minute))); r.state != nil || r.outcome != outcomeUnchanged {
		t.Fatalf("the same report again: %+v", r)
	}

	// The instance is collected, then terminated.
	w.versions[instance] = 0
	key := instance
	e := &fleetv1.Event{EventId: "e1", AggregateType: cloudresource.AggregateType, AggregateId: key, Version: 1,
		Payload: &fleetv1.Event_ResourceDeleted{ResourceDeleted: &fleetv1.ResourceDeleted{}},
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_CloudResource{CloudResource: &fleetv1.CloudResource{
			Id: key, Deleted: true, Spec: &fleetv1.ResourceSpec{Provider: "aws", Account: "12345", Kind: KindEC2Instance, ResourceId: "i-12345"}}}}}
	w.apply(key, applyResourceEvent(w.states[key], key, e))
	w.settle()
	expect(t, w, "Unlinked(target_deleted) "+agentID+" -runs_on_vm-> "+instance)

	// The host now reports vmware (no metadata): no link, the old one detached.
	apply(cloudDiscovery(t, "cloud_discovery_vmware.json", t0.Add(2*time.Minute)))
	expect(t, w)
	if len(w.states[agentID].GetOutgoing()) != 0 || len(w.states[instance].GetIncoming()) != 0 {
		t.Fatalf("after vmware: %v / %v", w.states[agentID], w.states[instance])
	}
	// An older report arriving late is ignored.
	if r := apply(cloudDiscovery(t, "cloud_discovery_aws.json", t0)); r.outcome != outcomeStale {
		t.Fatalf("older report: %s", r.outcome)
	}

	bad := cloudDiscovery(t, "cloud_discovery_aws.json", t0.Add(time.Hour))
	bad.Payload = []byte(`{"Provider":"aws","Metadata":{"account_id":12345}}`)
	if _, err := applyCloudDiscovery(nil, bad, "", ""); err == nil {
		t.Fatal("unreadable metadata accepted")
	}
	if r, err := applyCloudDiscovery(nil, &fleetv1.Discovery{AgentId: agentID, DiscoveryType: payload.HostDiscovery}, "", ""); err != nil || r.outcome != outcomeIgnored {
		t.Fatalf("host_discovery: %v %v", r, err)
	}
}

func TestIncomingLinksAreBounded(t *testing.T) {
	to := &fleetv1.EntityRef{Type: EntityCloudResource, Id: "aws:111:vpc-1", Kind: "vpc"}
	from := func(i int) *fleetv1.EntityRef {
		return &fleetv1.EntityRef{Type: EntityCloudResource, Id: fmt.Sprintf("aws:111:i-%05d", i)}
	}
	// A hub one short of the bound, built directly: attaching thousands
	// one by one would only make the test slow.
	state := &fleetv1.EntityLinks{Entity: to}
	for i := range MaxIncoming - 1 {
		state.Incoming = append(state.Incoming, &fleetv1.IncomingLink{From: from(i), Relation: "in_vpc"})
	}
	for i := MaxIncoming - 1; i < MaxIncoming+2; i++ {
		r := applyMessage(state, to.Id, &fleetv1.LinkMessage{Body: &fleetv1.LinkMessage_Attach{Attach: &fleetv1.LinkAttach{From: from(i), Relation: "in_vpc", To: to}}}, "")
		if len(r.sends) != 1 || r.sends[0].key != from(i).Id || r.sends[0].msg.GetTargetStatus().GetDeleted() {
			t.Fatalf("attach %d answered %v", i, r.sends)
		}
		state = r.state
	}
	if len(state.GetIncoming()) != MaxIncoming || state.GetUntrackedIncoming() != 2 {
		t.Fatalf("incoming %d, untracked %d", len(state.GetIncoming()), state.GetUntrackedIncoming())
	}
	// A detach of an untracked link only lowers the count.
	r := applyMessage(state, to.Id, &fleetv1.LinkMessage{Body: &fleetv1.LinkMessage_Detach{Detach: &fleetv1.LinkDetach{From: from(MaxIncoming + 1), Relation: "in_vpc"}}}, "")
	if len(r.state.GetIncoming()) != MaxIncoming || r.state.GetUntrackedIncoming() != 1 {
		t.Fatalf("after a detach: incoming %d, untracked %d", len(r.state.GetIncoming()), r.state.GetUntrackedIncoming())
	}
}
