package facts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Defaults of ServiceConfig.
const (
	DefaultInterval      = 5 * time.Minute
	DefaultMaxRequestAge = 2 * time.Minute
)

// dlqStage names the agent's fact service in dead-letter headers.
const dlqStage = "agent.facts"

// ServiceConfig configures a Service. AgentID, Brokers and Gatherers are
// required.
type ServiceConfig struct {
	AgentID string
	Brokers []string
	Kafka   kafka.Security
	// Topics names AgentRequests, Facts and DLQ. Default kafka.DefaultTopics().
	Topics kafka.Topics
	// Gatherers gathers the facts.
	Gatherers *Registry
	// Interval is the period of the gathering for continuous evaluation;
	// zero turns it off.
	Interval time.Duration
	// Periodic are the facts gathered every Interval (HostFacts of the
	// catalog); each distinct gatherer and argument once.
	Periodic []*fleetv1.FactRequest
	// MaxRequestAge: a request older than this is not answered (its
	// execution has timed out), and a starting agent reads the requests of
	// this last span only. Default 2 minutes.
	MaxRequestAge time.Duration
	// ClientOpts are added to the Kafka client's options (tests).
	ClientOpts []kgo.Opt
	Metrics    *Metrics
	Logger     *slog.Logger
}

// Service answers the fact-gathering requests addressed to one agent and
// publishes the agent's facts for continuous evaluation.
//
// Requests are keyed by agent id, so all of one agent's requests are in the
// partition its id hashes to (kafka.Partitioner, as every fleetstream
// producer and goka emitter partitions). The service reads only that
// partition, assigned directly, and skips other agents' records by key: an
// agent reads 1/partitions of the topic, and the broker keeps no consumer
// group per agent (thousands of groups that would only ever rebalance
// alone). Without committed offsets a starting agent reads from
// MaxRequestAge ago: older requests belong to executions that have timed
// out. After the topic gains partitions, restart the agents.
type Service struct {
	cfg    ServiceConfig
	log    *slog.Logger
	client *kgo.Client
	// periodic are the distinct facts of ServiceConfig.Periodic.
	periodic []*fleetv1.FactRequest
}

// NewService checks cfg and connects to Kafka (lazily: brokers that are not
// up yet are retried by Run).
func NewService(cfg ServiceConfig) (*Service, error) {
	switch {
	case cfg.AgentID == "":
		return nil, errors.New("facts service: no agent id")
	case len(cfg.Brokers) == 0:
		return nil, errors.New("facts service: no Kafka brokers: pass the brokers the control plane uses (--brokers)")
	case cfg.Gatherers == nil:
		return nil, errors.New("facts service: no gatherers")
	case cfg.Interval < 0:
		return nil, errors.New("facts service: the facts interval must be positive, or 0 to turn periodic gathering off")
	}
	if cfg.Topics.AgentRequests == "" {
		cfg.Topics = kafka.DefaultTopics()
	}
	if cfg.MaxRequestAge <= 0 {
		cfg.MaxRequestAge = DefaultMaxRequestAge
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Kafka.Validate(); err != nil {
		return nil, fmt.Errorf("facts service: %w", err)
	}
	client, err := kafka.NewClient(cfg.Brokers, append(cfg.Kafka.Opts(), cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("facts service: %w", err)
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("agent_id", cfg.AgentID), client: client, periodic: Distinct(cfg.Periodic)}, nil
}

// Run answers requests and gathers periodically until ctx is cancelled;
// then it closes the Kafka client and returns nil.
func (s *Service) Run(ctx context.Context) error {
	defer s.client.Close()
	s.log.Info("facts service started", "requests", s.cfg.Topics.AgentRequests, "facts", s.cfg.Topics.Facts,
		"interval", s.cfg.Interval, "periodic_facts", len(s.periodic), "gatherers", s.cfg.Gatherers.Names())
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.answer(ctx) })
	if s.cfg.Interval > 0 && len(s.periodic) > 0 {
		g.Go(func() error { s.gatherPeriodically(ctx); return nil })
	}
	err := g.Wait()
	s.log.Info("facts service stopped")
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// answer consumes the agent's partition of the requests topic.
func (s *Service) answer(ctx context.Context) error {
	partition, err := s.ownPartition(ctx)
	if err != nil {
		return nil // stopped while waiting for Kafka
	}
	since := time.Now().Add(-s.cfg.MaxRequestAge).UnixMilli()
	s.client.AddConsumePartitions(map[string]map[int32]kgo.Offset{
		s.cfg.Topics.AgentRequests: {partition: kgo.NewOffset().AfterMilli(since)},
	})
	s.log.Info("answering fact requests", "topic", s.cfg.Topics.AgentRequests, "partition", partition)
	for {
		fetches := s.client.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			s.log.Warn("fetch fact requests", "topic", topic, "partition", p, "err", err)
		})
		fetches.EachRecord(func(r *kgo.Record) { s.handle(ctx, r) })
	}
}

// ownPartition is the partition the agent's requests are produced to. It
// waits for the brokers and the topic, logging, until ctx ends.
func (s *Service) ownPartition(ctx context.Context) (int32, error) {
	adm := kadm.NewClient(s.client)
	topic := s.cfg.Topics.AgentRequests
	for attempt := 0; ; attempt++ {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			d := details[topic]
			err = d.Err
			if err == nil && len(d.Partitions) == 0 {
				err = fmt.Errorf("topic %s has no partitions", topic)
			}
			if err == nil {
				n := len(d.Partitions)
				return int32(kafka.Partitioner().ForTopic(topic).Partition(&kgo.Record{Key: []byte(s.cfg.AgentID)}, n)), nil
			}
		}
		s.log.Warn("cannot read the fact requests topic yet (does it exist? fleetstream migrate creates it)", "topic", topic, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(min(time.Second<<min(attempt, 5), 30*time.Second)):
		}
	}
}

// publish produces one FactsGathered keyed by agent id.
func (s *Service) publish(ctx context.Context, msg *fleetv1.FactsGathered, traceID string) error {
	value, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode facts of agent %s: %w", s.cfg.AgentID, err)
	}
	rec := &kgo.Record{Topic: s.cfg.Topics.Facts, Key: []byte(s.cfg.AgentID), Value: value,
		Headers: kafka.RecordHeaders(kafka.Headers(msg, traceID))}
	if err := s.client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("publish facts of agent %s to %s: %w", s.cfg.AgentID, s.cfg.Topics.Facts, err)
	}
	return nil
}
