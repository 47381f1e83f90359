// Package system composes fleetstream's roles (ingest, processors, sink,
// API) into one runnable unit: each subcommand runs some roles, `dev` and
// the end-to-end tests run them all in one process.
package system

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/host"
	"github.com/fleetstream/fleetstream/processors/scenario"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Config is what the roles need to run.
type Config struct {
	Brokers []string
	// Kafka is how every Kafka client reaches the brokers (TLS, SASL).
	Kafka  kafka.Security
	Topics kafka.Topics
	// Replication of topics created at start: 1 on a single broker.
	Replication int16
	ClickHouse  clickhouse.Options
	// Database of the read models, created by Prepare.
	Database  string
	AgentKeys ingest.AgentKeys
	// UserKeys authenticate API users; required with the API role.
	UserKeys *api.Keys
	// MaxBodyBytes bounds an ingest request (0: the ingest default).
	MaxBodyBytes int64
	// StateDir holds goka's local table storage; empty keeps it in memory
	// (rebuilt from the changelog topics at every start).
	StateDir string
	// SinkFlushInterval bounds how long an event waits in a sink batch
	// (0: the sink default).
	SinkFlushInterval time.Duration
	// Heartbeat is when a host's heartbeat is lost (heartbeat.go).
	Heartbeat host.HeartbeatConfig
	// Checks configures the checks processors and API (checks.go).
	Checks ChecksConfig
	Logger *slog.Logger
	// Registry is the process's (NewRegistry: with the runtime
	// collectors); roles register only their own metrics on it. Default
	// NewRegistry().
	Registry *prometheus.Registry
}

// Roles selects what runs.
type Roles struct {
	Ingest, Process, Sink, API bool
}

// All is every role, as in `fleetstream dev`.
func All() Roles { return Roles{Ingest: true, Process: true, Sink: true, API: true} }

// Prepare creates the Kafka topics and applies the ClickHouse migrations:
// what `fleetstream migrate` does, and what dev does at start.
func Prepare(ctx context.Context, cfg Config, kafkaToo, clickhouseToo bool) error {
	if kafkaToo {
		if err := cfg.Kafka.Check(ctx, cfg.Brokers); err != nil {
			return err
		}
		cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.SeedBrokers(cfg.Brokers...))...)
		if err != nil {
			return fmt.Errorf("kafka client: %w", err)
		}
		defer cl.Close()
		if err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), cfg.Topics.All(), cfg.Replication); err != nil {
			return fmt.Errorf("kafka topics on %v: %w", cfg.Brokers, err)
		}
	}
	if clickhouseToo {
		conn, err := clickhouse.Open(ctx, cfg.ClickHouse)
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := clickhouse.Migrate(ctx, conn, cfg.Database, cfg.Logger); err != nil {
			return err
		}
	}
	return nil
}

// Run runs roles until ctx ends or one of them fails; lis serves HTTP (the
// API with the ingest routes, or ingest alone, or only /healthz and
// /metrics). ready, when not nil, is called once the API can answer.
func Run(ctx context.Context, cfg Config, roles Roles, lis net.Listener) error {
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	if err := kafka.UseGokaConfigWith(cfg.Kafka); err != nil {
		return err
	}
	if err := cfg.Kafka.Check(ctx, cfg.Brokers); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)

	routes := map[string]http.Handler{}
	var checks []func(context.Context) error
	if roles.Ingest {
		client, err := kafka.NewClient(cfg.Brokers, cfg.Kafka.Opts()...)
		if err != nil {
			return fmt.Errorf("ingest kafka client: %w", err)
		}
		defer client.Close()
		h := ingest.New(ingest.Config{
			Keys:         cfg.AgentKeys,
			Topic:        cfg.Topics.Discoveries,
			MaxBodyBytes: cfg.MaxBodyBytes,
			Validate:     payload.Validate,
		}, client, ingest.NewMetrics(cfg.Registry), cfg.Logger.With("role", "ingest"))
		routes = h.Routes()
		checks = append(checks, client.Ping)
	}
	if roles.Process {
		recovered, err := runProcessors(ctx, g, cfg)
		if err != nil {
			return err
		}
		checks = append(checks, recovered)
	}
	if roles.Sink {
		if err := runSink(ctx, g, cfg); err != nil {
			return err
		}
	}
	if roles.API {
		srv, err := newAPI(ctx, g, cfg, routes)
		if err != nil {
			return err
		}
		g.Go(func() error { return srv.Serve(ctx, lis) })
	} else {
		g.Go(func() error { return servePlain(ctx, lis, cfg.Registry, routes, allOf(checks)) })
	}
	return g.Wait()
}

func gokaStorage(cfg Config, name string) storage.Builder {
	if cfg.StateDir == "" {
		return storage.MemoryBuilder()
	}
	return storage.DefaultBuilder(filepath.Join(cfg.StateDir, name))
}

func topicManager(cfg Config) goka.TopicManagerBuilder {
	return goka.TopicManagerBuilderWithTopicManagerConfig(kafka.TopicManagerConfig(int(cfg.Replication)))
}

