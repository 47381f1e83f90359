package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/internal/kafka"
)

// Sink defaults.
const (
	DefaultSinkGroup     = "fleet.sink.clickhouse"
	DefaultBatchSize     = 10000
	DefaultFlushInterval = 200 * time.Millisecond
)

const (
	// dlqStage names the sink in dead-letter headers.
	dlqStage = "sink.clickhouse"
	// insertTimeout bounds one insert attempt; a hung connection is retried.
	insertTimeout = 2 * time.Minute
	// retryMax caps the backoff between failed writes.
	retryMax = 10 * time.Second
	// shutdownFlushTimeout is the last chance a batch in hand gets when Run
	// is stopped; past it the batch is dropped uncommitted and redelivered.
	shutdownFlushTimeout = 10 * time.Second
	// progressInterval is how often throughput is logged.
	progressInterval = 10 * time.Second
)

// SinkOptions configures NewSink.
type SinkOptions struct {
	// Seeds are the Kafka bootstrap brokers. Required.
	Seeds []string
	// KafkaOpts are extra franz-go options (TLS, SASL, client id). The sink
	// sets the consumer-group options itself.
	KafkaOpts []kgo.Opt
	// Group is the consumer group; default DefaultSinkGroup.
	Group string
	// Topics names the events topic read and the dead-letter topic written.
	Topics kafka.Topics
	// Conn is the ClickHouse connection. Required.
	Conn driver.Conn
	// Database holds the migrated tables; default DefaultDatabase.
	Database string
	// BatchSize is the most records written per batch; default 10000.
	// Larger batches insert faster (ClickHouse prefers few big inserts) but
	// hold the group's rebalances longer.
	BatchSize int
	// FlushInterval is the longest a record waits for its batch to fill
	// before it is written; default 200ms: the read model's staleness.
	FlushInterval time.Duration
	// Logger receives progress and problems; nil discards them.
	Logger *slog.Logger
	// Metrics; nil creates unregistered ones.
	Metrics *Metrics
}

// Sink projects fleet.events.v1 into the events, hosts, clusters,
// sap_systems, databases, cloud_resources, links, check_results and
// check_executions tables.
//
// Delivery is at least once, and duplicates are harmless: a batch's offsets
// are committed only after ClickHouse acknowledged every insert of the batch
// and its dead letters were produced, and both tables are ReplacingMergeTree
// keyed so a redelivered event collapses into its first copy. Rebalances are
// held while a batch is in hand (BlockRebalanceOnPoll), so a commit never
// covers partitions this member no longer owns. A failed insert is retried
// with backoff for as long as Run runs: the sink never skips a record it
// could decode.
type Sink struct {
	seeds         []string
	kafkaOpts     []kgo.Opt
	group         string
	topics        kafka.Topics
	conn          driver.Conn
	database      string
	eventsInsert  string
	hostsInsert   string
	batchSize     int
	flushInterval time.Duration
	logger        *slog.Logger
	metrics       *Metrics

	// Inserts into the cloud_resources and links tables.
	resourcesInsert, linksInsert string
	// entityInserts are the inserts into the entity tables, by table.
	entityInserts map[string]string
	// Inserts into the check_results and check_executions tables.
	checkResultsInsert, checkExecutionsInsert string

	// Owned by Run's goroutine.
	client         *kgo.Client
	highWatermarks map[int32]int64
	progress       progress
}

// progress counts what happened since the last progress log line.
type progress struct {
	since                              time.Time
	events, hostRows, batches, letters int
}

