package api

import (
	"context"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// fleetScopes names the scope each FleetService method needs. A method
// missing from an API's scope table is refused for every key, so a new
// method is closed until it is listed.
var fleetScopes = map[string]Scope{
	fleetv1.FleetService_ListHosts_FullMethodName:      ScopeRead,
	fleetv1.FleetService_GetHost_FullMethodName:        ScopeRead,
	fleetv1.FleetService_ListHostEvents_FullMethodName: ScopeRead,
}

// authorize checks the bearer key in the call's metadata against the scope
// the method needs. REST calls arrive here too: the gateway forwards the
// Authorization header as "authorization" metadata over the loopback
// connection.
func (ks *Keys) authorize(ctx context.Context, scopes map[string]Scope, method string) error {
	secret, err := bearer(ctx)
	if err != nil {
		return err
	}
	key, ok := ks.lookup(secret)
	if !ok {
		return status.Error(codes.Unauthenticated, "invalid API key: check the key you send as Authorization: Bearer <key>")
	}
	need, ok := scopes[method]
	if !ok {
		return status.Errorf(codes.PermissionDenied, "method %s is not open to API keys", method)
	}
	if !slices.Contains(key.scopes, need) {
		return status.Errorf(codes.PermissionDenied, "API key %q lacks the %q scope that %s needs", key.name, need, shortMethod(method))
	}
	return nil
}

func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 || vals[0] == "" {
		return "", status.Error(codes.Unauthenticated, "missing API key: send Authorization: Bearer <key>")
	}
	scheme, secret, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(secret) == "" {
		return "", status.Error(codes.Unauthenticated, "malformed Authorization header: send Authorization: Bearer <key>")
	}
	return strings.TrimSpace(secret), nil
}

// authorizer checks every call against keys and the scope table of the
// API's services.
type authorizer struct {
	keys   *Keys
	scopes map[string]Scope
}

func (a authorizer) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.keys.authorize(ctx, a.scopes, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a authorizer) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.keys.authorize(ss.Context(), a.scopes, info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// shortMethod turns "/fleetstream.v1.FleetService/ListHosts" into
// "fleetstream.v1.FleetService/ListHosts".
func shortMethod(fullMethod string) string {
	return strings.TrimPrefix(fullMethod, "/")
}
