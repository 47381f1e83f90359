package api

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
)

// Service is a gRPC service served by the API next to FleetService, with
// its REST routes and the scope each of its methods needs.
type Service struct {
	// Name, for errors.
	Name string
	// Register adds the implementation to the gRPC server, e.g.
	// func(s *grpc.Server) { fleetv1.RegisterChecksServiceServer(s, impl) }.
	Register func(*grpc.Server)
	// Gateway registers the REST routes against the loopback connection,
	// e.g. fleetv1.RegisterChecksServiceHandler.
	Gateway func(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error
	// Scopes maps each full method name ("/fleetstream.v1.X/Y") to the
	// scope it needs; a method missing here is refused for every key.
	Scopes map[string]Scope
}