// runProcessors starts every goka processor of the process role; the
// returned check passes once all of them recovered their tables, so a
// restarted instance is not reported ready while it rebuilds state.
func runProcessors(ctx context.Context, g *errgroup.Group, cfg Config) (func(context.Context) error, error) {
	log := cfg.Logger.With("role", "process")
	opts := func(name string) []goka.ProcessorOption {
		return []goka.ProcessorOption{
			goka.WithTopicManagerBuilder(topicManager(cfg)),
			goka.WithStorageBuilder(gokaStorage(cfg, name)),
		}
	}
	sc, err := scenario.NewProcessor(cfg.Brokers, cfg.Topics, scenario.NewMetrics(cfg.Registry), log.With("processor", "scenario"), opts("scenario")...)
	if err != nil {
		return nil, fmt.Errorf("scenario processor: %w", err)
	}
	hp, err := host.NewProcessor(cfg.Brokers, cfg.Topics, host.NewMetrics(cfg.Registry), log.With("processor", "host"), opts("host")...)
	if err != nil {
		return nil, fmt.Errorf("host processor: %w", err)
	}
	cloud, err := cloudProcessors(cfg, opts) // cloud.go
	if err != nil {
		return nil, err
	}
	procs := append([]*goka.Processor{sc, hp}, cloud...)
	if procs, err = withDiscoveryAggregates(cfg, opts, procs); err != nil { // aggregates.go
		return nil, err
	}
	if procs, err = withMembership(cfg, opts, procs); err != nil { // membership.go
		return nil, err
	}
	if procs, err = withChecks(ctx, g, cfg, opts, procs); err != nil { // checks.go
		return nil, err
	}
	for _, p := range procs {
		g.Go(func() error { return ignoreCanceled(p.Run(ctx)) })
	}
	runHeartbeatSweeps(ctx, g, cfg, hp, log) // heartbeat.go
	return func(context.Context) error {
		for _, p := range procs {
			if !p.Recovered() {
				return errors.New("processors are still recovering their tables from Kafka")
			}
		}
		return nil
	}, nil
}

// allOf passes when every check passes (nil checks: always).
func allOf(checks []func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, c := range checks {
			if err := c(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

func runSink(ctx context.Context, g *errgroup.Group, cfg Config) error {
	conn, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	sink, err := clickhouse.NewSink(clickhouse.SinkOptions{
		Seeds:         cfg.Brokers,
		KafkaOpts:     cfg.Kafka.Opts(),
		Topics:        cfg.Topics,
		Group:         cfg.Topics.Group(clickhouse.DefaultSinkGroup),
		Conn:          conn,
		Database:      cfg.Database,
		FlushInterval: cfg.SinkFlushInterval,
		Logger:        cfg.Logger.With("role", "sink"),
		Metrics:       clickhouse.NewMetrics(cfg.Registry),
	})
	if err != nil {
		conn.Close()
		return fmt.Errorf("clickhouse sink: %w", err)
	}
	g.Go(func() error {
		defer conn.Close()
		return ignoreCanceled(sink.Run(ctx))
	})
	return nil
}

func newAPI(ctx context.Context, g *errgroup.Group, cfg Config, extra map[string]http.Handler) (*api.API, error) {
	view, err := host.NewView(cfg.Brokers, cfg.Topics,
		goka.WithViewTopicManagerBuilder(topicManager(cfg)),
		goka.WithViewStorageBuilder(gokaStorage(cfg, "api-view")),
		goka.WithViewAutoReconnect())
	if err != nil {
		return nil, fmt.Errorf("host view: %w", err)
	}
	g.Go(func() error { return ignoreCanceled(view.Run(ctx)) })
	conn, err := clickhouse.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	cloud, err := cloudService(ctx, g, cfg, conn) // cloud.go
	if err != nil {
		return nil, err
	}
	tasksAPI, err := tasksService(ctx, g, cfg) // tasks.go
	if err != nil {
		return nil, err
	}
	hostsAPI, err := hostsService(ctx, cfg, host.NewReader(view)) // hosts.go
	if err != nil {
		return nil, err
	}
	hosts := host.NewReader(view)
	discovery, err := discoveryAPI(ctx, g, cfg, conn, hosts, extra) // discovery.go
	if err != nil {
		return nil, err
	}
	checksAPI, err := checksService(ctx, g, cfg, conn) // checks_api.go
	if err != nil {
		return nil, err
	}
	return api.New(api.Options{
		Hosts:    hosts,
		Store:    &store{conn: conn, db: cfg.Database},
		Keys:     cfg.UserKeys,
		Logger:   cfg.Logger.With("role", "api"),
		Registry: cfg.Registry,
		Gatherer: cfg.Registry,
		Ready: func() error {
			if !view.Recovered() {
				return errors.New("the host view is still recovering from Kafka")
			}
			return conn.Ping(ctx)
		},
		Extra:    extra,
		Services: []api.Service{cloud, tasksAPI, discovery, hostsAPI, checksAPI},
	})
}

// servePlain serves the ingest routes (if any) with /healthz, /readyz
// (ready, when not nil, must pass) and /metrics, for deployments without
// the API role.
func servePlain(ctx context.Context, lis net.Listener, reg *prometheus.Registry, routes map[string]http.Handler, ready func(context.Context) error) error {
	mux := http.NewServeMux()
	for p, h := range routes {
		mux.Handle(p, h)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("GET /readyz", readyz(ready))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