// NewSink checks opts and returns a sink; Run starts it.
func NewSink(opts SinkOptions) (*Sink, error) {
	if len(opts.Seeds) == 0 {
		return nil, errors.New("clickhouse sink: no Kafka seed brokers")
	}
	if opts.Conn == nil {
		return nil, errors.New("clickhouse sink: no ClickHouse connection")
	}
	if opts.Topics.Events == "" || opts.Topics.DLQ == "" {
		return nil, errors.New("clickhouse sink: Topics.Events and Topics.DLQ are required (start from kafka.DefaultTopics())")
	}
	s := &Sink{
		seeds:          opts.Seeds,
		kafkaOpts:      opts.KafkaOpts,
		group:          cmp.Or(opts.Group, DefaultSinkGroup),
		topics:         opts.Topics,
		conn:           opts.Conn,
		database:       cmp.Or(opts.Database, DefaultDatabase),
		batchSize:      opts.BatchSize,
		flushInterval:  opts.FlushInterval,
		logger:         opts.Logger,
		metrics:        opts.Metrics,
		highWatermarks: map[int32]int64{},
	}
	if s.batchSize <= 0 {
		s.batchSize = DefaultBatchSize
	}
	if s.flushInterval <= 0 {
		s.flushInterval = DefaultFlushInterval
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	events, err := table(s.database, "events")
	if err != nil {
		return nil, fmt.Errorf("clickhouse sink: %w", err)
	}
	hosts, _ := table(s.database, "hosts") // same database: already checked
	s.eventsInsert = fmt.Sprintf(eventsInsert, events)
	s.hostsInsert = fmt.Sprintf(hostsInsert, hosts)
	resources, _ := table(s.database, "cloud_resources")
	links, _ := table(s.database, "links")
	s.resourcesInsert = fmt.Sprintf(resourcesInsert, resources)
	s.linksInsert = fmt.Sprintf(linksInsert, links)
	s.entityInserts = map[string]string{}
	for _, name := range entityTables {
		tbl, _ := table(s.database, name)
		s.entityInserts[name] = fmt.Sprintf(entityInserts[name], tbl)
	}
	results, _ := table(s.database, tableCheckResults)
	executions, _ := table(s.database, tableCheckExecutions)
	s.checkResultsInsert = fmt.Sprintf(checkResultsInsert, results)
	s.checkExecutionsInsert = fmt.Sprintf(checkExecutionsInsert, executions)
	return s, nil
}

// Run consumes until ctx is done, then writes and commits the batch in hand
// if it can within a few seconds, and returns nil. It returns an error only
// when it cannot consume at all. Call it once.
func (s *Sink) Run(ctx context.Context) error {
	opts := append(slices.Clone(s.kafkaOpts),
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(s.topics.Events),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(s.forgetPartitions),
		kgo.OnPartitionsLost(s.forgetPartitions),
	)
	cl, err := kafka.NewClient(s.seeds, opts...)
	if err != nil {
		return fmt.Errorf("clickhouse sink: kafka client: %w", err)
	}
	s.client = cl
	defer func() {
		cl.AllowRebalance() // Close leaves the group, which is a rebalance
		cl.Close()
	}()
	s.logger.Info("clickhouse sink started", "group", s.group, "topic", s.topics.Events, "database", s.database,
		"batch_size", s.batchSize, "flush_interval", s.flushInterval)
	s.progress = progress{since: time.Now()}

	for {
		b := newBatch()
		if err := s.fill(ctx, b); err != nil {
			return err
		}
		if b.records > 0 {
			if err := s.flush(ctx, b); err != nil {
				s.logger.Warn("clickhouse sink stopped with an unwritten batch; its records will be delivered again",
					"records", b.records, "err", err)
				return nil
			}
		}
		cl.AllowRebalance()
		if ctx.Err() != nil {
			s.logger.Info("clickhouse sink stopped")
			return nil
		}
		s.logProgress()
	}
}

// batch is what one flush writes and commits.
type batch struct {
	records int
	started time.Time
	events  eventColumns
	// hosts keeps the newest state per host: replaying history writes one
	// row per host and batch instead of one per event.
	hosts map[string]*projected
	dead  []deadLetter
	// last is the last record of each partition, whose offset is committed.
	last map[int32]*kgo.Record

	// resources and links likewise keep the newest version per row key.
	resources map[string]*projected
	links     map[linkKey]*projected
	// entities keeps the newest cluster, SAP system and database rows.
	entities map[entityKey]*entityRow
	// checkResults and checkExecutions are the checks rows (checks_rows.go).
	checkResults    map[checkResultKey]*checkResultRow
	checkExecutions map[string]*checkExecutionRow
}

type deadLetter struct {
	record *kgo.Record
	reason string
}

func newBatch() *batch {
	return &batch{hosts: map[string]*projected{}, resources: map[string]*projected{}, links: map[linkKey]*projected{},
		entities: map[entityKey]*entityRow{}, last: map[int32]*kgo.Record{},
		checkResults: map[checkResultKey]*checkResultRow{}, checkExecutions: map[string]*checkExecutionRow{}}
}

// fill polls until the batch is full, its flush interval has passed since
// its first record, or ctx is done.
func (s *Sink) fill(ctx context.Context, b *batch) error {
	for b.records < s.batchSize {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if b.records > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, b.started.Add(s.flushInterval))
		}
		fetches := s.client.PollRecords(pollCtx, s.batchSize-b.records)
		expired := pollCtx.Err() != nil
		cancel()
		if fetches.IsClientClosed() {
			return errors.New("clickhouse sink: kafka client closed")
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				s.logger.Warn("clickhouse sink: fetch failed", "topic", topic, "partition", partition, "err", err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.HighWatermark >= 0 {
				s.highWatermarks[p.Partition] = p.HighWatermark
			}
		})
		recs := fetches.Records()
		for i, res := range projectAll(recs) {
			s.add(b, recs[i], res.p, res.checks, res.err)
		}
		if expired {
			return nil
		}
	}
	return nil
}

