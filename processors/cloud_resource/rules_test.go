package cloudresource

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate/aggregatetest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

const (
	resourceID = "aws:111:i-1"
	collection = "aws:111:eu-west-1:ec2_instance"
)

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func sampleSpec() *fleetv1.ResourceSpec {
	attrs, _ := structpb.NewStruct(map[string]any{"state": "running", "type": "t3.micro"})
	return &fleetv1.ResourceSpec{
		Provider: "aws", Account: "111", Region: "eu-west-1", Kind: "ec2_instance", ResourceId: "i-1", Name: "web-1",
		Tags:       map[string]string{"env": "prod", "team": "a"},
		Attributes: attrs,
		Links:      []*fleetv1.ResourceLink{{Relation: "in_vpc", Kind: "vpc", Id: "vpc-1"}},
	}
}

func command(id string, at time.Time) *fleetv1.Command {
	return &fleetv1.Command{CommandId: id, AggregateId: resourceID, IssuedAt: ts(at), TraceId: "trace-" + id}
}

func discoverCmd(id string, at time.Time, spec *fleetv1.ResourceSpec) *fleetv1.Command {
	c := command(id, at)
	c.Body = &fleetv1.Command_DiscoverResource{DiscoverResource: &fleetv1.DiscoverResource{Spec: spec, CollectionId: "coll-" + id}}
	return c
}

func deleteCmd(id string, at time.Time, coll string) *fleetv1.Command {
	c := command(id, at)
	c.Body = &fleetv1.Command_DeleteResource{DeleteResource: &fleetv1.DeleteResource{Collection: coll, CollectionId: "coll-" + id}}
	return c
}

// discovered is the resource after discoverCmd("c1", t0, sampleSpec()).
func discovered() *fleetv1.CloudResource {
	return &fleetv1.CloudResource{Id: resourceID, Spec: sampleSpec(), DiscoveredAt: ts(t0), UpdatedAt: ts(t0), Version: 1}
}

// deleted is discovered() after deleteCmd("c2", t1, collection).
func deleted() *fleetv1.CloudResource {
	r := discovered()
	r.Deleted, r.DeletedAt, r.UpdatedAt, r.Version = true, ts(t1), ts(t1), 2
	return r
}

func TestDiscoverNewResource(t *testing.T) {
	d := decide(nil, discoverCmd("c1", t0, sampleSpec()))
	if d.Outcome != aggregate.Accepted || len(d.Events) != 1 || !proto.Equal(d.State, discovered()) {
		t.Fatalf("decision %+v", d)
	}
	want := &fleetv1.Event{
		EventId:       "2a2b782e-d4cc-5733-a880-2118d2c54caf", // UUIDv5(UUIDv5(URL, "urn:fleetstream:event"), "cloud_resource/aws:111:i-1/1"), computed with Python's uuid module
		AggregateType: "cloud_resource",
		AggregateId:   resourceID,
		Version:       1,
		OccurredAt:    ts(t0),
		TraceId:       "trace-c1",
		CommandId:     "c1",
		Payload:       &fleetv1.Event_ResourceDiscovered{ResourceDiscovered: &fleetv1.ResourceDiscovered{Spec: sampleSpec()}},
		State:         &fleetv1.AggregateState{State: &fleetv1.AggregateState_CloudResource{CloudResource: discovered()}},
	}
	if !proto.Equal(d.Events[0], want) {
		t.Fatalf("event\n%v\nwant\n%v", d.Events[0], want)
	}
}

