package api

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// CloudResourceReader reads one cloud resource's current state (the
// cloud_resource aggregate's table, through a view). Get returns nil, nil
// for an unknown id.
type CloudResourceReader interface {
	Get(id string) (*fleetv1.CloudResource, error)
}

// LinkReader reads the current active links of one entity (the links
// processor's table, through a view); none for an unknown id.
type LinkReader interface {
	Links(id string) ([]*fleetv1.Link, error)
}

// CloudResourceFilter narrows ListCloudResources; empty fields do not
// filter.
type CloudResourceFilter struct {
	Provider, Account, Region, Kind string
	// Tags are "key=value" or "key"; all must match.
	Tags           []string
	IncludeDeleted bool
}

// NodeInfo is what the read model knows of a resource shown in a graph.
type NodeInfo struct {
	Kind, Name string
	Deleted    bool
}

// CloudStore is the ClickHouse read model of cloud resources and links.
// Pagination and errors follow Store's rules.
type CloudStore interface {
	ListCloudResources(ctx context.Context, filter CloudResourceFilter, pageSize int, after string) ([]*fleetv1.CloudResource, string, error)
	// ListEvents lists one aggregate's events, oldest first.
	ListEvents(ctx context.Context, aggregateType, id string, pageSize int, after string) ([]*fleetv1.EventRecord, string, error)
	// ListLinks lists the links from or to an entity.
	ListLinks(ctx context.Context, id string, includeInactive bool, pageSize int, after string) ([]*fleetv1.Link, string, error)
	// ActiveLinks returns up to limit active links from or to any of ids.
	ActiveLinks(ctx context.Context, ids []string, limit int) ([]*fleetv1.Link, error)
	// ResourceInfo returns what is known of those ids that are resources.
	ResourceInfo(ctx context.Context, ids []string) (map[string]NodeInfo, error)
}

// Graph bounds.
const (
	maxGraphDepth       = 5
	defaultGraphNodes   = 200
	maxGraphNodes       = 1000
	cloudAggregate      = "cloud_resource"
	linksAggregate      = "links"
	entityCloudResource = "cloud_resource"
)

// CloudOptions configure NewCloudService.
type CloudOptions struct {
	Resources CloudResourceReader
	Links     LinkReader
	Store     CloudStore
	Logger    *slog.Logger
}

// CloudServer implements fleetv1.CloudServiceServer: one resource and its
// links from the processors' tables (always current), lists, histories
// and graphs from the read model.
type CloudServer struct {
	fleetv1.UnimplementedCloudServiceServer
	resources CloudResourceReader
	links     LinkReader
	store     CloudStore
	// errs maps read failures to statuses the way FleetService does.
	errs *Server
}

// NewCloudServer builds the CloudService implementation.
func NewCloudServer(o CloudOptions) *CloudServer {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &CloudServer{resources: o.Resources, links: o.Links, store: o.Store, errs: &Server{logger: o.Logger}}
}

// NewCloudService is CloudService as a Service of the API, every method
// open to the read scope.
func NewCloudService(o CloudOptions) Service {
	impl := NewCloudServer(o)
	return Service{
		Name:     "CloudService",
		Register: func(s *grpc.Server) { fleetv1.RegisterCloudServiceServer(s, impl) },
		Gateway: func(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
			return fleetv1.RegisterCloudServiceHandler(ctx, mux, conn)
		},
		Scopes: map[string]Scope{
			fleetv1.CloudService_GetCloudResource_FullMethodName:   ScopeRead,
			fleetv1.CloudService_ListCloudResources_FullMethodName: ScopeRead,
			fleetv1.CloudService_ListCloudEvents_FullMethodName:    ScopeRead,
			fleetv1.CloudService_ListLinks_FullMethodName:          ScopeRead,
			fleetv1.CloudService_GetEntityGraph_FullMethodName:     ScopeRead,
		},
	}
}