// projection is project's result for one record.
type projection struct {
	p      *projected
	checks *checksRows
	err    error
}

// parallelMin is the fewest records worth spreading over several cores.
const parallelMin = 512

// projectAll projects records on every core: decoding and JSON encoding
// are most of the sink's CPU, and records are independent.
func projectAll(recs []*kgo.Record) []projection {
	out := make([]projection, len(recs))
	workers := min(runtime.GOMAXPROCS(0), len(recs)/parallelMin+1)
	chunk := (len(recs) + workers - 1) / workers
	var wg sync.WaitGroup
	for start := 0; start < len(recs); start += chunk {
		end := min(start+chunk, len(recs))
		wg.Go(func() {
			for i := start; i < end; i++ {
				out[i].p, out[i].err = project(recs[i].Value)
				if out[i].err == nil {
					out[i].checks, out[i].err = checksOf(out[i].p.ev)
				}
			}
		})
	}
	wg.Wait()
	return out
}

func (s *Sink) add(b *batch, r *kgo.Record, p *projected, checks *checksRows, err error) {
	if b.records == 0 {
		b.started = time.Now()
	}
	b.records++
	b.last[r.Partition] = r
	if err != nil {
		reason := reasonInvalid
		if rej := (*rejectionError)(nil); errors.As(err, &rej) {
			reason = rej.reason
		}
		s.logger.Warn("clickhouse sink: record sent to the dead-letter topic", "topic", r.Topic, "partition", r.Partition,
			"offset", r.Offset, "reason", err)
		headers := kafka.DeadLetterHeaders(dlqStage, err.Error(), r.Topic, r.Partition, r.Offset)
		b.dead = append(b.dead, deadLetter{
			record: &kgo.Record{Topic: s.topics.DLQ, Key: r.Key, Value: r.Value,
				Headers: append(slices.Clone(r.Headers), kafka.RecordHeaders(headers)...)},
			reason: reason,
		})
		return
	}
	b.events.add(p, r.Partition, r.Offset)
	b.addChecks(checks)
	if p.host != nil {
		if prev, ok := b.hosts[p.host.GetId()]; !ok || prev.host.GetVersion() <= p.host.GetVersion() {
			b.hosts[p.host.GetId()] = p
		}
	}
	if p.resource != nil {
		if prev, ok := b.resources[p.resource.GetId()]; !ok || prev.resource.GetVersion() <= p.resource.GetVersion() {
			b.resources[p.resource.GetId()] = p
		}
	}
	if e := p.entity; e != nil {
		k := entityKey{e.table, e.id}
		if prev, ok := b.entities[k]; !ok || prev.version <= e.version {
			b.entities[k] = e
		}
	}
	if p.link != nil {
		k := keyOfLink(p.link)
		if prev, ok := b.links[k]; !ok || prev.link.GetVersion() <= p.link.GetVersion() {
			b.links[k] = p
		}
	}
}

