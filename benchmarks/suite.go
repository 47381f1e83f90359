package benchmarks

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/agent"
	"github.com/fleetstream/fleetstream/connectors/agent/sim"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/system"
)

// Database is the ClickHouse database the benchmark's pipeline writes.
const Database = "fleetstream_bench"

// probeHosts is the number of probe hosts: more than the probes in flight
// at once (latency / ProbeInterval), so a probe never waits for a host.
const probeHosts = 32

// idleTimeout bounds the wait for the pipeline to catch up after a phase.
const idleTimeout = 5 * time.Minute

// suite is one benchmark: the infrastructure, the roles, the fleets and
// the instruments.
type suite struct {
	cfg     Config
	broker  *broker
	ch      *clickhouseServer
	topics  kafka.Topics
	roles   map[string]*role
	admin   *kadm.Client
	conn    driver.Conn
	reader  *reader
	monitor *monitor
	api     *apiClient

	fleet, probes, changes *sim.Fleet
	prober                 *prober
	base                   Counters // before any load
}

// Run runs the benchmark: it starts a broker (or uses cfg.Brokers), a
// ClickHouse and the four roles, registers the fleets, measures cfg.Runs
// runs of the three phases, stops everything it started, and returns the
// report, written to cfg.OutDir as report.md and report.png when set.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	began := time.Now()
	s := &suite{cfg: cfg, roles: map[string]*role{}}
	defer s.close()
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	rep := &Report{Started: began, Config: cfg, Env: s.environment(ctx)}
	monCtx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	go s.monitor.run(monCtx)

	if err := s.warmUp(ctx); err != nil {
		return nil, err
	}
	for i := range cfg.Runs {
		cfg.Logger.Info("run", "run", i+1, "of", cfg.Runs)
		run, err := s.run(ctx, i+1)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		rep.Runs = append(rep.Runs, run)
	}
	stopMonitor()
	rep.Series = s.monitor.points()
	rep.Took = time.Since(began)
	if cfg.OutDir != "" {
		if err := rep.Write(cfg.OutDir); err != nil {
			return rep, err
		}
		cfg.Logger.Info("report written", "dir", cfg.OutDir, "took", rep.Took.Round(time.Second))
	}
	return rep, nil
}

// start brings up the broker, ClickHouse, the topics and tables, and the
// roles, and builds the fleets and instruments.
func (s *suite) start(ctx context.Context) error {
	cfg := s.cfg
	logs := filepath.Join(cfg.WorkDir, "logs")
	for _, d := range []string{logs, filepath.Join(cfg.WorkDir, "clickhouse")} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	var err error
	if s.broker, err = startBroker(ctx, cfg); err != nil {
		return err
	}
	if s.ch, err = startClickHouse(ctx, cfg); err != nil {
		return err
	}
	s.topics = kafka.DefaultTopics()
	s.topics.Partitions = cfg.Partitions
	userKey, err := api.GenerateKey("bench", api.ScopeRead)
	if err != nil {
		return err
	}
	settings := pipelineSettings{
		brokers: s.broker.seeds, partitions: cfg.Partitions, chAddr: s.ch.addr, database: Database,
		agentKeys: ingest.AgentKeys{Secret: []byte(rand.Text())}, userKey: userKey,
	}
	prep := system.Config{Brokers: s.broker.seeds, Topics: s.topics, Replication: 1,
		ClickHouse: clickhouse.Options{Addr: s.ch.addr}, Database: Database, Logger: discard}
	if err := system.Prepare(ctx, prep, true, true); err != nil {
		return fmt.Errorf("create the topics and tables: %w", err)
	}
	if cfg.Binary == "" {
		r, err := startInProcess(settings)
		if err != nil {
			return err
		}
		for _, name := range roleNames {
			s.roles[name] = r
		}
		cfg.Logger.Info("roles started in this process", "addr", r.base)
	}
	// Consumers before the producer, so nothing waits on a missing reader.
	for _, name := range []string{compProcess, compSink, compAPI, compIngest} {
		if s.roles[name] != nil {
			continue
		}
		r, err := startRole(cfg.Binary, logs, name, settings)
		if err != nil {
			return err
		}
		s.roles[name] = r
		cfg.Logger.Info("role started", "role", name, "addr", r.base, "pid", r.pid)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.broker.seeds...))
	if err != nil {
		return err
	}
	s.admin = kadm.NewClient(cl)
	if s.conn, err = clickhouse.Open(ctx, clickhouse.Options{Addr: s.ch.addr}); err != nil {
		return err
	}
	s.reader = &reader{client: &http.Client{Timeout: 5 * time.Second}, roles: s.roles, admin: s.admin, events: s.topics.Events}
	if s.base, err = s.reader.read(ctx); err != nil {
		return err
	}
	pids := map[string]int{compBench: os.Getpid(), compKafka: s.broker.pid, compClickHouse: s.ch.pid}
	for name, r := range s.roles {
		pids[name] = r.pid
	}
	order := append(append([]string{}, roleNames...), compKafka, compClickHouse, compBench)
	s.monitor = &monitor{reader: s.reader, procs: groupProcesses(order, pids), log: cfg.Logger, progress: cfg.ProgressInterval}
	return s.buildFleets(settings)
}

