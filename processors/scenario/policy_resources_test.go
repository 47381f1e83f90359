package scenario

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const collectionKey = "aws:111122223333:eu-west-1:ec2_instance"

func instance(id, name string, tags map[string]string, links ...payload.ResourceLink) payload.Resource {
	return payload.Resource{ID: id, Name: name, Tags: tags,
		Attributes: map[string]any{"state": "running", "cpu": 2.0, "nested": map[string]any{"a": []any{"x", 1.0}}},
		Links:      links}
}

func sampleInstances() []payload.Resource {
	return []payload.Resource{
		instance("i-1", "web-1", map[string]string{"env": "prod"},
			payload.ResourceLink{Relation: "in_vpc", Kind: "vpc", ID: "vpc-1"},
			payload.ResourceLink{Relation: "has_security_group", Kind: "security_group", ID: "sg-1"}),
		instance("i-2", "web-2", map[string]string{"env": "prod"}, payload.ResourceLink{Relation: "in_vpc", Kind: "vpc", ID: "vpc-1"}),
		instance("i-3", "db-1", nil),
	}
}

// chunk is a cloud_resources discovery of collectionKey.
func chunk(t *testing.T, id string, n, of int, complete bool, at time.Time, rs ...payload.Resource) *fleetv1.Discovery {
	t.Helper()
	b, err := json.Marshal(payload.ResourceCollection{
		Provider: "aws", Account: "111122223333", Region: "eu-west-1", Kind: "ec2_instance",
		CollectionID: id, Chunk: n, Chunks: of, Complete: complete, Resources: rs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fleetv1.Discovery{AgentId: collectionKey, DiscoveryType: payload.CloudResources,
		CollectedAt: timestamppb.New(at), Payload: b, Source: "collector:aws"}
}

// summary lists commands as "Discover <aggregate id>" / "Delete <aggregate id>".
func summary(cs []*fleetv1.Command) []string {
	var out []string
	for _, c := range cs {
		switch c.GetBody().(type) {
		case *fleetv1.Command_DiscoverResource:
			out = append(out, "Discover "+c.GetAggregateId())
		case *fleetv1.Command_DeleteResource:
			out = append(out, "Delete "+c.GetAggregateId())
		default:
			out = append(out, aggregate.CommandName(c))
		}
	}
	return out
}

// run applies discoveries in order, threading the state, and returns
// the last result.
type threaded struct {
	state  *fleetv1.ScenarioState
	offset int64
}

func (th *threaded) apply(t *testing.T, d *fleetv1.Discovery) result {
	t.Helper()
	o := testOrigin
	th.offset++
	o.offset = th.offset
	res, err := detect(th.state, d, o)
	if err != nil {
		t.Fatalf("detect: %v", err)
	}
	if res.state != nil {
		th.state = res.state
	}
	return res
}

func TestResourcesPolicyLifecycle(t *testing.T) {
	var th threaded
	at := collectedAt

	res := th.apply(t, chunk(t, "c1", 0, 1, true, at, sampleInstances()...))
	want := []string{"Discover aws:111122223333:i-1", "Discover aws:111122223333:i-2", "Discover aws:111122223333:i-3"}
	if got := summary(res.commands); !slices.Equal(got, want) {
		t.Fatalf("first collection: %v, want %v", got, want)
	}
	d := res.commands[0].GetDiscoverResource()
	wantSpec := &fleetv1.ResourceSpec{Provider: "aws", Account: "111122223333", Region: "eu-west-1", Kind: "ec2_instance",
		ResourceId: "i-1", Name: "web-1", Tags: map[string]string{"env": "prod"},
		// Sorted by relation: has_security_group before in_vpc.
		Links: []*fleetv1.ResourceLink{{Relation: "has_security_group", Kind: "security_group", Id: "sg-1"}, {Relation: "in_vpc", Kind: "vpc", Id: "vpc-1"}}}
	if d.GetCollectionId() != "c1" || d.GetSpec().GetAttributes().GetFields()["state"].GetStringValue() != "running" {
		t.Fatalf("DiscoverResource %v", d)
	}
	d.Spec.Attributes = nil
	if !proto.Equal(d.GetSpec(), wantSpec) {
		t.Fatalf("spec\n%v\nwant\n%v", d.GetSpec(), wantSpec)
	}
	if c := res.commands[0]; c.GetIssuedAt().AsTime() != at || c.GetCommandId() == "" {
		t.Fatalf("envelope %v", c)
	}
	if st := th.state.GetResources(); len(st.GetFingerprints()) != 3 || st.GetPending() != nil || st.GetLastCollectionId() != "c1" {
		t.Fatalf("state after c1: %v", st)
	}

	// The same estate again, links reported in another order: nothing.
	same := sampleInstances()
	slices.Reverse(same[0].Links)
	res = th.apply(t, chunk(t, "c2", 0, 1, true, at.Add(time.Minute), same...))
	if len(res.commands) != 0 || res.outcome != outcomeNoDifference {
		t.Fatalf("unchanged collection: %v (%s)", summary(res.commands), res.outcome)
	}

	// i-2 re-tagged, i-3 gone: one discovery, one deletion.
	changed := sampleInstances()[:2]
	changed[1].Tags = map[string]string{"env": "staging"}
	res = th.apply(t, chunk(t, "c3", 0, 1, true, at.Add(2*time.Minute), changed...))
	want = []string{"Discover aws:111122223333:i-2", "Delete aws:111122223333:i-3"}
	if got := summary(res.commands); !slices.Equal(got, want) {
		t.Fatalf("changed collection: %v, want %v", got, want)
	}
	del := res.commands[1].GetDeleteResource()
	if del.GetCollection() != collectionKey || del.GetCollectionId() != "c3" {
		t.Fatalf("DeleteResource %v", del)
	}
	if _, ok := th.state.GetResources().GetFingerprints()["i-3"]; ok {
		t.Fatal("a deleted resource keeps its fingerprint")
	}

	// A partial collection only adds; the deleted one comes back with it.
	res = th.apply(t, chunk(t, "p1", 0, 1, false, at.Add(3*time.Minute), sampleInstances()[2]))
	if got := summary(res.commands); !slices.Equal(got, []string{"Discover aws:111122223333:i-3"}) {
		t.Fatalf("partial collection: %v", got)
	}
	// An empty complete collection deletes everything.
	res = th.apply(t, chunk(t, "c4", 0, 1, true, at.Add(4*time.Minute)))
	want = []string{"Delete aws:111122223333:i-1", "Delete aws:111122223333:i-2", "Delete aws:111122223333:i-3"}
	if got := summary(res.commands); !slices.Equal(got, want) {
		t.Fatalf("empty collection: %v, want %v", got, want)
	}
}

func TestResourcesPolicyChunks(t *testing.T) {
	var th threaded
	at := collectedAt
	all := sampleInstances()
	th.apply(t, chunk(t, "c1", 0, 1, true, at, all...))

	// Collection c2 in three chunks: i-1 changed in chunk 0, chunk 2 before
	// chunk 1, i-3 never reported.
	moved := all[0]
	moved.Name = "web-1-renamed"
	res := th.apply(t, chunk(t, "c2", 0, 3, true, at.Add(time.Minute), moved))
	if got := summary(res.commands); !slices.Equal(got, []string{"Discover aws:111122223333:i-1"}) {
		t.Fatalf("chunk 0: %v (a chunk's changes go out as it arrives)", got)
	}
	res = th.apply(t, chunk(t, "c2", 2, 3, true, at.Add(time.Minute)))
	if len(res.commands) != 0 {
		t.Fatalf("chunk 2 of 3: %v (nothing deleted before every chunk arrived)", summary(res.commands))
	}
	if p := th.state.GetResources().GetPending(); !slices.Equal(p.GetReceived(), []int32{0, 2}) || !slices.Equal(p.GetSeen(), []uint64{xxhash.Sum64String("i-1")}) {
		t.Fatalf("pending %v", p)
	}
	// A chunk of an older collection arriving late is stale.
	res = th.apply(t, chunk(t, "c0", 0, 1, true, at.Add(-time.Minute)))
	if res.outcome != outcomeStale || len(res.commands) != 0 {
		t.Fatalf("older collection: %v (%s)", summary(res.commands), res.outcome)
	}
	res = th.apply(t, chunk(t, "c2", 1, 3, true, at.Add(time.Minute), all[1]))
	if got := summary(res.commands); !slices.Equal(got, []string{"Delete aws:111122223333:i-3"}) {
		t.Fatalf("last chunk: %v", got)
	}
	// A chunk of the completed collection again (redelivered) deletes nothing.
	res = th.apply(t, chunk(t, "c2", 2, 3, true, at.Add(time.Minute), all[2]))
	if res.outcome != outcomeStale || len(res.commands) != 0 {
		t.Fatalf("chunk of a completed collection: %v (%s)", summary(res.commands), res.outcome)
	}

	// A new collection supersedes one whose chunks never all arrived.
	th.apply(t, chunk(t, "c3", 0, 2, true, at.Add(2*time.Minute), all[0:1]...))
	res = th.apply(t, chunk(t, "c4", 0, 1, true, at.Add(3*time.Minute), all[1]))
	if got := summary(res.commands); !slices.Equal(got, []string{"Delete aws:111122223333:i-1"}) {
		t.Fatalf("superseding collection: %v", got)
	}
}

func TestResourcesPolicyRejects(t *testing.T) {
	var th threaded
	th.apply(t, chunk(t, "c1", 0, 2, true, collectedAt, sampleInstances()[0]))
	before := proto.CloneOf(th.state)
	otherKey := chunk(t, "c1", 1, 2, true, collectedAt)
	otherKey.AgentId = "aws:111122223333:us-east-1:ec2_instance"
	tests := []struct {
		name   string
		d      *fleetv1.Discovery
		reason string
		says   string
	}{
		{"not JSON", &fleetv1.Discovery{AgentId: collectionKey, DiscoveryType: payload.CloudResources, CollectedAt: timestamppb.New(collectedAt), Payload: []byte(`{"provider":`)}, reasonMalformedPayload, "not a valid payload"},
		{"resource without id", chunk(t, "c1", 1, 2, true, collectedAt, payload.Resource{Name: "x"}), reasonMalformedPayload, "resources[0].id is required"},
		{"link without kind", chunk(t, "c1", 1, 2, true, collectedAt, payload.Resource{ID: "i-9", Links: []payload.ResourceLink{{Relation: "in_vpc", ID: "vpc-1"}}}), reasonMalformedPayload, "resources[0].links[0].kind"},
		{"chunk out of range", chunk(t, "c1", 2, 2, true, collectedAt), reasonMalformedPayload, "chunk must be between 0 and chunks-1 (1); got 2"},
		{"chunk count changes", chunk(t, "c1", 1, 3, true, collectedAt), reasonMalformedPayload, "an earlier chunk said 2"},
		{"keyed as another collection", otherKey, reasonInvalidEnvelope, "agent_id is its key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := detect(th.state, tt.d, testOrigin)
			if got := rejectionReason(err); err == nil || got != tt.reason || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v (reason %q), want reason %q saying %q", err, got, tt.reason, tt.says)
			}
			if !proto.Equal(th.state, before) {
				t.Fatal("a rejection changed the state")
			}
		})
	}
}
