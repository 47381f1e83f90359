package benchmarks

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config of a benchmark. Zero fields take the defaults of DefaultConfig,
// which keep `make bench` under ten minutes on a 2-core machine.
type Config struct {
	// Hosts is the simulated fleet: each host sends the four discovery
	// types of a real agent every 10 s and a heartbeat every 5 s.
	Hosts int
	// ChangeRate is the fraction of discoveries that change something.
	ChangeRate float64
	// ChangeHosts send only changed host_discoveries in the changes phase.
	ChangeHosts int
	// Concurrency bounds the fleet's requests in flight; the flood phases
	// need enough to keep both cores busy while requests wait for Kafka.
	Concurrency int
	// Runs is how many times the phases are measured; each figure is the
	// median of the runs.
	Runs int
	// FleetPhase runs the fleet at the agents' pace, with latency probes
	// and API readers; FloodPhase runs it as fast as it goes; ChangesPhase
	// floods with changed host discoveries.
	FleetPhase, FloodPhase, ChangesPhase time.Duration
	// ProbeInterval is how often a latency probe changes a probe host.
	ProbeInterval time.Duration
	// PollInterval is how often a probe looks for its change in ClickHouse
	// and through the API: the resolution of the latencies.
	PollInterval time.Duration
	// APIRate is the request rate of the API reader during the fleet
	// phase, half lists, half single hosts.
	APIRate float64
	// Partitions of every fleetstream topic.
	Partitions int32

	// Brokers of a running Kafka to use instead of starting one; it
	// should be empty: the topics are fleetstream's defaults.
	Brokers []string
	// KafkaScript starts and stops the benchmark's own broker
	// (deploy/kafka/kafka.sh) when Brokers is empty and KFake is off.
	KafkaScript string
	// KFake runs an in-process kfake cluster instead of a real broker:
	// for development, and not comparable with a real broker.
	KFake bool
	// ClickHouse is the address of a running server to use instead of
	// starting one with internal/chlocal.
	ClickHouse string
	// Binary is the fleetstream executable whose ingest, process, sink and
	// api subcommands run as separate processes. Empty runs the roles
	// inside this process (tests), where per-component CPU and memory
	// cannot be told apart.
	Binary string
	// WorkDir holds the broker's and ClickHouse's data and the roles' logs;
	// it is emptied at start.
	WorkDir string
	// OutDir receives report.md and report.png; empty writes nothing.
	OutDir string
	// ProgressInterval is the period of the progress log lines.
	ProgressInterval time.Duration
	Logger           *slog.Logger
}

// DefaultConfig is what `make bench` runs.
func DefaultConfig() Config {
	return Config{
		Hosts:            1000,
		ChangeRate:       0.01,
		ChangeHosts:      200,
		Concurrency:      256,
		Runs:             3,
		FleetPhase:       25 * time.Second,
		FloodPhase:       12 * time.Second,
		ChangesPhase:     8 * time.Second,
		ProbeInterval:    250 * time.Millisecond,
		PollInterval:     20 * time.Millisecond,
		APIRate:          40,
		Partitions:       8,
		KafkaScript:      "deploy/kafka/kafka.sh",
		WorkDir:          ".data/bench",
		OutDir:           "benchmarks/results",
		ProgressInterval: 5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.Hosts, d.Hosts)
	setInt(&c.ChangeHosts, d.ChangeHosts)
	setInt(&c.Concurrency, d.Concurrency)
	setInt(&c.Runs, d.Runs)
	setDur(&c.FleetPhase, d.FleetPhase)
	setDur(&c.FloodPhase, d.FloodPhase)
	setDur(&c.ChangesPhase, d.ChangesPhase)
	setDur(&c.ProbeInterval, d.ProbeInterval)
	setDur(&c.PollInterval, d.PollInterval)
	setDur(&c.ProgressInterval, d.ProgressInterval)
	if c.APIRate == 0 {
		c.APIRate = d.APIRate
	}
	if c.Partitions == 0 {
		c.Partitions = d.Partitions
	}
	if c.KafkaScript == "" {
		c.KafkaScript = d.KafkaScript
	}
	if c.WorkDir == "" {
		c.WorkDir = d.WorkDir
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Hosts < 0 || c.ChangeHosts < 0 || c.Concurrency < 0 || c.Runs < 0 || c.Partitions < 0:
		return c, errors.New("hosts, change hosts, concurrency, runs and partitions must be positive")
	case c.ChangeRate < 0 || c.ChangeRate > 1:
		return c, fmt.Errorf("change rate %v: give a fraction between 0 and 1", c.ChangeRate)
	case c.FleetPhase < 0 || c.FloodPhase < 0 || c.ChangesPhase < 0 || c.ProbeInterval < 0 || c.PollInterval < 0 || c.APIRate < 0:
		return c, errors.New("phase durations, intervals and the API rate must be positive")
	case c.KFake && len(c.Brokers) > 0:
		return c, errors.New("choose kfake or brokers, not both")
	}
	return c, nil
}
