package main

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fleetstream/fleetstream/connectors/collectors/install"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/internal/system"
)

// handlerSet is a group of task types `fleetstream collect` runs: flags
// (optional) registers its flags, build makes its handlers once they are
// parsed.
type handlerSet struct {
	flags func(*pflag.FlagSet)
	build func(reg prometheus.Registerer, log *slog.Logger) (map[string]tasks.Handler, error)
}

// taskHandlerSets are the task types of `fleetstream collect` (and of the
// worker in `fleetstream dev`): the no-op task and the collectors'
// (aws.collect_all, vsphere.collect_kind, ...).
func taskHandlerSets() []handlerSet {
	cc := &install.Config{}
	return []handlerSet{
		{build: func(prometheus.Registerer, *slog.Logger) (map[string]tasks.Handler, error) {
			return map[string]tasks.Handler{tasks.NoopType: tasks.Noop}, nil
		}},
		{flags: cc.RegisterFlags, build: cc.Build},
	}
}

// registerSetFlags adds the flags of every set to fs.
func registerSetFlags(fs *pflag.FlagSet, sets []handlerSet) {
	for _, set := range sets {
		if set.flags != nil {
			set.flags(fs)
		}
	}
}

// buildHandlers merges the sets' handlers; one type in two sets is an error.
func buildHandlers(sets []handlerSet, reg prometheus.Registerer, log *slog.Logger) (map[string]tasks.Handler, error) {
	all := map[string]tasks.Handler{}
	for _, set := range sets {
		hs, err := set.build(reg, log)
		if err != nil {
			return nil, err
		}
		for typ, h := range hs {
			if _, dup := all[typ]; dup {
				return nil, fmt.Errorf("task type %q is registered twice", typ)
			}
			all[typ] = h
		}
	}
	return all, nil
}

type collectOptions struct {
	worker   tasks.WorkerOptions
	policy   string
	schedule string
}

func collectCmd() *cobra.Command {
	s := &settings{}
	o := &collectOptions{}
	sets := taskHandlerSets()
	cmd := &cobra.Command{
		Use:   "collect",
		Short: "Run collection tasks from the task queue (a worker), and the scheduler with --schedule",
		Long: `collect runs tasks from fleet.tasks.{high,normal,low}.v1 with a bounded pool,
retries failures with backoff through fleet.tasks.retry.v1 and dead-letters
hopeless ones to fleet.dlq.v1. Run several: they share the work. With
--schedule, each also takes part in electing the one scheduler that fires
the file's cron jobs. /metrics and /healthz are served on --listen.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireBrokers(s); err != nil {
				return err
			}
			policy, err := tasks.ParsePolicy(o.policy)
			if err != nil {
				return fmt.Errorf("--priority: %w", err)
			}
			opts := system.CollectOptions{Worker: o.worker}
			opts.Worker.Policy = policy
			if o.schedule != "" {
				if opts.Jobs, err = tasks.LoadJobs(o.schedule); err != nil {
					return err
				}
			}
			cfg, err := s.config(system.NewRegistry())
			if err != nil {
				return err
			}
			if opts.Worker.Handlers, err = buildHandlers(sets, cfg.Registry, cfg.Logger.With("role", "collect")); err != nil {
				return err
			}
			lis, err := net.Listen("tcp", s.listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (choose another with --listen)", s.listen, err)
			}
			cfg.Logger.Info("starting", "roles", "collect", "listen", lis.Addr().String(), "brokers", s.brokers, "jobs", len(opts.Jobs))
			return system.RunCollect(cmd.Context(), cfg, opts, lis)
		},
	}
	fs := cmd.Flags()
	s.kafkaFlags(fs)
	fs.StringVar(&s.listen, "listen", ":8081", "listen address of /metrics, /healthz and /readyz")
	w := &o.worker
	fs.IntVar(&w.Concurrency, "concurrency", 16, "tasks run at once by this worker")
	fs.StringVar(&o.policy, "priority", "strict", "queue priority: strict (high before normal before low), weighted (6,3,1) or weighted:HIGH,NORMAL,LOW")
	fs.Uint32Var(&w.MaxAttempts, "max-attempts", 5, "attempts of a task whose max_attempts is 0 before it is dead-lettered")
	fs.DurationVar(&w.RetryBase, "retry-base", time.Second, "backoff before the second attempt; doubles per attempt, half of it jitter")
	fs.DurationVar(&w.RetryMax, "retry-max", 10*time.Minute, "longest backoff between attempts")
	fs.DurationVar(&w.TaskTimeout, "task-timeout", 15*time.Minute, "longest attempt; a timed-out attempt is retried (negative: no limit)")
	fs.DurationVar(&w.SessionTimeout, "session-timeout", 45*time.Second, "how long Kafka waits for a silent worker before its tasks go to others")
	fs.DurationVar(&w.ShutdownGrace, "shutdown-grace", 30*time.Second, "how long running tasks may finish at shutdown before they are left to other workers")
	fs.StringVar(&w.ID, "worker-id", "", "name of this worker in task statuses (default host-pid)")
	fs.StringVar(&o.schedule, "schedule", "", "scheduler configuration (YAML or JSON: jobs with name, spec, type, payload, priority); empty runs no scheduler")
	registerSetFlags(fs, sets)
	return cmd
}