// GetCloudResource reads one resource (a tombstone too) and its current
// links.
func (s *CloudServer) GetCloudResource(ctx context.Context, req *fleetv1.GetCloudResourceRequest) (*fleetv1.CloudResourceWithLinks, error) {
	r, err := s.resource(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	links, err := s.links.Links(r.GetId())
	if err != nil {
		return nil, s.errs.readError(ctx, "read links of "+r.GetId(), err)
	}
	return &fleetv1.CloudResourceWithLinks{Resource: r, Links: links}, nil
}

// ListCloudResources lists resources from the read model, by key.
func (s *CloudServer) ListCloudResources(ctx context.Context, req *fleetv1.ListCloudResourcesRequest) (*fleetv1.ListCloudResourcesResponse, error) {
	for _, tag := range req.GetTag() {
		if key, _, _ := strings.Cut(tag, "="); key == "" {
			return nil, status.Errorf(codes.InvalidArgument, "tag %q has no key: pass tag=key=value or tag=key", tag)
		}
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	const listing = "cloud_resources"
	after, err := decodePageToken(listing, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	filter := CloudResourceFilter{Provider: req.GetProvider(), Account: req.GetAccount(), Region: req.GetRegion(), Kind: req.GetKind(),
		Tags: req.GetTag(), IncludeDeleted: req.GetIncludeDeleted()}
	rs, last, err := s.store.ListCloudResources(ctx, filter, size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list cloud resources", err)
	}
	return &fleetv1.ListCloudResourcesResponse{Resources: rs, NextPageToken: encodePageToken(listing, last)}, nil
}

// ListCloudEvents lists a resource's events, or the link events an entity
// emitted as a source.
func (s *CloudServer) ListCloudEvents(ctx context.Context, req *fleetv1.ListCloudEventsRequest) (*fleetv1.ListEventsResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	aggregate := cloudAggregate
	if req.GetLinks() {
		aggregate = linksAggregate
	} else if _, err := s.resource(ctx, req.GetId()); err != nil {
		// Without this an unknown id would look like a resource with no history.
		return nil, err
	}
	listing := "events/" + aggregate + "/" + req.GetId()
	after, err := decodePageToken(listing, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	events, last, err := s.store.ListEvents(ctx, aggregate, req.GetId(), size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list events of "+req.GetId(), err)
	}
	return &fleetv1.ListEventsResponse{Events: events, NextPageToken: encodePageToken(listing, last)}, nil
}

// ListLinks lists the links touching an entity from the read model.
func (s *CloudServer) ListLinks(ctx context.Context, req *fleetv1.ListLinksRequest) (*fleetv1.ListLinksResponse, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	listing := "links/" + req.GetId()
	if req.GetIncludeInactive() {
		listing += "/all"
	}
	after, err := decodePageToken(listing, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	links, last, err := s.store.ListLinks(ctx, req.GetId(), req.GetIncludeInactive(), size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list links of "+req.GetId(), err)
	}
	return &fleetv1.ListLinksResponse{Links: links, NextPageToken: encodePageToken(listing, last)}, nil
}

// GetEntityGraph walks active links breadth first, in both directions,
// from the entity to req.depth hops, stopping at req.max_nodes nodes.
func (s *CloudServer) GetEntityGraph(ctx context.Context, req *fleetv1.GetEntityGraphRequest) (*fleetv1.EntityGraph, error) {
	id := req.GetId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	depth, maxNodes := int(req.GetDepth()), int(req.GetMaxNodes())
	switch {
	case depth == 0:
		depth = 1
	case depth < 0 || depth > maxGraphDepth:
		return nil, status.Errorf(codes.InvalidArgument, "depth must be between 1 and %d (default 1); got %d", maxGraphDepth, depth)
	}
	switch {
	case maxNodes == 0:
		maxNodes = defaultGraphNodes
	case maxNodes < 0 || maxNodes > maxGraphNodes:
		return nil, status.Errorf(codes.InvalidArgument, "max_nodes must be between 1 and %d (default %d); got %d", maxGraphNodes, defaultGraphNodes, maxNodes)
	}

	g := newGraph(id, maxNodes)
	frontier := []string{id}
	for d := 1; d <= depth && len(frontier) > 0 && !g.truncated; d++ {
		// A hub (a VPC of thousands of instances) could return more links
		// than nodes can be shown; fetching one more than the node budget
		// allows tells that it was cut.
		limit := 4*maxNodes + 1
		links, err := s.store.ActiveLinks(ctx, frontier, limit)
		if err != nil {
			return nil, s.errs.readError(ctx, "read the links of "+id, err)
		}
		if len(links) >= limit {
			g.truncated = true
		}
		frontier = g.expand(links, d)
	}
	if len(g.order) == 1 {
		r, err := s.resources.Get(id)
		if err != nil {
			return nil, s.errs.readError(ctx, "read resource "+id, err)
		}
		if r == nil {
			return nil, status.Errorf(codes.NotFound, "entity %s not found: it is neither a discovered resource nor the end of a link", id)
		}
		g.nodes[id].Entity = &fleetv1.EntityRef{Type: entityCloudResource, Id: id, Kind: r.GetSpec().GetKind()}
	}
	var resources []string
	for _, n := range g.order {
		if g.nodes[n].GetEntity().GetType() == entityCloudResource {
			resources = append(resources, n)
		}
	}
	info, err := s.store.ResourceInfo(ctx, resources)
	if err != nil {
		return nil, s.errs.readError(ctx, "read the resources of the graph of "+id, err)
	}
	out := &fleetv1.EntityGraph{Edges: g.edges, Truncated: g.truncated}
	for _, n := range g.order {
		node := g.nodes[n]
		if i, ok := info[n]; ok {
			node.Name, node.Deleted = i.Name, i.Deleted
		}
		out.Nodes = append(out.Nodes, node)
	}
	return out, nil
}

// graph is a breadth-first walk in progress.
type graph struct {
	nodes     map[string]*fleetv1.GraphNode
	order     []string
	edges     []*fleetv1.Link
	seenEdge  map[string]bool
	maxNodes  int
	truncated bool
}

func newGraph(root string, maxNodes int) *graph {
	return &graph{
		nodes:    map[string]*fleetv1.GraphNode{root: {Entity: &fleetv1.EntityRef{Id: root}}},
		order:    []string{root},
		seenEdge: map[string]bool{},
		maxNodes: maxNodes,
	}
}

// expand adds the links found from the frontier at depth-1: their new ends
// become nodes at depth (the next frontier, sorted), and links between
// nodes become edges.
func (g *graph) expand(links []*fleetv1.Link, depth int) []string {
	var next []string
	for _, l := range links {
		for _, end := range []*fleetv1.EntityRef{l.GetFrom(), l.GetTo()} {
			n, seen := g.nodes[end.GetId()]
			switch {
			case seen:
				if n.GetEntity().GetType() == "" {
					n.Entity = end // the root, described by its links
				}
			case len(g.nodes) >= g.maxNodes:
				g.truncated = true
			default:
				g.nodes[end.GetId()] = &fleetv1.GraphNode{Entity: end, Depth: int32(depth)}
				next = append(next, end.GetId())
			}
		}
		_, fromIn := g.nodes[l.GetFrom().GetId()]
		_, toIn := g.nodes[l.GetTo().GetId()]
		key := l.GetFrom().GetId() + "\x00" + l.GetRelation() + "\x00" + l.GetTo().GetId()
		if fromIn && toIn && !g.seenEdge[key] {
			g.seenEdge[key] = true
			g.edges = append(g.edges, l)
		}
	}
	slices.Sort(next)
	g.order = append(g.order, next...)
	return next
}

func (s *CloudServer) resource(ctx context.Context, id string) (*fleetv1.CloudResource, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	r, err := s.resources.Get(id)
	if err != nil {
		return nil, s.errs.readError(ctx, "read resource "+id, err)
	}
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "cloud resource %s not found: ids are <provider>:<account>:<resource id>", id)
	}
	return r, nil
}
