package system

import (
	"context"
	"net/http"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// discoveryAPI builds the API's DiscoveryService (clusters, SAP systems,
// databases, tags) and mounts GET /api/v1/stream on extra, its consumer
// running in g.
func discoveryAPI(ctx context.Context, g *errgroup.Group, cfg Config, conn driver.Conn, hosts api.HostReader, extra map[string]http.Handler) (api.Service, error) {
	stream, err := api.NewStream(api.StreamOptions{
		Seeds:     cfg.Brokers,
		KafkaOpts: cfg.Kafka.Opts(),
		Topic:     cfg.Topics.Events,
		Keys:      cfg.UserKeys,
		Logger:    cfg.Logger.With("role", "api", "component", "stream"),
		Registry:  cfg.Registry,
	})
	if err != nil {
		return api.Service{}, err
	}
	g.Go(func() error { return stream.Run(ctx) })
	extra[api.StreamPath] = stream
	return api.NewDiscoveryService(api.DiscoveryOptions{
		Hosts:      hosts,
		Clusters:   chEntity[*fleetv1.Cluster]{conn, cfg.Database, clickhouse.GetCluster},
		SapSystems: chEntity[*fleetv1.SapSystem]{conn, cfg.Database, clickhouse.GetSapSystem},
		Databases:  chEntity[*fleetv1.Database]{conn, cfg.Database, clickhouse.GetDatabase},
		Store:      &discoveryStore{conn: conn, db: cfg.Database},
		Logger:     cfg.Logger.With("role", "api"),
	}), nil
}

// readTimeout bounds one single-entity read from ClickHouse.
const readTimeout = 10 * time.Second

// chEntity reads single clusters, SAP systems or databases from the
// ClickHouse read model. The sink's flush interval behind the aggregates'
// tables, it is what the API reads one entity from while those tables have
// no views wired here.
type chEntity[T any] struct {
	conn driver.Conn
	db   string
	get  func(context.Context, driver.Conn, string, string) (T, error)
}

func (r chEntity[T]) Get(id string) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	return r.get(ctx, r.conn, r.db, id)
}

// discoveryStore adapts the ClickHouse queries to api.DiscoveryStore.
type discoveryStore struct {
	conn driver.Conn
	db   string
}

func filterOf(f api.DiscoveryFilter) clickhouse.DiscoveryFilter {
	return clickhouse.DiscoveryFilter{Health: f.Health, Type: f.Type, SID: f.SID, Provider: f.Provider, Tags: f.Tags,
		HostID: f.HostID, DatabaseID: f.DatabaseID, IncludeDeregistered: f.IncludeDeregistered}
}

func (s *discoveryStore) ListClusters(ctx context.Context, f api.DiscoveryFilter, pageSize int, after string) ([]*fleetv1.Cluster, string, error) {
	return clickhouse.ListClusters(ctx, s.conn, s.db, filterOf(f), pageSize, after)
}

func (s *discoveryStore) ListSapSystems(ctx context.Context, f api.DiscoveryFilter, pageSize int, after string) ([]*fleetv1.SapSystem, string, error) {
	return clickhouse.ListSapSystems(ctx, s.conn, s.db, filterOf(f), pageSize, after)
}

func (s *discoveryStore) ListDatabases(ctx context.Context, f api.DiscoveryFilter, pageSize int, after string) ([]*fleetv1.Database, string, error) {
	return clickhouse.ListDatabases(ctx, s.conn, s.db, filterOf(f), pageSize, after)
}

func (s *discoveryStore) ListEvents(ctx context.Context, aggregateType, id string, pageSize int, after string) ([]*fleetv1.EventRecord, string, error) {
	return (&store{conn: s.conn, db: s.db}).ListEvents(ctx, aggregateType, id, pageSize, after)
}

func (s *discoveryStore) Tags(ctx context.Context, entityType string, ids []string) (map[string][]string, error) {
	return clickhouse.TagsOf(ctx, s.conn, s.db, entityType, ids)
}

func (s *discoveryStore) AddTag(ctx context.Context, entityType, id, value string) error {
	return clickhouse.AddTag(ctx, s.conn, s.db, entityType, id, value)
}

func (s *discoveryStore) RemoveTag(ctx context.Context, entityType, id, value string) error {
	return clickhouse.RemoveTag(ctx, s.conn, s.db, entityType, id, value)
}
