package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/fleetstream/fleetstream/benchmarks"
)

func benchCmd() *cobra.Command {
	cfg := benchmarks.DefaultConfig()
	var inProcess bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmark the whole pipeline with a simulated fleet on a real Kafka and ClickHouse (see benchmarks/README.md)",
		Long: `Starts a Kafka broker (deploy/kafka/kafka.sh, or --brokers, or --kfake), a ClickHouse
(internal/chlocal, or --clickhouse) and the ingest, process, sink and api roles as separate
processes, then measures --runs runs of three phases: a simulated fleet at the agents' pace
(with latency probes and an API reader), the fleet as fast as the pipeline takes it, and a
flood of changed host discoveries. Writes report.md and report.png into --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !inProcess {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find this executable to run the roles: %w (or pass --in-process)", err)
				}
				cfg.Binary = exe
			}
			cfg.Logger = slog.Default()
			rep, err := benchmarks.Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if cfg.OutDir == "" {
				fmt.Fprint(cmd.OutOrStdout(), rep.Markdown(""))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&cfg.Hosts, "hosts", cfg.Hosts, "simulated hosts, each sending 4 discovery types every 10 s and a heartbeat every 5 s")
	fs.Float64Var(&cfg.ChangeRate, "change-rate", cfg.ChangeRate, "fraction of discoveries that change something")
	fs.IntVar(&cfg.ChangeHosts, "change-hosts", cfg.ChangeHosts, "hosts sending only changed host discoveries in the changes phase")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "requests in flight from the simulated fleet")
	fs.IntVar(&cfg.Runs, "runs", cfg.Runs, "runs of the phases; every figure is their median")
	fs.DurationVar(&cfg.FleetPhase, "fleet-phase", cfg.FleetPhase, "duration of the phase at the agents' pace")
	fs.DurationVar(&cfg.FloodPhase, "flood-phase", cfg.FloodPhase, "duration of the flood phase")
	fs.DurationVar(&cfg.ChangesPhase, "changes-phase", cfg.ChangesPhase, "duration of the changes phase")
	fs.DurationVar(&cfg.ProbeInterval, "probe-interval", cfg.ProbeInterval, "time between latency probes")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", cfg.PollInterval, "how often probes look for their change (the latencies' resolution)")
	fs.Float64Var(&cfg.APIRate, "api-rate", cfg.APIRate, "API requests per second during the phase at the agents' pace")
	fs.Int32Var(&cfg.Partitions, "partitions", cfg.Partitions, "partitions of every fleetstream topic")
	fs.StringSliceVar(&cfg.Brokers, "brokers", nil, "use this (empty) Kafka instead of starting one")
	fs.StringVar(&cfg.KafkaScript, "kafka-script", cfg.KafkaScript, "script that starts and stops the benchmark's own broker")
	fs.BoolVar(&cfg.KFake, "kfake", false, "use an in-process kfake instead of a real broker (development only: not comparable)")
	fs.StringVar(&cfg.ClickHouse, "clickhouse", "", "use this ClickHouse (host:9000) instead of starting one")
	fs.BoolVar(&inProcess, "in-process", false, "run the roles inside this process (CPU and memory per role then cannot be told apart)")
	fs.StringVar(&cfg.WorkDir, "work-dir", cfg.WorkDir, "data of the benchmark's broker and ClickHouse, and the roles' logs")
	fs.StringVar(&cfg.OutDir, "out", cfg.OutDir, "directory of report.md and report.png; empty prints the report")
	fs.DurationVar(&cfg.ProgressInterval, "progress-interval", cfg.ProgressInterval, "period of the progress log lines")
	return cmd
}