func (s *suite) buildFleets(settings pipelineSettings) error {
	cfg := s.cfg
	ingestURL := s.roles[compIngest].base
	fleetLog := cfg.Logger.With("component", "fleet")
	var err error
	s.fleet, err = sim.New(sim.Config{
		N: cfg.Hosts, Seed: "bench", Server: ingestURL, KeyFor: settings.agentKeys.KeyFor,
		ChangeRate: cfg.ChangeRate, DiscoveryTypes: sim.AgentDiscoveryTypes(), Concurrency: cfg.Concurrency,
		ReportInterval: time.Hour, Logger: fleetLog,
	})
	if err != nil {
		return err
	}
	s.changes, err = sim.New(sim.Config{
		N: cfg.ChangeHosts, Seed: "bench-changes", Server: ingestURL, KeyFor: settings.agentKeys.KeyFor,
		ChangeRate: 1, Concurrency: cfg.Concurrency, ReportInterval: time.Hour, Logger: fleetLog,
	})
	if err != nil {
		return err
	}
	s.probes, err = sim.New(sim.Config{N: probeHosts, Seed: "bench-probe", Server: ingestURL, KeyFor: settings.agentKeys.KeyFor, Logger: fleetLog})
	if err != nil {
		return err
	}
	pub, err := agent.NewPublisher(agent.PublisherConfig{Server: ingestURL})
	if err != nil {
		return err
	}
	s.api = newAPIClient(s.roles[compAPI].base, settings.userKey.Secret, 64)
	s.prober = &prober{hosts: s.probes, pub: pub, keys: settings.agentKeys, ch: s.conn, db: Database,
		api: s.api, every: cfg.ProbeInterval, poll: cfg.PollInterval}
	return nil
}

// close stops what start started, the roles first.
func (s *suite) close() {
	log := s.cfg.Logger
	if s.conn != nil {
		s.conn.Close()
	}
	for _, name := range []string{compIngest, compAPI, compSink, compProcess} {
		if r := s.roles[name]; r != nil {
			if err := r.stop(); err != nil {
				log.Warn("stop role", "role", name, "err", err)
			}
		}
	}
	if s.ch != nil {
		if err := s.ch.stop(); err != nil {
			log.Warn("stop ClickHouse", "err", err)
		}
	}
	if s.broker != nil {
		if err := s.broker.stop(); err != nil {
			log.Warn("stop Kafka", "err", err)
		}
	}
}

// warmUpFlood is how long (at most a flood phase) the fleet floods the
// pipeline, unmeasured, before the first run: the broker's JVM compiles its hot paths and every
// process grows its heap, which would otherwise count against run 1.
const warmUpFlood = 5 * time.Second

