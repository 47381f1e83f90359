package api

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// HostReader reads the current state of one host (the host aggregate's goka
// table, through a view). Get returns nil, nil for an unknown id.
type HostReader interface {
	Get(id string) (*fleetv1.Host, error)
}

// HostFilter narrows ListHosts; empty fields do not filter.
type HostFilter struct {
	HostnamePrefix string
	OS             string
	// One of unknown, passing, warning, critical (validated by the API).
	Health string
	// Tags must all be set on the host.
	Tags []string
	// Provider: aws, azure, gcp, kvm, nutanix, vmware or unknown.
	Provider            string
	IncludeDeregistered bool
}

// Store is the ClickHouse read model the lists and histories come from.
// Pagination is keyset: after is the last key of the previous page ("" for
// the first page) and the returned string is the key of the last item
// returned, or "" when no page follows. The API wraps keys into opaque page
// tokens. An error that is a gRPC status (e.g. InvalidArgument for an after
// key that does not parse) reaches the client as is; any other error is
// logged and reported as Unavailable.
type Store interface {
	ListHosts(ctx context.Context, filter HostFilter, pageSize int, after string) ([]*fleetv1.Host, string, error)
	// ListEvents lists one aggregate's events, oldest first.
	ListEvents(ctx context.Context, aggregateType, id string, pageSize int, after string) ([]*fleetv1.EventRecord, string, error)
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
	// hostAggregate is the aggregate_type of host events.
	hostAggregate = "host"
)

var healthValues = []string{"unknown", "passing", "warning", "critical"}

// Server implements fleetv1.FleetServiceServer: one-entity reads from the
// HostReader (always current), lists and history from the Store.
type Server struct {
	fleetv1.UnimplementedFleetServiceServer
	hosts  HostReader
	store  Store
	logger *slog.Logger
}

// NewServer builds the FleetService implementation.
func NewServer(hosts HostReader, store Store, logger *slog.Logger) *Server {
	return &Server{hosts: hosts, store: store, logger: logger}
}

// ListHosts lists hosts from the read model, ordered by the store's key.
func (s *Server) ListHosts(ctx context.Context, req *fleetv1.ListHostsRequest) (*fleetv1.ListHostsResponse, error) {
	filter := HostFilter{HostnamePrefix: req.GetHostnamePrefix(), OS: req.GetOs(), Health: req.GetHealth(),
		Tags: req.GetTag(), Provider: req.GetProvider(), IncludeDeregistered: req.GetIncludeDeregistered()}
	if err := validateFilter(DiscoveryFilter{Health: filter.Health, Provider: filter.Provider, Tags: filter.Tags}, nil); err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	const listing = "hosts"
	after, err := decodePageToken(listing, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	hosts, last, err := s.store.ListHosts(ctx, filter, size, after)
	if err != nil {
		return nil, s.readError(ctx, "list hosts", err)
	}
	return &fleetv1.ListHostsResponse{Hosts: hosts, NextPageToken: encodePageToken(listing, last)}, nil
}

// GetHost reads one host's current state.
func (s *Server) GetHost(ctx context.Context, req *fleetv1.GetHostRequest) (*fleetv1.Host, error) {
	return s.host(ctx, req.GetId())
}

// ListHostEvents lists one host's events, oldest first.
func (s *Server) ListHostEvents(ctx context.Context, req *fleetv1.ListHostEventsRequest) (*fleetv1.ListEventsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	listing := "events/" + hostAggregate + "/" + req.GetId()
	after, err := decodePageToken(listing, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	// The view knows every host ever registered; without this check an
	// unknown id would look like a host with no history.
	if _, err := s.host(ctx, req.GetId()); err != nil {
		return nil, err
	}
	events, last, err := s.store.ListEvents(ctx, hostAggregate, req.GetId(), size, after)
	if err != nil {
		return nil, s.readError(ctx, "list events of host "+req.GetId(), err)
	}
	return &fleetv1.ListEventsResponse{Events: events, NextPageToken: encodePageToken(listing, last)}, nil
}

func (s *Server) host(ctx context.Context, id string) (*fleetv1.Host, error) {
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	h, err := s.hosts.Get(id)
	if err != nil {
		return nil, s.readError(ctx, "read host "+id, err)
	}
	if h == nil {
		return nil, status.Errorf(codes.NotFound, "host %s not found", id)
	}
	return h, nil
}

func pageSize(n int32) (int, error) {
	switch {
	case n == 0:
		return defaultPageSize, nil
	case n < 0 || n > maxPageSize:
		return 0, status.Errorf(codes.InvalidArgument, "page_size must be between 1 and %d (default %d); got %d", maxPageSize, defaultPageSize, n)
	}
	return int(n), nil
}

// readError maps a read-side failure to a status. The details stay in the
// server log: they may hold SQL or addresses the client has no use for.
func (s *Server) readError(ctx context.Context, op string, err error) error {
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: request canceled", op)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: deadline exceeded", op)
	}
	s.logger.ErrorContext(ctx, "api read failed", "op", op, "err", err)
	return status.Errorf(codes.Unavailable, "%s failed: the read model is unavailable; retry later", op)
}
