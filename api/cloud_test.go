package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// memCloud stands in for the views and the read model of cloud resources
// and links.
type memCloud struct {
	resources []*fleetv1.CloudResource // sorted by id
	links     []*fleetv1.Link          // active ones
	// activeCalls records the ids ActiveLinks was asked for.
	activeCalls [][]string
	// listed records the filters and aggregates the store was asked for.
	listed []string
}

func (m *memCloud) Get(id string) (*fleetv1.CloudResource, error) {
	for _, r := range m.resources {
		if r.GetId() == id {
			return r, nil
		}
	}
	return nil, nil
}

func (m *memCloud) Links(id string) ([]*fleetv1.Link, error) {
	var out []*fleetv1.Link
	for _, l := range m.links {
		if l.GetFrom().GetId() == id || l.GetTo().GetId() == id {
			out = append(out, l)
		}
	}
	return out, nil
}

func (m *memCloud) ListCloudResources(_ context.Context, f CloudResourceFilter, pageSize int, after string) ([]*fleetv1.CloudResource, string, error) {
	m.listed = append(m.listed, fmt.Sprintf("%s|%v|%v", f.Kind, f.Tags, f.IncludeDeleted))
	var out []*fleetv1.CloudResource
	for _, r := range m.resources {
		if r.GetId() <= after || f.Kind != "" && r.GetSpec().GetKind() != f.Kind {
			continue
		}
		if len(out) == pageSize {
			return out, out[len(out)-1].GetId(), nil
		}
		out = append(out, r)
	}
	return out, "", nil
}

func (m *memCloud) ListEvents(_ context.Context, aggregateType, id string, _ int, _ string) ([]*fleetv1.EventRecord, string, error) {
	m.listed = append(m.listed, aggregateType+"/"+id)
	return []*fleetv1.EventRecord{{AggregateType: aggregateType, AggregateId: id, Version: 1, Type: "X"}}, "", nil
}

func (m *memCloud) ListLinks(_ context.Context, id string, includeInactive bool, _ int, _ string) ([]*fleetv1.Link, string, error) {
	m.listed = append(m.listed, fmt.Sprintf("links/%s/%v", id, includeInactive))
	ls, _ := m.Links(id)
	return ls, "", nil
}

func (m *memCloud) ActiveLinks(_ context.Context, ids []string, limit int) ([]*fleetv1.Link, error) {
	m.activeCalls = append(m.activeCalls, slices.Clone(ids))
	var out []*fleetv1.Link
	for _, l := range m.links {
		if slices.Contains(ids, l.GetFrom().GetId()) || slices.Contains(ids, l.GetTo().GetId()) {
			if len(out) == limit {
				break
			}
			out = append(out, l)
		}
	}
	return out, nil
}

func (m *memCloud) ResourceInfo(_ context.Context, ids []string) (map[string]NodeInfo, error) {
	out := map[string]NodeInfo{}
	for _, id := range ids {
		if r, _ := m.Get(id); r != nil {
			out[id] = NodeInfo{Kind: r.GetSpec().GetKind(), Name: r.GetSpec().GetName(), Deleted: r.GetDeleted()}
		}
	}
	return out, nil
}

func res(id, kind string) *fleetv1.CloudResource {
	return &fleetv1.CloudResource{Id: id, Spec: &fleetv1.ResourceSpec{Kind: kind, Name: "name of " + id}, Version: 1}
}

func lnk(from, relation, to string) *fleetv1.Link {
	return &fleetv1.Link{From: &fleetv1.EntityRef{Type: "cloud_resource", Id: from}, Relation: relation,
		To: &fleetv1.EntityRef{Type: "cloud_resource", Id: to}, Active: true}
}

// An ELB's id is an ARN: ':' and '/' in the path.
const elb = "aws:111:arn:aws:elasticloadbalancing:eu-west-1:111:loadbalancer/app/web/50dc6c495c0c9188"

