package api

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// ClusterReader reads one cluster's current state (the cluster aggregate's
// table, through a view). Get returns nil, nil for an unknown id.
type ClusterReader interface {
	Get(id string) (*fleetv1.Cluster, error)
}

// SapSystemReader reads one SAP system's current state; nil, nil for an
// unknown id.
type SapSystemReader interface {
	Get(id string) (*fleetv1.SapSystem, error)
}

// DatabaseReader reads one database's current state; nil, nil for an
// unknown id.
type DatabaseReader interface {
	Get(id string) (*fleetv1.Database, error)
}

// DiscoveryFilter narrows the lists of clusters, SAP systems and databases;
// empty fields do not filter. The API validates values and passes only the
// fields the listed entity has.
type DiscoveryFilter struct {
	Health, Type, SID, Provider string
	// HostID: entities with a member or instance on that host.
	HostID string
	// DatabaseID: SAP systems running on that database.
	DatabaseID string
	// Tags must all be set.
	Tags                []string
	IncludeDeregistered bool
}

// DiscoveryStore is the ClickHouse read model of clusters, SAP systems,
// databases and tags. Pagination and errors follow Store's rules.
type DiscoveryStore interface {
	ListClusters(ctx context.Context, f DiscoveryFilter, pageSize int, after string) ([]*fleetv1.Cluster, string, error)
	ListSapSystems(ctx context.Context, f DiscoveryFilter, pageSize int, after string) ([]*fleetv1.SapSystem, string, error)
	ListDatabases(ctx context.Context, f DiscoveryFilter, pageSize int, after string) ([]*fleetv1.Database, string, error)
	// ListEvents lists one aggregate's events, oldest first.
	ListEvents(ctx context.Context, aggregateType, id string, pageSize int, after string) ([]*fleetv1.EventRecord, string, error)
	// Tags returns the tags of those of ids that have any, sorted.
	Tags(ctx context.Context, entityType string, ids []string) (map[string][]string, error)
	AddTag(ctx context.Context, entityType, id, value string) error
	RemoveTag(ctx context.Context, entityType, id, value string) error
}

// Entity (aggregate) types, as events and tags name them.
const (
	clusterAggregate   = "cluster"
	sapSystemAggregate = "sap_system"
	databaseAggregate  = "database"
)

var (
	clusterTypes = []string{"hana_scale_up", "hana_scale_out", "ascs_ers", "hana_ascs_ers", "unknown"}
	providers    = []string{"aws", "azure", "gcp", "kvm", "nutanix", "vmware", "unknown"}
	// A SAP SID: three characters, a letter first.
	sidPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{2}$`)
	// typePattern bounds free-form type values (SAP system types).
	typePattern = regexp.MustCompile(`^[a-z0-9_+]{1,32}$`)
	// tagPattern: what fits a URL path segment unescaped and a shell
	// argument unquoted, except space.
	tagPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _.:+=@-]*$`)
	// collections maps the tag routes' collection to the entity type.
	collections = map[string]string{"hosts": hostAggregate, "clusters": clusterAggregate,
		"sap_systems": sapSystemAggregate, "databases": databaseAggregate}
)

// maxTagLen is the longest tag value, in bytes (the charset is ASCII).
const maxTagLen = 64

// maxRelated bounds the SAP systems listed with a database.
const maxRelated = 1000

// DiscoveryOptions configure NewDiscoveryService.
type DiscoveryOptions struct {
	Hosts      HostReader
	Clusters   ClusterReader
	SapSystems SapSystemReader
	Databases  DatabaseReader
	Store      DiscoveryStore
	Logger     *slog.Logger
}

// DiscoveryServer implements fleetv1.DiscoveryServiceServer.
type DiscoveryServer struct {
	fleetv1.UnimplementedDiscoveryServiceServer
	o DiscoveryOptions
	// errs maps read failures to statuses the way FleetService does.
	errs *Server
}

// NewDiscoveryServer builds the DiscoveryService implementation.
func NewDiscoveryServer(o DiscoveryOptions) *DiscoveryServer {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &DiscoveryServer{o: o, errs: &Server{logger: o.Logger}}
}

