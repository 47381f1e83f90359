package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/agent"
	"github.com/fleetstream/fleetstream/connectors/agent/sim"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/internal/chlocal"
	"github.com/fleetstream/fleetstream/internal/system"
)

type devOptions struct {
	dataDir    string
	simulate   int
	changeRate float64
	simEvery   time.Duration
	noAgent    bool
	// sets are the task types the dev worker runs, as in `collect`.
	sets []handlerSet
}

func devCmd() *cobra.Command {
	s := &settings{}
	o := &devOptions{sets: taskHandlerSets()}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process: embedded Kafka, local ClickHouse, every role, this machine's agent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), s, o, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	s.kafkaFlags(fs)
	s.clickhouseFlags(fs)
	s.ingestFlags(fs)
	s.serverFlags(fs, "127.0.0.1:8080")
	heartbeatFlags(fs, &s.heartbeat)
	fs.StringVar(&o.dataDir, "data-dir", ".data", "where the embedded Kafka and the local ClickHouse keep their data")
	fs.IntVar(&o.simulate, "simulate", 0, "add N simulated hosts, publishing like real agents")
	fs.Float64Var(&o.changeRate, "sim-change-rate", 0.01, "fraction of simulated discoveries that change something")
	fs.DurationVar(&o.simEvery, "sim-discovery-interval", agent.DefaultDiscoveryInterval, "period of each simulated host's discovery (heartbeats at half of it), to load the pipeline harder")
	fs.BoolVar(&o.noAgent, "no-agent", false, "do not run the agent for this machine")
	registerSetFlags(fs, o.sets)
	return cmd
}

func runDev(ctx context.Context, s *settings, o *devOptions, out io.Writer) error {
	log := slog.Default()
	if len(s.brokers) == 0 {
		dir := filepath.Join(o.dataDir, "kafka")
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(dir))
		if err != nil {
			return fmt.Errorf("start embedded Kafka in %s: %w (remove the directory to start afresh)", dir, err)
		}
		defer c.Close()
		s.brokers = c.ListenAddrs()
		log.Info("embedded Kafka started", "brokers", s.brokers, "data", dir)
	}
	if s.chAddr == "" {
		srv, err := startLocalClickHouse(ctx, filepath.Join(o.dataDir, "clickhouse"), log)
		if err != nil {
			return err
		}
		defer srv.Stop()
		s.chAddr = srv.Addr()
	}
	if s.agentSecret == "" {
		s.agentSecret = rand.Text()
	}
	userKey, err := api.GenerateKey("dev", api.ScopeRead, api.ScopeWrite)
	if err != nil {
		return err
	}
	s.apiKeys = []string{userKey.Spec()}
	cfg, err := s.config(system.NewRegistry())
	if err != nil {
		return err
	}
	if err := system.Prepare(ctx, cfg, true, true); err != nil {
		return err
	}
	// The task worker's handlers, so tasks submitted through the API run;
	// their metrics are on cfg.Registry, which the API serves.
	handlers, err := buildHandlers(o.sets, cfg.Registry, log.With("role", "collect"))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (pass --listen 127.0.0.1:0 for any free port)", s.listen, err)
	}
	base := "http://" + lis.Addr().String()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return system.Run(ctx, cfg, system.All(), lis) })
	g.Go(func() error {
		return system.RunCollect(ctx, cfg, system.CollectOptions{Worker: tasks.WorkerOptions{Handlers: handlers}}, nil)
	})

	var machine *agent.Agent
	if !o.noAgent {
		id, err := agent.MachineAgentID("/")
		if err != nil {
			return fmt.Errorf("agent id of this machine: %w (or run with --no-agent)", err)
		}
		machine, err = agent.New(agent.Config{Server: base, AgentID: id, APIKey: cfg.AgentKeys.KeyFor(id), Logger: log.With("role", "agent")})
		if err != nil {
			return err
		}
		g.Go(func() error { return machine.Run(ctx) })
	}
	if o.simulate > 0 {
		fleet, err := sim.New(sim.Config{
			N: o.simulate, Seed: "dev", Server: base, KeyFor: cfg.AgentKeys.KeyFor,
			DiscoveryTypes: sim.AgentDiscoveryTypes(), ChangeRate: o.changeRate, DiscoveryInterval: o.simEvery, HeartbeatInterval: o.simEvery / 2, ReportInterval: 10 * time.Second, Logger: log.With("role", "sim"),
		})
		if err != nil {
			return err
		}
		g.Go(func() error { return fleet.Run(ctx) })
	}
	g.Go(func() error {
		printBanner(ctx, out, base, userKey.Secret, machine, s, o)
		return nil
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("fleetstream dev stopped")
	return err
}

func startLocalClickHouse(ctx context.Context, dir string, log *slog.Logger) (*chlocal.Server, error) {
	bin, err := chlocal.EnsureInstalled(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("%w (or pass --clickhouse host:9000)", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	srv, err := chlocal.Start(ctx, chlocal.Options{Dir: dir, Binary: bin, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("start local ClickHouse in %s: %w", dir, err)
	}
	log.Info("local ClickHouse started", "addr", srv.Addr(), "data", dir)
	return srv, nil
}

// printBanner waits until this machine is visible through the API, so the
// curl it prints answers at once, then says how to use the session.
func printBanner(ctx context.Context, out io.Writer, base, key string, machine *agent.Agent, s *settings, o *devOptions) {
	target := base + "/api/v1/hosts"
	if machine != nil {
		target += "/" + machine.ID()
		waitFor(ctx, target, key, 2*time.Minute)
	}
	if ctx.Err() != nil {
		return
	}
	fmt.Fprintf(out, `
fleetstream dev is running (Ctrl-C stops everything)
  API + ingest   %s   (OpenAPI: %s/openapi.json, metrics: %s/metrics)
  API key        %s
  Kafka          %v
  ClickHouse     %s (database %s)
  data           %s
  simulated      %d hosts

This machine as a host:
  curl -s -H 'Authorization: Bearer %s' %s

All hosts:
  curl -s -H 'Authorization: Bearer %s' '%s/api/v1/hosts?page_size=20'

`, base, base, base, key, s.brokers, s.chAddr, s.chDatabase, o.dataDir, o.simulate, key, target, key, base)
}

func waitFor(ctx context.Context, url, key string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}