func cloudAPI(t *testing.T) (*testAPI, *memCloud) {
	t.Helper()
	m := &memCloud{
		resources: []*fleetv1.CloudResource{res("aws:111:i-1", "ec2_instance"), res("aws:111:i-2", "ec2_instance"), res("aws:111:vpc-1", "vpc"), res(elb, "load_balancer")},
		links: []*fleetv1.Link{
			lnk("aws:111:i-1", "behind_load_balancer", elb),
			lnk("aws:111:i-1", "in_vpc", "aws:111:vpc-1"),
			lnk("aws:111:i-2", "in_vpc", "aws:111:vpc-1"),
			lnk("aws:111:subnet-1", "in_vpc", "aws:111:vpc-1"),
			lnk("host-1", "runs_on_vm", "aws:111:i-2"),
		},
	}
	hosts, store := fleet(1)
	a := start(t, hosts, store, Options{Services: []Service{NewCloudService(CloudOptions{Resources: m, Links: m, Store: m})}})
	return a, m
}

func TestCloudResourceRoutes(t *testing.T) {
	a, m := cloudAPI(t)

	r := a.get(t, "/api/v1/cloud/resources/"+elb, a.reader)
	if r.code != http.StatusOK {
		t.Fatalf("GET resource: %d %s", r.code, r.raw)
	}
	if id := r.body["resource"].(map[string]any)["id"]; id != elb {
		t.Fatalf("resource id %v", id)
	}
	if links := r.body["links"].([]any); len(links) != 1 || links[0].(map[string]any)["relation"] != "behind_load_balancer" {
		t.Fatalf("links %v", links)
	}

	// The list is not mistaken for a resource with an empty id.
	r = a.get(t, "/api/v1/cloud/resources?kind=ec2_instance&page_size=1&tag=env%3Dprod&tag=team", a.reader)
	if r.code != http.StatusOK || len(r.body["resources"].([]any)) != 1 || r.body["next_page_token"] == "" {
		t.Fatalf("list: %d %s", r.code, r.raw)
	}
	r = a.get(t, "/api/v1/cloud/resources?kind=ec2_instance&page_size=1&tag=env%3Dprod&tag=team&page_token="+url.QueryEscape(r.body["next_page_token"].(string)), a.reader)
	if ids := r.body["resources"].([]any); len(ids) != 1 || ids[0].(map[string]any)["id"] != "aws:111:i-2" {
		t.Fatalf("second page %s", r.raw)
	}
	if m.listed[0] != "ec2_instance|[env=prod team]|false" {
		t.Errorf("store asked for %v", m.listed)
	}
	wantError(t, a.get(t, "/api/v1/cloud/resources?tag=%3Dprod", a.reader), http.StatusBadRequest, codes.InvalidArgument, "has no key")
	wantError(t, a.get(t, "/api/v1/cloud/resources?page_token=bogus", a.reader), http.StatusBadRequest, codes.InvalidArgument, "page_token")
	wantError(t, a.get(t, "/api/v1/cloud/resources/aws:111:nope", a.reader), http.StatusNotFound, codes.NotFound, "aws:111:nope not found")
	wantError(t, a.get(t, "/api/v1/cloud/resources/aws:111:i-1", a.writer), http.StatusForbidden, codes.PermissionDenied, "read")

	m.listed = nil
	if r := a.get(t, "/api/v1/cloud/events/aws:111:i-1", a.reader); r.code != http.StatusOK {
		t.Fatalf("events: %d %s", r.code, r.raw)
	}
	if r := a.get(t, "/api/v1/cloud/events/host-1?links=true", a.reader); r.code != http.StatusOK {
		t.Fatalf("link events: %d %s", r.code, r.raw)
	}
	wantError(t, a.get(t, "/api/v1/cloud/events/aws:111:nope", a.reader), http.StatusNotFound, codes.NotFound)
	if r := a.get(t, "/api/v1/links/aws:111:vpc-1?include_inactive=true", a.reader); r.code != http.StatusOK || len(r.body["links"].([]any)) != 3 {
		t.Fatalf("links: %d %s", r.code, r.raw)
	}
	if want := []string{"cloud_resource/aws:111:i-1", "links/host-1", "links/aws:111:vpc-1/true"}; !slices.Equal(m.listed, want) {
		t.Errorf("store asked for %v, want %v", m.listed, want)
	}
}

// graphOf returns "id@depth" per node and "from>to" per edge.
func graphOf(t *testing.T, r response) (nodes, edges []string, truncated bool) {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("graph: %d %s", r.code, r.raw)
	}
	for _, n := range r.body["nodes"].([]any) {
		n := n.(map[string]any)
		nodes = append(nodes, fmt.Sprintf("%s@%v", n["entity"].(map[string]any)["id"], n["depth"]))
	}
	for _, e := range r.body["edges"].([]any) {
		e := e.(map[string]any)
		edges = append(edges, e["from"].(map[string]any)["id"].(string)+">"+e["to"].(map[string]any)["id"].(string))
	}
	return nodes, edges, r.body["truncated"].(bool)
}