// warmUp registers every host of every fleet, floods the pipeline for a
// moment and waits for it to settle: the phases then measure a known fleet
// on warm processes, as in production.
func (s *suite) warmUp(ctx context.Context) error {
	log := s.cfg.Logger
	began := time.Now()
	log.Info("registering the fleets", "hosts", s.cfg.Hosts, "change_hosts", s.cfg.ChangeHosts, "probe_hosts", probeHosts)
	for _, f := range []*sim.Fleet{s.fleet, s.changes, s.probes} {
		if err := f.Round(ctx); err != nil {
			return fmt.Errorf("register the fleet: %w", err)
		}
	}
	d := min(warmUpFlood, s.cfg.FloodPhase)
	log.Info("warming up: flooding the pipeline, unmeasured", "duration", d)
	flood, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := s.fleet.RunAt(flood, floodPace); err != nil {
		return err
	}
	if err := s.waitIdle(ctx); err != nil {
		return err
	}
	log.Info("fleets registered, pipeline warm", "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// waitIdle waits until the pipeline has handled everything so far: every
// record ingested processed, every consumer group without lag, every event
// in ClickHouse.
func (s *suite) waitIdle(ctx context.Context) error {
	began := time.Now()
	var why error
	for time.Since(began) < idleTimeout {
		c, err := s.reader.read(ctx)
		switch {
		case err != nil:
			why = err
		case !c.processedSince(s.base):
			why = fmt.Errorf("%.0f records not processed", c.accepted()-s.base.accepted()-(c.Processed-s.base.Processed))
		case c.SinkEvents-s.base.SinkEvents < c.Events-s.base.Events:
			why = fmt.Errorf("%.0f events not in ClickHouse", c.Events-s.base.Events-(c.SinkEvents-s.base.SinkEvents))
		default:
			why = s.groupsWithoutLag(ctx)
		}
		if why == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the pipeline did not catch up within %s: %w (see the role logs in %s)", idleTimeout, why, filepath.Join(s.cfg.WorkDir, "logs"))
}

// groupsWithoutLag is nil when every consumer group committed everything.
func (s *suite) groupsWithoutLag(ctx context.Context) error {
	listed, err := s.admin.ListGroups(ctx)
	if err != nil {
		return err
	}
	lags, err := s.admin.Lag(ctx, listed.Groups()...)
	if err != nil {
		return err
	}
	for name, l := range lags {
		if err := l.Error(); err != nil {
			return fmt.Errorf("group %s: %w", name, err)
		}
		if total := l.Lag.Total(); total > 0 {
			return fmt.Errorf("group %s lags %d records", name, total)
		}
	}
	return nil
}

// waitFor polls the counters until done holds and returns the reading
// that satisfied it.
func (s *suite) waitFor(ctx context.Context, what string, done func(Counters) bool) (Counters, error) {
	deadline := time.Now().Add(idleTimeout)
	for {
		c, err := s.reader.read(ctx)
		if err == nil && done(c) {
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("%s: not done within %s (last error: %v)", what, idleTimeout, err)
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// run measures the three phases once.
func (s *suite) run(ctx context.Context, n int) (RunResult, error) {
	var r RunResult
	var err error
	if r.Fleet, err = s.fleetPhase(ctx, n); err != nil {
		return r, fmt.Errorf("fleet phase: %w", err)
	}
	if r.Flood, err = s.floodPhase(ctx, n); err != nil {
		return r, fmt.Errorf("flood phase: %w", err)
	}
	if r.Changes, err = s.changesPhase(ctx, n); err != nil {
		return r, fmt.Errorf("changes phase: %w", err)
	}
	return r, nil
}

// agentPace is a real agent's.
var agentPace = sim.Pace{DiscoveryInterval: agent.DefaultDiscoveryInterval, HeartbeatInterval: agent.DefaultHeartbeatInterval}

// fleetPhase runs the fleet at the agents' pace with the latency probes
// and the API reader.
func (s *suite) fleetPhase(ctx context.Context, n int) (FleetResult, error) {
	log := s.cfg.Logger.With("run", n, "phase", "fleet")
	log.Info("phase started: the fleet at the agents' pace, latency probes, API reader",
		"hosts", s.cfg.Hosts, "duration", s.cfg.FleetPhase, "api_rate", s.cfg.APIRate)
	c0, err := s.reader.read(ctx)
	if err != nil {
		return FleetResult{}, err
	}
	mk := s.monitor.begin(fmt.Sprintf("fleet #%d", n))
	phase, cancel := context.WithTimeout(ctx, s.cfg.FleetPhase)
	defer cancel()
	var (
		probes probeResult
		reads  apiResult
		g      errgroup.Group
	)
	ids := make([]string, s.fleet.Len())
	for i := range ids {
		ids[i] = s.fleet.AgentID(i)
	}
	g.Go(func() error { probes = s.prober.run(phase); return nil })
	g.Go(func() error {
		reads = (&apiLoad{api: s.api, rate: s.cfg.APIRate, ids: ids, limit: 32}).run(phase)
		return nil
	})
	if err := s.fleet.RunAt(phase, agentPace); err != nil {
		return FleetResult{}, err
	}
	c1, err := s.reader.read(ctx)
	if err != nil {
		return FleetResult{}, err
	}
	caughtUp, err := s.waitFor(ctx, "process the fleet phase", func(c Counters) bool { return c.processedSince(s.base) })
	if err != nil {
		return FleetResult{}, err
	}
	usage := s.monitor.end(mk)
	_ = g.Wait()
	if err := s.waitIdle(ctx); err != nil {
		return FleetResult{}, err
	}
	dt := c1.At.Sub(c0.At)
	res := FleetResult{
		Seconds:           dt.Seconds(),
		DiscoveriesPerSec: rate(c1.Discoveries-c0.Discoveries, dt),
		HeartbeatsPerSec:  rate(c1.Heartbeats-c0.Heartbeats, dt),
		ChangedPerSec:     rate(c1.Changed-c0.Changed, dt),
		SinkRowsPerSec:    rate(c1.SinkRows-c0.SinkRows, dt),
		CheckEvalsPerSec:  rate(c1.CheckEvaluations-c0.CheckEvaluations, dt),
		ToClickHouse:      probes.ToClickHouse.Summary(),
		ToAPI:             probes.ToAPI.Summary(),
		ProbesLost:        probes.Lost,
		ProbesFailed:      probes.Failed,
		APIList:           reads.List.Summary(),
		APIGet:            reads.Get.Summary(),
		APIAll:            append(append(Latencies{}, reads.List...), reads.Get...).Summary(),
		APIErrors:         reads.Errors,
		APISkipped:        reads.Skipped,
		Backlog:           (c1.accepted() - s.base.accepted()) - (c1.Processed - s.base.Processed),
		CaughtUpSeconds:   caughtUp.At.Sub(c1.At).Seconds(),
		Usage:             usage,
		latencyCH:         probes.ToClickHouse,
		latencyAPI:        probes.ToAPI,
	}
	log.Info("phase done", "discoveries_per_sec", round(res.DiscoveriesPerSec), "changed_per_sec", round(res.ChangedPerSec),
		"ingest_to_clickhouse_p50_ms", round(res.ToClickHouse.P50), "ingest_to_clickhouse_p99_ms", round(res.ToClickHouse.P99),
		"ingest_to_api_p50_ms", round(res.ToAPI.P50), "ingest_to_api_p99_ms", round(res.ToAPI.P99),
		"api_p99_ms", round(res.APIAll.P99), "probes", res.ToClickHouse.N, "probes_lost", res.ProbesLost, "backlog_at_stop", res.Backlog)
	return res, nil
}

// floodPace makes every call due at once: the fleet sends as fast as its
// workers get answers.
var floodPace = sim.Pace{DiscoveryInterval: time.Millisecond, HeartbeatInterval: time.Millisecond / 2}

// floodPhase runs the fleet as fast as it goes and times the pipeline
// until scenario detection has processed everything ingested.
func (s *suite) floodPhase(ctx context.Context, n int) (FloodResult, error) {
	log := s.cfg.Logger.With("run", n, "phase", "flood")
	log.Info("phase started: the fleet as fast as the pipeline takes it", "duration", s.cfg.FloodPhase, "concurrency", s.cfg.Concurrency)
	from, err := endOffsets(ctx, s.admin, s.topics.Discoveries)
	if err != nil {
		return FloodResult{}, err
	}
	c0, err := s.reader.read(ctx)
	if err != nil {
		return FloodResult{}, err
	}
	mk := s.monitor.begin(fmt.Sprintf("flood #%d", n))
	phase, cancel := context.WithTimeout(ctx, s.cfg.FloodPhase)
	defer cancel()
	if err := s.fleet.RunAt(phase, floodPace); err != nil {
		return FloodResult{}, err
	}
	stopped := time.Now()
	c1, err := s.waitFor(ctx, "process the flood", func(c Counters) bool { return c.processedSince(c0) })
	if err != nil {
		return FloodResult{}, err
	}
	usage := s.monitor.end(mk)
	if err := s.waitIdle(ctx); err != nil {
		return FloodResult{}, err
	}
	to, err := endOffsets(ctx, s.admin, s.topics.Discoveries)
	if err != nil {
		return FloodResult{}, err
	}
	pipeline := c1.At.Sub(c0.At)
	res := FloodResult{
		Seconds:             stopped.Sub(c0.At).Seconds(),
		PipelineSeconds:     pipeline.Seconds(),
		Records:             c1.accepted() - c0.accepted(),
		Discoveries:         c1.Discoveries - c0.Discoveries,
		RecordsPerSec:       rate(c1.accepted()-c0.accepted(), pipeline),
		DiscoveriesPerSec:   rate(c1.Discoveries-c0.Discoveries, pipeline),
		IngestRecordsPerSec: rate(c1.accepted()-c0.accepted(), stopped.Sub(c0.At)),
		Usage:               usage,
	}
	if res.Raw, err = s.raw(ctx, fmt.Sprintf("flood-%d", n), from, to); err != nil {
		return res, err
	}
	res.Ratio = res.RecordsPerSec / res.Raw.PerSec
	log.Info("phase done", "discoveries_per_sec", round(res.DiscoveriesPerSec), "records_per_sec", round(res.RecordsPerSec),
		"raw_kafka_records_per_sec", round(res.Raw.PerSec), "ratio", fmt.Sprintf("%.4f", res.Ratio))
	return res, nil
}

// changesPhase floods with changed host discoveries and times them until
// their events are in ClickHouse.
func (s *suite) changesPhase(ctx context.Context, n int) (ChangesResult, error) {
	log := s.cfg.Logger.With("run", n, "phase", "changes")
	log.Info("phase started: changed host discoveries as fast as the pipeline takes them", "hosts", s.cfg.ChangeHosts, "duration", s.cfg.ChangesPhase)
	from, err := endOffsets(ctx, s.admin, s.topics.Discoveries)
	if err != nil {
		return ChangesResult{}, err
	}
	c0, err := s.reader.read(ctx)
	if err != nil {
		return ChangesResult{}, err
	}
	mk := s.monitor.begin(fmt.Sprintf("changes #%d", n))
	phase, cancel := context.WithTimeout(ctx, s.cfg.ChangesPhase)
	defer cancel()
	// Heartbeats a day apart: only the first host sends one, at the start.
	if err := s.changes.RunAt(phase, sim.Pace{DiscoveryInterval: time.Millisecond, HeartbeatInterval: 24 * time.Hour}); err != nil {
		return ChangesResult{}, err
	}
	stopped := time.Now()
	c1, err := s.waitFor(ctx, "write the changes to ClickHouse", func(c Counters) bool { return c.hostChangesVisibleSince(c0) })
	if err != nil {
		return ChangesResult{}, err
	}
	usage := s.monitor.end(mk)
	if err := s.waitIdle(ctx); err != nil {
		return ChangesResult{}, err
	}
	to, err := endOffsets(ctx, s.admin, s.topics.Discoveries)
	if err != nil {
		return ChangesResult{}, err
	}
	pipeline := c1.At.Sub(c0.At)
	res := ChangesResult{
		Seconds:         stopped.Sub(c0.At).Seconds(),
		PipelineSeconds: pipeline.Seconds(),
		Changes:         c1.HostChanges - c0.HostChanges,
		ChangedPerSec:   rate(c1.HostChanges-c0.HostChanges, pipeline),
		SinkRowsPerSec:  rate(c1.SinkRows-c0.SinkRows, pipeline),
		Usage:           usage,
	}
	if res.Raw, err = s.raw(ctx, fmt.Sprintf("changes-%d", n), from, to); err != nil {
		return res, err
	}
	res.Ratio = res.ChangedPerSec / res.Raw.PerSec
	log.Info("phase done", "changed_per_sec", round(res.ChangedPerSec), "sink_rows_per_sec", round(res.SinkRowsPerSec),
		"raw_kafka_records_per_sec", round(res.Raw.PerSec), "ratio", fmt.Sprintf("%.4f", res.Ratio))
	return res, nil
}

// rawRepeats is how many times the raw baseline is measured; the median
// counts. One takes well under a second, where a pause of the broker's JVM
// or a burst of other work on the machine shows.
const rawRepeats = 3

// raw measures a raw produce+consume of the discovery records between
// from and to.
func (s *suite) raw(ctx context.Context, name string, from, to offsets) (RawResult, error) {
	recs, err := copyRecords(ctx, s.broker.seeds, s.topics.Discoveries, from, to)
	if err != nil {
		return RawResult{}, err
	}
	var results []RawResult
	for i := range rawRepeats {
		res, err := rawProduceConsume(ctx, s.broker.seeds, s.admin, fmt.Sprintf("fleetstream.bench.raw.%s.%d", name, i), s.cfg.Partitions, recs)
		if err != nil {
			return res, fmt.Errorf("raw Kafka baseline: %w", err)
		}
		results = append(results, res)
	}
	slices.SortFunc(results, func(a, b RawResult) int { return cmp.Compare(a.PerSec, b.PerSec) })
	return results[len(results)/2], nil
}
