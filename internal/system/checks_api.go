package system

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/lovoo/goka"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/checks"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// checksService builds the API's ChecksService: views of the checks
// processors' tables (run in g), the catalog the processors load, the
// ClickHouse read model, and a producer of checks commands.
func checksService(ctx context.Context, g *errgroup.Group, cfg Config, conn driver.Conn) (api.Service, error) {
	rules, err := checksRules(cfg)
	if err != nil {
		return api.Service{}, err
	}
	viewOpts := func(name string) []goka.ViewOption {
		return []goka.ViewOption{goka.WithViewTopicManagerBuilder(topicManager(cfg)),
			goka.WithViewStorageBuilder(gokaStorage(cfg, name)), goka.WithViewAutoReconnect()}
	}
	targets, err := checks.NewView(cfg.Brokers, cfg.Topics, viewOpts("api-checks-view")...)
	if err != nil {
		return api.Service{}, fmt.Errorf("checks view: %w", err)
	}
	executions, err := checks.NewExecutionsView(cfg.Brokers, cfg.Topics, viewOpts("api-checks-executions-view")...)
	if err != nil {
		return api.Service{}, fmt.Errorf("checks executions view: %w", err)
	}
	g.Go(func() error { return ignoreCanceled(targets.Run(ctx)) })
	g.Go(func() error { return ignoreCanceled(executions.Run(ctx)) })
	client, err := kafka.NewClient(cfg.Brokers, cfg.Kafka.Opts()...)
	if err != nil {
		return api.Service{}, fmt.Errorf("checks API kafka client: %w", err)
	}
	context.AfterFunc(ctx, client.Close)
	return api.NewChecksService(api.ChecksOptions{
		Catalog: rules.Catalog(),
		Reader:  checks.NewReader(targets, executions),
		Store:   &checksStore{conn: conn, db: cfg.Database},
		Send:    api.KafkaHostCommands(client, cfg.Topics.ChecksCommands),
		Logger:  cfg.Logger.With("role", "api", "service", "checks"),
	}), nil
}

// checksStore adapts the ClickHouse queries to api.ChecksStore.
type checksStore struct {
	conn driver.Conn
	db   string
}

func (s *checksStore) ListExecutions(ctx context.Context, f api.ExecutionFilter, pageSize int, after string) ([]*fleetv1.Execution, string, error) {
	return clickhouse.ListExecutions(ctx, s.conn, s.db, clickhouse.ExecutionFilter(f), pageSize, after)
}

func (s *checksStore) GetExecution(ctx context.Context, id string) (*fleetv1.Execution, error) {
	return clickhouse.GetExecution(ctx, s.conn, s.db, id)
}

func (s *checksStore) ListResults(ctx context.Context, f api.ResultFilter, pageSize int, after string) ([]*fleetv1.CheckResult, string, error) {
	return clickhouse.ListResults(ctx, s.conn, s.db, clickhouse.ResultFilter(f), pageSize, after)
}

func (s *checksStore) Compliance(ctx context.Context, f api.ComplianceFilter) ([]*fleetv1.ComplianceBucket, error) {
	return clickhouse.GetCompliance(ctx, s.conn, s.db, clickhouse.ComplianceFilter(f))
}
