package api

import (
	"context"
	"log/slog"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recoverer turns a panicking handler into an Internal error. gRPC runs each
// call in its own goroutine, outside net/http's per-request recovery, so one
// bad request would otherwise take the whole process down.
type recoverer struct {
	logger *slog.Logger
}

func (r recoverer) recovered(method string, p any) error {
	r.logger.Error("api handler panicked", "method", shortMethod(method), "panic", p, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error: the server logged the details")
}

func (r recoverer) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = nil, r.recovered(info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

func (r recoverer) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = r.recovered(info.FullMethod, p)
		}
	}()
	return handler(srv, ss)
}