// flush writes the batch (dead letters, events, hosts), each with retries,
// and only then commits its offsets. It fails only when ctx ends first. A
// batch in hand when ctx is already done gets shutdownFlushTimeout.
func (s *Sink) flush(ctx context.Context, b *batch) error {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), shutdownFlushTimeout)
		defer cancel()
	}
	began := time.Now()
	if len(b.dead) > 0 {
		recs := make([]*kgo.Record, len(b.dead))
		for i, d := range b.dead {
			recs[i] = d.record
		}
		err := s.retry(ctx, "dlq", func(ctx context.Context) error { return s.client.ProduceSync(ctx, recs...).FirstErr() })
		if err != nil {
			return err
		}
		for _, d := range b.dead {
			s.metrics.deadLetters.WithLabelValues(d.reason).Inc()
		}
	}
	if n := b.events.len(); n > 0 {
		err := s.retry(ctx, "events", func(ctx context.Context) error { return insert(ctx, s.conn, s.eventsInsert, b.events.values()) })
		if err != nil {
			return err
		}
		s.metrics.rows.WithLabelValues("events").Add(float64(n))
	}
	if len(b.hosts) > 0 {
		var hosts hostColumns
		for _, p := range b.hosts {
			hosts.add(p)
		}
		err := s.retry(ctx, "hosts", func(ctx context.Context) error { return insert(ctx, s.conn, s.hostsInsert, hosts.values()) })
		if err != nil {
			return err
		}
		s.metrics.rows.WithLabelValues("hosts").Add(float64(hosts.len()))
	}
	if len(b.resources) > 0 {
		var resources resourceColumns
		for _, p := range b.resources {
			resources.add(p)
		}
		err := s.retry(ctx, "cloud_resources", func(ctx context.Context) error {
			return insert(ctx, s.conn, s.resourcesInsert, resources.values())
		})
		if err != nil {
			return err
		}
		s.metrics.rows.WithLabelValues("cloud_resources").Add(float64(resources.len()))
	}
	if len(b.links) > 0 {
		var links linkColumns
		for _, p := range b.links {
			links.add(p)
		}
		err := s.retry(ctx, "links", func(ctx context.Context) error { return insert(ctx, s.conn, s.linksInsert, links.values()) })
		if err != nil {
			return err
		}
		s.metrics.rows.WithLabelValues("links").Add(float64(links.len()))
	}
	if err := s.flushEntities(ctx, b); err != nil {
		return err
	}
	if err := s.flushChecks(ctx, b); err != nil {
		return err
	}

	last := make([]*kgo.Record, 0, len(b.last))
	for _, r := range b.last {
		last = append(last, r)
	}
	if err := s.client.CommitRecords(ctx, last...); err != nil {
		// The rows are in ClickHouse; redelivery only re-inserts them.
		s.metrics.commitErrors.Inc()
		s.logger.Warn("clickhouse sink: offset commit failed; the batch's records will be delivered again", "err", err)
	} else {
		for _, r := range last {
			if hw, ok := s.highWatermarks[r.Partition]; ok {
				s.metrics.lag.WithLabelValues(strconv.Itoa(int(r.Partition))).Set(float64(max(hw-r.Offset-1, 0)))
			}
		}
	}
	s.metrics.batches.Inc()
	s.metrics.batchDuration.Observe(time.Since(began).Seconds())
	s.progress.events += b.events.len()
	s.progress.hostRows += len(b.hosts)
	s.progress.letters += len(b.dead)
	s.progress.batches++
	return nil
}

// retry runs write until it succeeds or ctx ends, backing off from 100ms to
// retryMax. ClickHouse being down stalls the sink; it never skips.
func (s *Sink) retry(ctx context.Context, target string, write func(context.Context) error) error {
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, insertTimeout)
		err := write(attemptCtx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("write %s: %w (last error: %v)", target, ctx.Err(), err)
		}
		s.metrics.retries.WithLabelValues(target).Inc()
		s.logger.Warn("clickhouse sink: write failed; retrying", "target", target, "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("write %s: %w (last error: %v)", target, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(2*delay, retryMax)
	}
}

// insert sends columns as one native-protocol block.
func insert(ctx context.Context, conn driver.Conn, query string, columns []any) error {
	b, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for i, col := range columns {
		if err := b.Column(i).Append(col); err != nil {
			_ = b.Abort()
			return fmt.Errorf("column %d of %s: %w", i, query, err)
		}
	}
	return b.Send()
}

// forgetPartitions drops the lag of partitions this member no longer owns.
func (s *Sink) forgetPartitions(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	for _, p := range lost[s.topics.Events] {
		s.metrics.lag.DeleteLabelValues(strconv.Itoa(int(p)))
	}
}

func (s *Sink) logProgress() {
	elapsed := time.Since(s.progress.since)
	if elapsed < progressInterval {
		return
	}
	p := s.progress
	if p.batches > 0 {
		s.logger.Info("clickhouse sink progress",
			"events_per_sec", int(float64(p.events)/elapsed.Seconds()),
			"host_rows_per_sec", int(float64(p.hostRows)/elapsed.Seconds()),
			"batches", p.batches, "dead_letters", p.letters, "over", elapsed.Round(time.Second))
	}
	s.progress = progress{since: time.Now()}
}
