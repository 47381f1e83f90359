package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func cloudResource(resourceID, kind, region string, tags map[string]string, version uint64, deleted bool) *fleetv1.CloudResource {
	attrs, _ := structpb.NewStruct(map[string]any{"state": "running", "cpu": 2})
	return &fleetv1.CloudResource{
		Id: "aws:111:" + resourceID,
		Spec: &fleetv1.ResourceSpec{Provider: "aws", Account: "111", Region: region, Kind: kind, ResourceId: resourceID,
			Name: "name-" + resourceID, Tags: tags, Attributes: attrs},
		Deleted:      deleted,
		DiscoveredAt: timestamppb.New(epoch),
		UpdatedAt:    timestamppb.New(epoch.Add(time.Duration(version) * time.Minute)),
		Version:      version,
	}
}

func resourceEvent(r *fleetv1.CloudResource, eventID string) *fleetv1.Event {
	ev := &fleetv1.Event{
		EventId: eventID, AggregateType: "cloud_resource", AggregateId: r.GetId(), Version: r.GetVersion(),
		OccurredAt: r.GetUpdatedAt(),
		State:      &fleetv1.AggregateState{State: &fleetv1.AggregateState_CloudResource{CloudResource: r}},
	}
	switch {
	case r.GetDeleted():
		ev.Payload = &fleetv1.Event_ResourceDeleted{ResourceDeleted: &fleetv1.ResourceDeleted{}}
	case r.GetVersion() == 1:
		ev.Payload = &fleetv1.Event_ResourceDiscovered{ResourceDiscovered: &fleetv1.ResourceDiscovered{Spec: r.GetSpec()}}
	default:
		ev.Payload = &fleetv1.Event_ResourceChanged{ResourceChanged: &fleetv1.ResourceChanged{Spec: r.GetSpec()}}
	}
	return ev
}

func linkEvent(from, relation, to string, version uint64, active bool) *fleetv1.Event {
	l := &fleetv1.Link{
		From: &fleetv1.EntityRef{Type: "cloud_resource", Id: from, Kind: "ec2_instance"}, Relation: relation,
		To: &fleetv1.EntityRef{Type: "cloud_resource", Id: to, Kind: "vpc"}, Active: active, Version: version,
		UpdatedAt: timestamppb.New(epoch.Add(time.Duration(version) * time.Minute)),
	}
	ev := &fleetv1.Event{EventId: fmt.Sprintf("link-%s-%d", from, version), AggregateType: "links", AggregateId: from, Version: version,
		OccurredAt: l.UpdatedAt, State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Link{Link: l}}}
	if active {
		ev.Payload = &fleetv1.Event_EntityLinked{EntityLinked: &fleetv1.EntityLinked{From: l.From, Relation: relation, To: l.To}}
	} else {
		l.Reason = "undeclared"
		ev.Payload = &fleetv1.Event_EntityUnlinked{EntityUnlinked: &fleetv1.EntityUnlinked{From: l.From, Relation: relation, To: l.To, Reason: "undeclared"}}
	}
	return ev
}

