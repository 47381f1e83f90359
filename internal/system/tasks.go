package system

import (
	"context"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/internal/kafka"
)

// tasksService is the API's TasksService: the task status table, read
// into memory in g, a queue to submit, cancel and requeue through, and an
// admin client for the queues' lag.
func tasksService(ctx context.Context, g *errgroup.Group, cfg Config) (api.Service, error) {
	log := cfg.Logger.With("role", "api", "service", "tasks")
	client, err := kafka.NewClient(cfg.Brokers, cfg.Kafka.Opts()...)
	if err != nil {
		return api.Service{}, fmt.Errorf("tasks API kafka client: %w", err)
	}
	context.AfterFunc(ctx, client.Close)
	store, err := tasks.NewStatusStore(cfg.Brokers, cfg.Topics, log, cfg.Kafka.Opts()...)
	if err != nil {
		return api.Service{}, err
	}
	g.Go(func() error { return store.Run(ctx) })
	srv := tasks.NewServer(store, tasks.NewQueue(client, cfg.Topics, "api"), kadm.NewClient(client), cfg.Topics, "", log)
	return srv.APIService(), nil
}

// CollectOptions configure RunCollect.
type CollectOptions struct {
	// Worker tunes the task worker; Brokers, Topics, KafkaOptions, Logger
	// and Metrics come from the Config. Worker.Handlers is required.
	Worker tasks.WorkerOptions
	// Jobs, when any, also run a scheduler replica (only the elected
	// leader among all replicas fires).
	Jobs []tasks.Job
}

// RunCollect runs `fleetstream collect`: a task worker, and a scheduler
// when jobs are configured, until ctx ends. lis, when not nil, serves
// /healthz, /readyz and /metrics; nil serves nothing, for a process whose
// other roles serve cfg.Registry already (dev).
func RunCollect(ctx context.Context, cfg Config, opts CollectOptions, lis net.Listener) error {
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	if err := cfg.Kafka.Check(ctx, cfg.Brokers); err != nil {
		return err
	}
	log := cfg.Logger.With("role", "collect")
	metrics := tasks.NewMetrics(cfg.Registry)
	w := opts.Worker
	w.Brokers, w.Topics, w.KafkaOptions, w.Logger, w.Metrics = cfg.Brokers, cfg.Topics, cfg.Kafka.Opts(), log, metrics
	worker, err := tasks.NewWorker(w)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return worker.Run(ctx) })
	if len(opts.Jobs) > 0 {
		sched, err := tasks.NewScheduler(tasks.SchedulerOptions{
			Brokers: cfg.Brokers, Topics: cfg.Topics, Jobs: opts.Jobs, ID: w.ID,
			KafkaOptions: cfg.Kafka.Opts(), Logger: log, Metrics: metrics,
		})
		if err != nil {
			return err
		}
		g.Go(func() error { return sched.Run(ctx) })
	}
	if lis != nil {
		g.Go(func() error { return servePlain(ctx, lis, cfg.Registry, nil, nil) })
	}
	return g.Wait()
}