func TestDecide(t *testing.T) {
	retagged := sampleSpec()
	retagged.Tags = map[string]string{"env": "staging", "owner": "b"}
	retagged.Attributes.Fields["state"] = structpb.NewStringValue("stopped")
	retagged.Attributes.Fields["lifecycle"] = structpb.NewStringValue("spot")
	moved := sampleSpec()
	moved.Region = "us-east-1"
	otherKey := sampleSpec()
	otherKey.ResourceId = "i-2"
	noKind := sampleSpec()
	noKind.Kind = ""

	tests := []struct {
		name    string
		current *fleetv1.CloudResource
		cmd     *fleetv1.Command
		outcome aggregate.Outcome
		events  []string
		version uint64
		check   func(t *testing.T, d decision)
	}{
		{name: "discover again, same spec", current: discovered(), cmd: discoverCmd("c2", t1, sampleSpec()), outcome: aggregate.Noop},
		{
			name: "discover with changes", current: discovered(), cmd: discoverCmd("c2", t1, retagged),
			outcome: aggregate.Accepted, events: []string{"ResourceChanged"}, version: 2,
			check: func(t *testing.T, d decision) {
				c := d.Events[0].GetResourceChanged()
				if !slices.Equal(c.ChangedFields, []string{"tags", "attributes"}) ||
					!slices.Equal(c.ChangedTags, []string{"env", "owner", "team"}) ||
					!slices.Equal(c.ChangedAttributes, []string{"lifecycle", "state"}) || !proto.Equal(c.Spec, retagged) {
					t.Errorf("ResourceChanged %v", c)
				}
				if !proto.Equal(d.State.Spec, retagged) || !d.State.UpdatedAt.AsTime().Equal(t1) || !d.State.DiscoveredAt.AsTime().Equal(t0) {
					t.Errorf("state %v", d.State)
				}
			},
		},
		{
			name: "delete", current: discovered(), cmd: deleteCmd("c2", t1, collection),
			outcome: aggregate.Accepted, events: []string{"ResourceDeleted"}, version: 2,
			check: func(t *testing.T, d decision) {
				if !proto.Equal(d.State, deleted()) {
					t.Errorf("state\n%v\nwant\n%v", d.State, deleted())
				}
				if e := d.Events[0].GetResourceDeleted(); e.Collection != collection || e.CollectionId != "coll-c2" {
					t.Errorf("ResourceDeleted %v", e)
				}
			},
		},
		{name: "delete again", current: deleted(), cmd: deleteCmd("c3", t2, collection), outcome: aggregate.Noop},
		{
			name: "discover after delete restores", current: deleted(), cmd: discoverCmd("c3", t2, sampleSpec()),
			outcome: aggregate.Accepted, events: []string{"ResourceDiscovered"}, version: 3,
			check: func(t *testing.T, d decision) {
				if !d.Events[0].GetResourceDiscovered().GetRestored() {
					t.Error("not marked restored")
				}
				if d.State.Deleted || d.State.DeletedAt != nil || !d.State.DiscoveredAt.AsTime().Equal(t0) {
					t.Errorf("state %v", d.State)
				}
			},
		},
		{
			name: "delete unknown", cmd: deleteCmd("c9", t1, collection), outcome: aggregate.Rejected, events: []string{"CommandRejected"},
			check: func(t *testing.T, d decision) {
				if r := d.Events[0].GetCommandRejected(); r.Command != "DeleteResource" || !strings.Contains(r.Reason, "not known") {
					t.Errorf("rejection %v", r)
				}
			},
		},
		{name: "delete from a collection it moved out of", current: discovered(), cmd: deleteCmd("c2", t1, "aws:111:us-east-1:ec2_instance"), outcome: outcomeStale},
		{name: "delete older than the last change", current: discovered(), cmd: deleteCmd("c2", t0.Add(-time.Second), collection), outcome: outcomeStale},
		{name: "discover older than the last change", current: deleted(), cmd: discoverCmd("c3", t0, sampleSpec()), outcome: outcomeStale},
		{
			name: "discover moved to another region", current: discovered(), cmd: discoverCmd("c2", t1, moved),
			outcome: aggregate.Accepted, events: []string{"ResourceChanged"}, version: 2,
			check: func(t *testing.T, d decision) {
				if got := d.Events[0].GetResourceChanged().ChangedFields; !slices.Equal(got, []string{"region"}) {
					t.Errorf("changed %v", got)
				}
			},
		},
		{
			name: "spec of another resource", current: discovered(), cmd: discoverCmd("c2", t1, otherKey),
			outcome: aggregate.Rejected, events: []string{"CommandRejected"}, version: 1,
			check: func(t *testing.T, d decision) {
				if r := d.Events[0].GetCommandRejected().Reason; !strings.Contains(r, "aws:111:i-2") {
					t.Errorf("reason %q", r)
				}
				if !proto.Equal(d.Events[0].State.GetCloudResource(), discovered()) {
					t.Errorf("rejection state %v", d.Events[0].State)
				}
			},
		},
		{name: "spec without kind", cmd: discoverCmd("c1", t0, noKind), outcome: aggregate.Rejected, events: []string{"CommandRejected"}},
		{name: "no spec", cmd: discoverCmd("c1", t0, nil), outcome: aggregate.Rejected, events: []string{"CommandRejected"}},
		{
			name: "a host command", current: discovered(), outcome: aggregate.Rejected, events: []string{"CommandRejected"}, version: 1,
			cmd: func() *fleetv1.Command {
				c := command("c2", t1)
				c.Body = &fleetv1.Command_UpdateHeartbeat{UpdateHeartbeat: &fleetv1.UpdateHeartbeat{At: ts(t1)}}
				return c
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := aggregatetest.Decide(t, decide, tt.current, tt.cmd, aggregatetest.Want{Outcome: tt.outcome, Events: tt.events, Version: tt.version})
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}