// NewDiscoveryService is DiscoveryService as a Service of the API: reads
// need the read scope, tag changes the write scope.
func NewDiscoveryService(o DiscoveryOptions) Service {
	impl := NewDiscoveryServer(o)
	return Service{
		Name:     "DiscoveryService",
		Register: func(s *grpc.Server) { fleetv1.RegisterDiscoveryServiceServer(s, impl) },
		Gateway: func(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error {
			return fleetv1.RegisterDiscoveryServiceHandler(ctx, mux, conn)
		},
		Scopes: map[string]Scope{
			fleetv1.DiscoveryService_ListClusters_FullMethodName:        ScopeRead,
			fleetv1.DiscoveryService_GetCluster_FullMethodName:          ScopeRead,
			fleetv1.DiscoveryService_ListClusterEvents_FullMethodName:   ScopeRead,
			fleetv1.DiscoveryService_ListSapSystems_FullMethodName:      ScopeRead,
			fleetv1.DiscoveryService_GetSapSystem_FullMethodName:        ScopeRead,
			fleetv1.DiscoveryService_ListSapSystemEvents_FullMethodName: ScopeRead,
			fleetv1.DiscoveryService_ListDatabases_FullMethodName:       ScopeRead,
			fleetv1.DiscoveryService_GetDatabase_FullMethodName:         ScopeRead,
			fleetv1.DiscoveryService_ListDatabaseEvents_FullMethodName:  ScopeRead,
			fleetv1.DiscoveryService_ListTags_FullMethodName:            ScopeRead,
			fleetv1.DiscoveryService_AddTag_FullMethodName:              ScopeWrite,
			fleetv1.DiscoveryService_RemoveTag_FullMethodName:           ScopeWrite,
		},
	}
}

// ListClusters lists clusters from the read model, by id.
func (s *DiscoveryServer) ListClusters(ctx context.Context, req *fleetv1.ListClustersRequest) (*fleetv1.ListClustersResponse, error) {
	f := DiscoveryFilter{Health: req.GetHealth(), Type: req.GetType(), SID: req.GetSid(), Provider: req.GetProvider(),
		HostID: req.GetHostId(), Tags: req.GetTag(), IncludeDeregistered: req.GetIncludeDeregistered()}
	if err := validateFilter(f, clusterTypes); err != nil {
		return nil, err
	}
	size, after, err := page("clusters", req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	cs, last, err := s.o.Store.ListClusters(ctx, f, size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list clusters", err)
	}
	tags, err := tagsOf(ctx, s, clusterAggregate, cs)
	if err != nil {
		return nil, err
	}
	return &fleetv1.ListClustersResponse{Clusters: cs, NextPageToken: encodePageToken("clusters", last), Tags: tags}, nil
}

// ListSapSystems lists SAP systems from the read model, by id.
func (s *DiscoveryServer) ListSapSystems(ctx context.Context, req *fleetv1.ListSapSystemsRequest) (*fleetv1.ListSapSystemsResponse, error) {
	f := DiscoveryFilter{Health: req.GetHealth(), Type: req.GetType(), SID: req.GetSid(), HostID: req.GetHostId(),
		DatabaseID: req.GetDatabaseId(), Tags: req.GetTag(), IncludeDeregistered: req.GetIncludeDeregistered()}
	if err := validateFilter(f, nil); err != nil {
		return nil, err
	}
	size, after, err := page("sap_systems", req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	ss, last, err := s.o.Store.ListSapSystems(ctx, f, size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list SAP systems", err)
	}
	tags, err := tagsOf(ctx, s, sapSystemAggregate, ss)
	if err != nil {
		return nil, err
	}
	return &fleetv1.ListSapSystemsResponse{SapSystems: ss, NextPageToken: encodePageToken("sap_systems", last), Tags: tags}, nil
}

// ListDatabases lists databases from the read model, by id.
func (s *DiscoveryServer) ListDatabases(ctx context.Context, req *fleetv1.ListDatabasesRequest) (*fleetv1.ListDatabasesResponse, error) {
	f := DiscoveryFilter{Health: req.GetHealth(), SID: req.GetSid(), HostID: req.GetHostId(), Tags: req.GetTag(),
		IncludeDeregistered: req.GetIncludeDeregistered()}
	if err := validateFilter(f, nil); err != nil {
		return nil, err
	}
	size, after, err := page("databases", req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	ds, last, err := s.o.Store.ListDatabases(ctx, f, size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list databases", err)
	}
	tags, err := tagsOf(ctx, s, databaseAggregate, ds)
	if err != nil {
		return nil, err
	}
	return &fleetv1.ListDatabasesResponse{Databases: ds, NextPageToken: encodePageToken("databases", last), Tags: tags}, nil
}

// GetCluster reads one cluster with its member hosts and tags.
func (s *DiscoveryServer) GetCluster(ctx context.Context, req *fleetv1.GetClusterRequest) (*fleetv1.ClusterDetail, error) {
	c, err := s.cluster(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(c.GetHosts()))
	for _, h := range c.GetHosts() {
		ids = append(ids, h.GetHostId())
	}
	hosts, err := s.hosts(ctx, ids)
	if err != nil {
		return nil, err
	}
	tags, err := s.tagValues(ctx, clusterAggregate, c.GetId())
	if err != nil {
		return nil, err
	}
	return &fleetv1.ClusterDetail{Cluster: c, Hosts: hosts, Tags: tags}, nil
}

// GetSapSystem reads one SAP system with the hosts of its instances, its
// database and its tags.
func (s *DiscoveryServer) GetSapSystem(ctx context.Context, req *fleetv1.GetSapSystemRequest) (*fleetv1.SapSystemDetail, error) {
	sys, err := s.sapSystem(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, in := range sys.GetApplicationInstances() {
		ids = append(ids, in.GetHostId())
	}
	slices.Sort(ids)
	hosts, err := s.hosts(ctx, slices.Compact(ids))
	if err != nil {
		return nil, err
	}
	out := &fleetv1.SapSystemDetail{SapSystem: sys, Hosts: hosts}
	if id := sys.GetDatabaseId(); id != "" {
		d, err := s.o.Databases.Get(id)
		if err != nil {
			return nil, s.errs.readError(ctx, "read database "+id, err)
		}
		if registered(d) {
			out.Database = d
		}
	}
	if out.Tags, err = s.tagValues(ctx, sapSystemAggregate, sys.GetId()); err != nil {
		return nil, err
	}
	return out, nil
}

// GetDatabase reads one database with the hosts of its instances, the SAP
// systems running on it and its tags.
func (s *DiscoveryServer) GetDatabase(ctx context.Context, req *fleetv1.GetDatabaseRequest) (*fleetv1.DatabaseDetail, error) {
	d, err := s.database(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, in := range d.GetInstances() {
		ids = append(ids, in.GetHostId())
	}
	slices.Sort(ids)
	hosts, err := s.hosts(ctx, slices.Compact(ids))
	if err != nil {
		return nil, err
	}
	systems, _, err := s.o.Store.ListSapSystems(ctx, DiscoveryFilter{DatabaseID: d.GetId()}, maxRelated, "")
	if err != nil {
		return nil, s.errs.readError(ctx, "list the SAP systems of database "+d.GetId(), err)
	}
	tags, err := s.tagValues(ctx, databaseAggregate, d.GetId())
	if err != nil {
		return nil, err
	}
	return &fleetv1.DatabaseDetail{Database: d, Hosts: hosts, SapSystems: systems, Tags: tags}, nil
}

// ListClusterEvents lists one cluster's events, oldest first.
func (s *DiscoveryServer) ListClusterEvents(ctx context.Context, req *fleetv1.ListClusterEventsRequest) (*fleetv1.ListEventsResponse, error) {
	if _, err := s.cluster(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return s.events(ctx, clusterAggregate, req.GetId(), req.GetPageSize(), req.GetPageToken())
}

// ListSapSystemEvents lists one SAP system's events, oldest first.
func (s *DiscoveryServer) ListSapSystemEvents(ctx context.Context, req *fleetv1.ListSapSystemEventsRequest) (*fleetv1.ListEventsResponse, error) {
	if _, err := s.sapSystem(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return s.events(ctx, sapSystemAggregate, req.GetId(), req.GetPageSize(), req.GetPageToken())
}

// ListDatabaseEvents lists one database's events, oldest first.
func (s *DiscoveryServer) ListDatabaseEvents(ctx context.Context, req *fleetv1.ListDatabaseEventsRequest) (*fleetv1.ListEventsResponse, error) {
	if _, err := s.database(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return s.events(ctx, databaseAggregate, req.GetId(), req.GetPageSize(), req.GetPageToken())
}

// ListTags lists the tags of one entity.
func (s *DiscoveryServer) ListTags(ctx context.Context, req *fleetv1.ListTagsRequest) (*fleetv1.ListTagsResponse, error) {
	typ, err := s.tagged(ctx, req.GetCollection(), req.GetId())
	if err != nil {
		return nil, err
	}
	values, err := s.tagValues(ctx, typ, req.GetId())
	if err != nil {
		return nil, err
	}
	return &fleetv1.ListTagsResponse{Values: values}, nil
}

// AddTag sets a tag on an entity.
func (s *DiscoveryServer) AddTag(ctx context.Context, req *fleetv1.AddTagRequest) (*fleetv1.Tag, error) {
	if err := validateTag(req.GetValue()); err != nil {
		return nil, err
	}
	typ, err := s.tagged(ctx, req.GetCollection(), req.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.o.Store.AddTag(ctx, typ, req.GetId(), req.GetValue()); err != nil {
		return nil, s.errs.readError(ctx, "add tag", err)
	}
	return &fleetv1.Tag{EntityType: typ, EntityId: req.GetId(), Value: req.GetValue()}, nil
}

// RemoveTag removes a tag from an entity.
func (s *DiscoveryServer) RemoveTag(ctx context.Context, req *fleetv1.RemoveTagRequest) (*fleetv1.RemoveTagResponse, error) {
	if err := validateTag(req.GetValue()); err != nil {
		return nil, err
	}
	typ, err := s.tagged(ctx, req.GetCollection(), req.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.o.Store.RemoveTag(ctx, typ, req.GetId(), req.GetValue()); err != nil {
		return nil, s.errs.readError(ctx, "remove tag", err)
	}
	return &fleetv1.RemoveTagResponse{}, nil
}

// tagged checks that the entity a tag route names exists and returns its
// type.
func (s *DiscoveryServer) tagged(ctx context.Context, collection, id string) (string, error) {
	typ, ok := collections[collection]
	if !ok {
		names := slices.Sorted(func(yield func(string) bool) {
			for c := range collections {
				if !yield(c) {
					return
				}
			}
		})
		return "", status.Errorf(codes.InvalidArgument, "collection must be one of %s; got %q", strings.Join(names, ", "), collection)
	}
	var err error
	switch typ {
	case hostAggregate:
		_, err = (&Server{hosts: s.o.Hosts, logger: s.o.Logger}).host(ctx, id)
	case clusterAggregate:
		_, err = s.cluster(ctx, id)
	case sapSystemAggregate:
		_, err = s.sapSystem(ctx, id)
	default:
		_, err = s.database(ctx, id)
	}
	return typ, err
}

func (s *DiscoveryServer) cluster(ctx context.Context, id string) (*fleetv1.Cluster, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	c, err := s.o.Clusters.Get(id)
	if err != nil {
		return nil, s.errs.readError(ctx, "read cluster "+id, err)
	}
	if c == nil {
		return nil, status.Errorf(codes.NotFound, "cluster %s not found", id)
	}
	return c, nil
}

func (s *DiscoveryServer) sapSystem(ctx context.Context, id string) (*fleetv1.SapSystem, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	sys, err := s.o.SapSystems.Get(id)
	if err != nil {
		return nil, s.errs.readError(ctx, "read SAP system "+id, err)
	}
	if !registered(sys) {
		return nil, status.Errorf(codes.NotFound, "SAP system %s not found", id)
	}
	return sys, nil
}

func (s *DiscoveryServer) database(ctx context.Context, id string) (*fleetv1.Database, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	d, err := s.o.Databases.Get(id)
	if err != nil {
		return nil, s.errs.readError(ctx, "read database "+id, err)
	}
	if !registered(d) {
		return nil, status.Errorf(codes.NotFound, "database %s not found", id)
	}
	return d, nil
}

// registered tells a SAP system or database from a pending state (instances
// held until it can register; see sap_system.proto), which the aggregates'
// tables hold but which is not an entity yet.
func registered(e interface{ GetRegisteredAt() *timestamppb.Timestamp }) bool {
	// The getters of generated messages answer nil on a nil message.
	return e.GetRegisteredAt() != nil
}

// hosts reads the hosts with ids, in that order, leaving out unknown ones.
func (s *DiscoveryServer) hosts(ctx context.Context, ids []string) ([]*fleetv1.Host, error) {
	out := make([]*fleetv1.Host, 0, len(ids))
	for _, id := range ids {
		h, err := s.o.Hosts.Get(id)
		if err != nil {
			return nil, s.errs.readError(ctx, "read host "+id, err)
		}
		if h != nil {
			out = append(out, h)
		}
	}
	return out, nil
}

func (s *DiscoveryServer) events(ctx context.Context, aggregateType, id string, size32 int32, token string) (*fleetv1.ListEventsResponse, error) {
	listing := "events/" + aggregateType + "/" + id
	size, after, err := page(listing, size32, token)
	if err != nil {
		return nil, err
	}
	events, last, err := s.o.Store.ListEvents(ctx, aggregateType, id, size, after)
	if err != nil {
		return nil, s.errs.readError(ctx, "list events of "+aggregateType+" "+id, err)
	}
	return &fleetv1.ListEventsResponse{Events: events, NextPageToken: encodePageToken(listing, last)}, nil
}

func (s *DiscoveryServer) tagValues(ctx context.Context, entityType, id string) ([]string, error) {
	tags, err := s.o.Store.Tags(ctx, entityType, []string{id})
	if err != nil {
		return nil, s.errs.readError(ctx, "read the tags of "+entityType+" "+id, err)
	}
	return tags[id], nil
}

// tagsOf returns the tags of a page of entities.
func tagsOf[T interface{ GetId() string }](ctx context.Context, s *DiscoveryServer, entityType string, page []T) ([]*fleetv1.Tag, error) {
	ids := make([]string, len(page))
	for i, e := range page {
		ids[i] = e.GetId()
	}
	tags, err := s.o.Store.Tags(ctx, entityType, ids)
	if err != nil {
		return nil, s.errs.readError(ctx, "read the tags of "+entityType+"s", err)
	}
	var out []*fleetv1.Tag
	for _, id := range ids {
		for _, v := range tags[id] {
			out = append(out, &fleetv1.Tag{EntityType: entityType, EntityId: id, Value: v})
		}
	}
	return out, nil
}

// page checks a page size and token.
func page(listing string, size int32, token string) (int, string, error) {
	n, err := pageSize(size)
	if err != nil {
		return 0, "", err
	}
	after, err := decodePageToken(listing, token)
	if err != nil {
		return 0, "", err
	}
	return n, after, nil
}

// validateFilter checks filter values; types, when given, are the allowed
// type values (nil: any lower-case identifier).
func validateFilter(f DiscoveryFilter, types []string) error {
	if f.Health != "" && !slices.Contains(healthValues, f.Health) {
		return status.Errorf(codes.InvalidArgument, "health must be one of %s; got %q", strings.Join(healthValues, ", "), f.Health)
	}
	if f.Type != "" {
		if types != nil && !slices.Contains(types, f.Type) {
			return status.Errorf(codes.InvalidArgument, "type must be one of %s; got %q", strings.Join(types, ", "), f.Type)
		}
		if !typePattern.MatchString(f.Type) {
			return status.Errorf(codes.InvalidArgument, "type %q is not a type: use lower-case letters, digits and _", f.Type)
		}
	}
	if f.SID != "" && !sidPattern.MatchString(f.SID) {
		return status.Errorf(codes.InvalidArgument, "sid must be three letters or digits, starting with a letter (e.g. HDB); got %q", f.SID)
	}
	if f.Provider != "" && !slices.Contains(providers, f.Provider) {
		return status.Errorf(codes.InvalidArgument, "provider must be one of %s; got %q", strings.Join(providers, ", "), f.Provider)
	}
	for _, t := range f.Tags {
		if err := validateTag(t); err != nil {
			return err
		}
	}
	return nil
}

func validateTag(v string) error {
	switch {
	case v == "":
		return status.Error(codes.InvalidArgument, "tag value is required: send {\"value\": \"...\"}")
	case len(v) > maxTagLen:
		return status.Errorf(codes.InvalidArgument, "tag value is %d characters long; the limit is %d", len(v), maxTagLen)
	case !tagPattern.MatchString(v) || strings.HasSuffix(v, " "):
		return status.Errorf(codes.InvalidArgument, "tag value %q has characters a tag cannot hold: use ASCII letters, digits, space and _ - . : + = @, starting with a letter or digit and not ending with a space", v)
	}
	return nil
}