func TestSinkProjectsCloudResourcesAndLinks(t *testing.T) {
	ctx := context.Background()
	conn, db := database(t, true)
	kc := newCluster(t)
	m := NewMetrics(prometheus.NewRegistry())

	prod := map[string]string{"env": "prod", "team": "a"}
	i1v2 := cloudResource("i-1", "ec2_instance", "eu-west-1", map[string]string{"env": "prod", "team": "b"}, 2, false)
	rejected := resourceEvent(cloudResource("i-1", "ec2_instance", "us-east-1", nil, 2, false), "e-i1-rejected")
	rejected.Payload = &fleetv1.Event_CommandRejected{CommandRejected: &fleetv1.CommandRejected{Command: "DiscoverResource", Reason: "x"}}
	history := []*fleetv1.Event{
		resourceEvent(cloudResource("i-1", "ec2_instance", "eu-west-1", prod, 1, false), "e-i1-1"),
		resourceEvent(cloudResource("i-2", "ec2_instance", "eu-west-1", prod, 1, false), "e-i2-1"),
		resourceEvent(cloudResource("i-3", "ec2_instance", "us-east-1", nil, 1, false), "e-i3-1"),
		resourceEvent(cloudResource("vpc-1", "vpc", "eu-west-1", map[string]string{"env": "dev"}, 1, false), "e-vpc-1"),
		resourceEvent(i1v2, "e-i1-2"),
		resourceEvent(cloudResource("i-2", "ec2_instance", "eu-west-1", prod, 2, true), "e-i2-2"),
		rejected,
		linkEvent("aws:111:i-1", "in_vpc", "aws:111:vpc-1", 1, true),
		linkEvent("aws:111:i-1", "has_security_group", "aws:111:sg-1", 2, true),
		linkEvent("aws:111:i-3", "in_vpc", "aws:111:vpc-1", 1, true),
		linkEvent("aws:111:i-1", "has_security_group", "aws:111:sg-1", 3, false),
	}
	// The history twice: a redelivery changes nothing.
	kc.produceEvents(t, history...)
	kc.produceEvents(t, history...)
	kc.runSink(t, conn, db, m)
	kc.waitCaughtUp(t)
	if got := testutil.ToFloat64(m.rows.WithLabelValues("cloud_resources")); got < 4 {
		t.Fatalf("cloud_resources rows %v", got)
	}

	list := func(f CloudResourceFilter) []string {
		t.Helper()
		var ids []string
		after := ""
		for {
			rs, next, err := ListCloudResources(ctx, conn, db, f, 2, after)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				ids = append(ids, r.GetId())
			}
			if next == "" {
				return ids
			}
			after = next
		}
	}
	for _, tt := range []struct {
		name string
		f    CloudResourceFilter
		want []string
	}{
		{"all live", CloudResourceFilter{}, []string{"aws:111:i-1", "aws:111:i-3", "aws:111:vpc-1"}},
		{"with tombstones", CloudResourceFilter{IncludeDeleted: true}, []string{"aws:111:i-1", "aws:111:i-2", "aws:111:i-3", "aws:111:vpc-1"}},
		{"kind and region", CloudResourceFilter{Kind: "ec2_instance", Region: "eu-west-1"}, []string{"aws:111:i-1"}},
		{"tag value", CloudResourceFilter{Tags: []string{"team=b"}}, []string{"aws:111:i-1"}},
		{"old tag value", CloudResourceFilter{Tags: []string{"team=a"}}, nil},
		{"tag key", CloudResourceFilter{Tags: []string{"env"}}, []string{"aws:111:i-1", "aws:111:vpc-1"}},
		{"two tags", CloudResourceFilter{Tags: []string{"env=prod", "team"}, Account: "111", Provider: "aws"}, []string{"aws:111:i-1"}},
		{"other account", CloudResourceFilter{Account: "222"}, nil},
	} {
		if got := list(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	rs, _, err := ListCloudResources(ctx, conn, db, CloudResourceFilter{Tags: []string{"team=b"}}, 10, "")
	if err != nil || len(rs) != 1 || !proto.Equal(rs[0], i1v2) {
		t.Fatalf("i-1 from the read model: %v, %v\nwant %v", rs, err, i1v2)
	}
	var attrs, tags string
	err = conn.QueryRow(ctx, "SELECT attributes, arrayStringConcat(tags, ',') FROM "+db+".cloud_resources FINAL WHERE id = 'aws:111:i-1'").Scan(&attrs, &tags)
	var parsed map[string]any
	if err == nil {
		err = json.Unmarshal([]byte(attrs), &parsed)
	}
	if err != nil || fmt.Sprint(parsed) != "map[cpu:2 state:running]" || tags != "env=prod,team=b" {
		t.Fatalf("attributes column %q, tags %q: %v", attrs, tags, err)
	}

	sum, err := ResourceSummaries(ctx, conn, db, []string{"aws:111:i-2", "aws:111:vpc-1", "host-x"})
	if err != nil || len(sum) != 2 || !sum["aws:111:i-2"].Deleted || sum["aws:111:vpc-1"] != (ResourceSummary{Kind: "vpc", Name: "name-vpc-1"}) {
		t.Fatalf("summaries %v, %v", sum, err)
	}

	linkNames := func(ls []*fleetv1.Link) []string {
		var out []string
		for _, l := range ls {
			out = append(out, fmt.Sprintf("%s -%s-> %s %v v%d", l.GetFrom().GetId(), l.GetRelation(), l.GetTo().GetId(), l.GetActive(), l.GetVersion()))
		}
		return out
	}
	ls, next, err := ListLinks(ctx, conn, db, "aws:111:i-1", false, 10, nil)
	if want := []string{"aws:111:i-1 -in_vpc-> aws:111:vpc-1 true v1"}; err != nil || next != nil || !slices.Equal(linkNames(ls), want) {
		t.Fatalf("active links of i-1: %v %v %v", linkNames(ls), next, err)
	}
	// With ended links, one per page.
	var all []*fleetv1.Link
	var cursor *LinkCursor
	for {
		page, next, err := ListLinks(ctx, conn, db, "aws:111:i-1", true, 1, cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if next == nil {
			break
		}
		cursor = next
	}
	want := []string{"aws:111:i-1 -has_security_group-> aws:111:sg-1 false v3", "aws:111:i-1 -in_vpc-> aws:111:vpc-1 true v1"}
	if !slices.Equal(linkNames(all), want) || all[0].GetReason() != "undeclared" || !all[0].GetUpdatedAt().AsTime().Equal(epoch.Add(3*time.Minute)) {
		t.Fatalf("all links of i-1: %v", all)
	}
	ls, err = ActiveLinks(ctx, conn, db, []string{"aws:111:vpc-1"}, 10)
	want = []string{"aws:111:i-1 -in_vpc-> aws:111:vpc-1 true v1", "aws:111:i-3 -in_vpc-> aws:111:vpc-1 true v1"}
	if err != nil || !slices.Equal(linkNames(ls), want) {
		t.Fatalf("links to vpc-1: %v, %v", linkNames(ls), err)
	}
}
