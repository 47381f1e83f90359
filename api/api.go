// Package api serves fleetstream's API: the gRPC services, the same services
// as REST/JSON through grpc-gateway, the OpenAPI document and the operational
// endpoints, all on one listener.
//
// The gateway talks to the gRPC server over a real loopback connection to
// that same listener rather than calling the implementation in-process: that
// way streaming methods work through the gateway, and one interceptor chain
// (metrics, recovery, API-key auth) covers gRPC and REST alike.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/fleetstream/fleetstream/schemas"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Options configure New.
type Options struct {
	// Hosts reads one host's current state. Required.
	Hosts HostReader
	// Store serves lists and history. Required.
	Store Store
	// Keys are the user API keys accepted by every gRPC/REST method.
	// Required: an API without keys would refuse everything.
	Keys *Keys
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registry receives the API's metrics. Default: a new registry.
	Registry prometheus.Registerer
	// Gatherer is what GET /metrics exposes. Default: Registry when it is
	// also a Gatherer (as *prometheus.Registry is).
	Gatherer prometheus.Gatherer
	// Ready reports readiness for GET /readyz (nil error: ready). Default:
	// always ready.
	Ready func() error
	// Extra routes mounted on the same mux, as net/http ServeMux patterns
	// (e.g. "POST /api/v1/collect"). They bypass the API-key interceptor:
	// each must authenticate its own callers.
	Extra map[string]http.Handler
	// ShutdownTimeout bounds how long Serve waits for in-flight requests
	// after its context is cancelled before closing connections. Default 10s.
	ShutdownTimeout time.Duration
	// Services are further gRPC services served next to FleetService
	// (checks, tasks, ...), each with its REST gateway and scopes.
	Services []Service
}

// API is the API server. Serve it once.
type API struct {
	logger          *slog.Logger
	grpc            *grpc.Server
	gateway         *runtime.ServeMux
	handler         http.Handler
	shutdownTimeout time.Duration
	services        []Service
}

// New builds the API; nothing listens until Serve.
func New(opts Options) (*API, error) {
	switch {
	case opts.Hosts == nil:
		return nil, errors.New("api: Options.Hosts is required")
	case opts.Store == nil:
		return nil, errors.New("api: Options.Store is required")
	case opts.Keys == nil:
		return nil, errors.New("api: Options.Keys is required: configure API keys (name:secret:read,write) or generate one with GenerateKey")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Gatherer == nil {
		g, ok := opts.Registry.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("api: Options.Gatherer is required when Options.Registry is not a Gatherer")
		}
		opts.Gatherer = g
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}

	metrics := NewMetrics(opts.Registry)
	rec := recoverer{logger: opts.Logger}
	auth := authorizer{keys: opts.Keys, scopes: maps.Clone(fleetScopes)}
	for _, svc := range opts.Services {
		maps.Copy(auth.scopes, svc.Scopes)
	}
	// Order matters: metrics outermost so refused and panicking calls are
	// counted with the code the client saw.
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(metrics.unaryInterceptor, rec.unaryInterceptor, auth.unaryInterceptor),
		grpc.ChainStreamInterceptor(metrics.streamInterceptor, rec.streamInterceptor, auth.streamInterceptor),
	)
	fleetv1.RegisterFleetServiceServer(srv, NewServer(opts.Hosts, opts.Store, opts.Logger))
	for _, svc := range opts.Services {
		svc.Register(srv)
	}

	a := &API{
		logger:          opts.Logger,
		grpc:            srv,
		gateway:         newGateway(),
		shutdownTimeout: opts.ShutdownTimeout,
		services:        opts.Services,
	}
	h, err := a.routes(opts)
	if err != nil {
		return nil, err
	}
	a.handler = h
	return a, nil
}

// Serve serves gRPC (HTTP/2 cleartext, content-type application/grpc) and
// HTTP/1.1 or HTTP/2 REST on lis until ctx is cancelled, then shuts down
// gracefully. It returns nil after a shutdown caused by ctx.
func (a *API) Serve(ctx context.Context, lis net.Listener) error {
	target, err := dialTarget(lis.Addr())
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// A page of 1000 hosts with their systemd units exceeds gRPC's
		// default 4 MiB receive limit.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	)
	if err != nil {
		return fmt.Errorf("api: gateway connection to %s: %w", target, err)
	}
	defer conn.Close()
	if err := fleetv1.RegisterFleetServiceHandler(ctx, a.gateway, conn); err != nil {
		return fmt.Errorf("api: register gateway: %w", err)
	}
	for _, svc := range a.services {
		if err := svc.Gateway(ctx, a.gateway, conn); err != nil {
			return fmt.Errorf("api: register gateway of %s: %w", svc.Name, err)
		}
	}

	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{
		Handler:           a.handler,
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	a.logger.Info("api listening", "addr", lis.Addr().String())

	select {
	case err := <-served:
		a.grpc.Stop()
		return fmt.Errorf("api: serve on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), a.shutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	if err != nil {
		a.logger.Warn("api shutdown timed out; closing open connections", "timeout", a.shutdownTimeout, "err", err)
		err = hs.Close()
	}
	a.grpc.Stop()
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("api: serve on %s: %w", lis.Addr(), serr)
	}
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

// dialTarget is the address the gateway dials to reach this listener: a
// wildcard bind address (":8080") is reached through loopback.
func dialTarget(addr net.Addr) (string, error) {
	switch addr.Network() {
	case "tcp", "tcp4", "tcp6":
		host, port, err := net.SplitHostPort(addr.String())
		if err != nil {
			return "", fmt.Errorf("api: listener address %s: %w", addr, err)
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			if ip != nil && ip.To4() == nil {
				host = "::1"
			} else {
				host = "127.0.0.1"
			}
		}
		return "passthrough:///" + net.JoinHostPort(host, port), nil
	case "unix":
		return "unix://" + addr.String(), nil
	}
	return "", fmt.Errorf("api: cannot serve on a %s listener: use tcp or unix", addr.Network())
}

// routes builds the one handler behind the listener: gRPC by content type,
// everything else by path.
func (a *API) routes(opts Options) (http.Handler, error) {
	mux := http.NewServeMux()
	mux.Handle("/healthz", a.onlyGet(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, `{"status":"ok"}`)
	})))
	mux.Handle("/readyz", a.onlyGet(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				writeError(a.gateway, w, r, status.Errorf(codes.Unavailable, "not ready: %v", err))
				return
			}
		}
		writeJSON(w, http.StatusOK, `{"status":"ready"}`)
	})))
	mux.Handle("/metrics", a.onlyGet(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelError),
	})))
	mux.Handle("/openapi.json", a.onlyGet(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(schemas.OpenAPI)
	})))
	for pattern, h := range opts.Extra {
		if err := handle(mux, pattern, h); err != nil {
			return nil, err
		}
	}
	mux.Handle("/", a.gateway)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			a.grpc.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// handle mounts an extra route, turning ServeMux's panic on a bad or
// conflicting pattern into an error.
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("api: mount extra route %q: %v", pattern, p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// onlyGet answers other methods with a JSON 405; a method-qualified
// ServeMux pattern would hand them to the gateway's catch-all as a 404.
func (a *API) onlyGet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(a.gateway, w, r, &runtime.HTTPStatusError{
				HTTPStatus: http.StatusMethodNotAllowed,
				Err:        status.Errorf(codes.Unimplemented, "method %s is not allowed on %s: use GET", r.Method, r.URL.Path),
			})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