func TestEntityGraph(t *testing.T) {
	a, m := cloudAPI(t)

	nodes, edges, truncated := graphOf(t, a.get(t, "/api/v1/graph/host-1?depth=2", a.reader))
	wantNodes := []string{"host-1@0", "aws:111:i-2@1", "aws:111:vpc-1@2"}
	wantEdges := []string{"host-1>aws:111:i-2", "aws:111:i-2>aws:111:vpc-1"}
	if !slices.Equal(nodes, wantNodes) || !slices.Equal(edges, wantEdges) || truncated {
		t.Fatalf("depth 2 from host-1: %v %v %v, want %v %v", nodes, edges, truncated, wantNodes, wantEdges)
	}
	if !slices.Equal(m.activeCalls[0], []string{"host-1"}) || !slices.Equal(m.activeCalls[1], []string{"aws:111:i-2"}) {
		t.Errorf("walked %v", m.activeCalls)
	}

	nodes, _, _ = graphOf(t, a.get(t, "/api/v1/graph/host-1?depth=4", a.reader))
	want := []string{"host-1@0", "aws:111:i-2@1", "aws:111:vpc-1@2", "aws:111:i-1@3", "aws:111:subnet-1@3", elb + "@4"}
	if !slices.Equal(nodes, want) {
		t.Fatalf("depth 4: %v, want %v", nodes, want)
	}
	r := a.get(t, "/api/v1/graph/aws:111:vpc-1?depth=5", a.reader)
	nodes, _, _ = graphOf(t, r)
	if root := r.body["nodes"].([]any)[0].(map[string]any); root["name"] != "name of aws:111:vpc-1" || root["entity"].(map[string]any)["type"] != "cloud_resource" {
		t.Fatalf("root node %v", root)
	}
	if len(nodes) != 6 {
		t.Fatalf("the whole graph from the vpc: %v", nodes)
	}

	nodes, edges, truncated = graphOf(t, a.get(t, "/api/v1/graph/aws:111:vpc-1?depth=3&max_nodes=3", a.reader))
	if len(nodes) != 3 || !truncated {
		t.Fatalf("max_nodes=3: %v truncated=%v", nodes, truncated)
	}
	for _, e := range edges {
		from, to, _ := strings.Cut(e, ">")
		if !slices.Contains(nodes, from+"@0") && !slices.Contains(nodes, from+"@1") || !slices.Contains(nodes, to+"@0") && !slices.Contains(nodes, to+"@1") {
			t.Errorf("edge %s leaves the nodes %v", e, nodes)
		}
	}

	// A resource without links is a graph of one; an unknown id is not found.
	m.resources = append(m.resources, res("aws:111:sg-9", "security_group"))
	if nodes, edges, _ := graphOf(t, a.get(t, "/api/v1/graph/aws:111:sg-9", a.reader)); !slices.Equal(nodes, []string{"aws:111:sg-9@0"}) || len(edges) != 0 {
		t.Fatalf("lonely resource: %v %v", nodes, edges)
	}
	wantError(t, a.get(t, "/api/v1/graph/nothing-here", a.reader), http.StatusNotFound, codes.NotFound, "neither a discovered resource nor the end of a link")
	wantError(t, a.get(t, "/api/v1/graph/host-1?depth=6", a.reader), http.StatusBadRequest, codes.InvalidArgument, "depth must be between 1 and 5")
	wantError(t, a.get(t, "/api/v1/graph/host-1?max_nodes=1001", a.reader), http.StatusBadRequest, codes.InvalidArgument, "max_nodes")
}

func TestEveryCloudMethodHasAScope(t *testing.T) {
	scopes := NewCloudService(CloudOptions{}).Scopes
	for _, m := range fleetv1.CloudService_ServiceDesc.Methods {
		full := "/" + fleetv1.CloudService_ServiceDesc.ServiceName + "/" + m.MethodName
		if scopes[full] != ScopeRead {
			t.Errorf("%s is not open to the read scope", full)
		}
	}
}
