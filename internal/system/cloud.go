package system

import (
	"context"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/lovoo/goka"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	cloudresource "github.com/fleetstream/fleetstream/processors/cloud_resource"
	"github.com/fleetstream/fleetstream/processors/links"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// cloudProcessors builds the cloud_resource aggregate and the links
// processor; opts gives each its goka options by name.
func cloudProcessors(cfg Config, opts func(name string) []goka.ProcessorOption) ([]*goka.Processor, error) {
	log := cfg.Logger.With("role", "process")
	cp, err := cloudresource.NewProcessor(cfg.Brokers, cfg.Topics, cloudresource.NewMetrics(cfg.Registry), log.With("processor", "cloud_resource"), opts("cloud_resource")...)
	if err != nil {
		return nil, fmt.Errorf("cloud_resource processor: %w", err)
	}
	lp, err := links.NewProcessor(cfg.Brokers, cfg.Topics, links.NewMetrics(cfg.Registry), log.With("processor", "links"), opts("links")...)
	if err != nil {
		return nil, fmt.Errorf("links processor: %w", err)
	}
	return []*goka.Processor{cp, lp}, nil
}

// cloudService is the API's CloudService: views of the cloud_resource and
// links tables for single entities, conn for lists and graphs.
func cloudService(ctx context.Context, g *errgroup.Group, cfg Config, conn driver.Conn) (api.Service, error) {
	viewOpts := func(name string) []goka.ViewOption {
		return []goka.ViewOption{
			goka.WithViewTopicManagerBuilder(topicManager(cfg)),
			goka.WithViewStorageBuilder(gokaStorage(cfg, name)),
			goka.WithViewAutoReconnect(),
		}
	}
	rv, err := cloudresource.NewView(cfg.Brokers, cfg.Topics, viewOpts("api-view-cloud-resources")...)
	if err != nil {
		return api.Service{}, fmt.Errorf("cloud_resource view: %w", err)
	}
	lv, err := links.NewView(cfg.Brokers, cfg.Topics, viewOpts("api-view-links")...)
	if err != nil {
		return api.Service{}, fmt.Errorf("links view: %w", err)
	}
	for _, v := range []*goka.View{rv, lv} {
		g.Go(func() error { return ignoreCanceled(v.Run(ctx)) })
	}
	return api.NewCloudService(api.CloudOptions{
		Resources: recoveredResources{cloudresource.NewReader(rv)},
		Links:     recoveredLinks{links.NewReader(lv)},
		Store:     &cloudStore{conn: conn, db: cfg.Database},
		Logger:    cfg.Logger.With("role", "api"),
	}), nil
}

// errRecovering answers reads while a view is still catching up with its
// table: an empty answer then would be wrong, not merely stale.
var errRecovering = status.Error(codes.Unavailable, "the cloud resource and link views are still recovering from Kafka; retry shortly")

type recoveredResources struct{ r *cloudresource.Reader }

func (v recoveredResources) Get(id string) (*fleetv1.CloudResource, error) {
	if !v.r.Recovered() {
		return nil, errRecovering
	}
	return v.r.Get(id)
}

type recoveredLinks struct{ r *links.Reader }

func (v recoveredLinks) Links(id string) ([]*fleetv1.Link, error) {
	if !v.r.Recovered() {
		return nil, errRecovering
	}
	return v.r.Links(id)
}

// cloudStore adapts the ClickHouse queries to api.CloudStore.
type cloudStore struct {
	conn driver.Conn
	db   string
}

func (s *cloudStore) ListCloudResources(ctx context.Context, f api.CloudResourceFilter, pageSize int, after string) ([]*fleetv1.CloudResource, string, error) {
	return clickhouse.ListCloudResources(ctx, s.conn, s.db, clickhouse.CloudResourceFilter{
		Provider: f.Provider, Account: f.Account, Region: f.Region, Kind: f.Kind, Tags: f.Tags, IncludeDeleted: f.IncludeDeleted,
	}, pageSize, after)
}

func (s *cloudStore) ListEvents(ctx context.Context, aggregateType, id string, pageSize int, after string) ([]*fleetv1.EventRecord, string, error) {
	return (&store{conn: s.conn, db: s.db}).ListEvents(ctx, aggregateType, id, pageSize, after)
}

// linkCursorSep separates the parts of a link cursor; ids never hold it.
const linkCursorSep = "\x1f"

// ListLinks pages by the cursor "<from>\x1f<relation>\x1f<to type>\x1f<to>".
func (s *cloudStore) ListLinks(ctx context.Context, id string, includeInactive bool, pageSize int, after string) ([]*fleetv1.Link, string, error) {
	var cursor *clickhouse.LinkCursor
	if after != "" {
		parts := strings.Split(after, linkCursorSep)
		if len(parts) != 4 {
			return nil, "", status.Error(codes.InvalidArgument, "page_token does not belong to this listing; start again without it")
		}
		cursor = &clickhouse.LinkCursor{From: parts[0], Relation: parts[1], ToType: parts[2], To: parts[3]}
	}
	ls, next, err := clickhouse.ListLinks(ctx, s.conn, s.db, id, includeInactive, pageSize, cursor)
	if err != nil || next == nil {
		return ls, "", err
	}
	return ls, strings.Join([]string{next.From, next.Relation, next.ToType, next.To}, linkCursorSep), nil
}

func (s *cloudStore) ActiveLinks(ctx context.Context, ids []string, limit int) ([]*fleetv1.Link, error) {
	return clickhouse.ActiveLinks(ctx, s.conn, s.db, ids, limit)
}

func (s *cloudStore) ResourceInfo(ctx context.Context, ids []string) (map[string]api.NodeInfo, error) {
	sums, err := clickhouse.ResourceSummaries(ctx, s.conn, s.db, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]api.NodeInfo, len(sums))
	for id, sum := range sums {
		out[id] = api.NodeInfo{Kind: sum.Kind, Name: sum.Name, Deleted: sum.Deleted}
	}
	return out, nil
}
