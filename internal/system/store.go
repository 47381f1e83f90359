package system

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// store adapts the ClickHouse queries to the API's Store.
type store struct {
	conn driver.Conn
	db   string
}

func (s *store) ListHosts(ctx context.Context, f api.HostFilter, pageSize int, after string) ([]*fleetv1.Host, string, error) {
	return clickhouse.ListHosts(ctx, s.conn, s.db, clickhouse.HostFilter{
		HostnamePrefix: f.HostnamePrefix, OS: f.OS, Health: f.Health, Tags: f.Tags, Provider: f.Provider,
		IncludeDeregistered: f.IncludeDeregistered,
	}, pageSize, after)
}

// ListEvents pages by the cursor "<version>:<event id>".
func (s *store) ListEvents(ctx context.Context, aggregateType, id string, pageSize int, after string) ([]*fleetv1.EventRecord, string, error) {
	var cursor *clickhouse.EventCursor
	if after != "" {
		v, eventID, ok := strings.Cut(after, ":")
		version, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			return nil, "", status.Error(codes.InvalidArgument, "page_token does not belong to this listing; start again without it")
		}
		cursor = &clickhouse.EventCursor{Version: version, EventID: eventID}
	}
	rows, next, err := clickhouse.ListEvents(ctx, s.conn, s.db, aggregateType, id, pageSize, cursor)
	if err != nil {
		return nil, "", err
	}
	out := make([]*fleetv1.EventRecord, 0, len(rows))
	for _, r := range rows {
		data := new(structpb.Struct)
		if err := data.UnmarshalJSON([]byte(r.Payload)); err != nil {
			return nil, "", fmt.Errorf("event %s payload: %w", r.EventID, err)
		}
		out = append(out, &fleetv1.EventRecord{
			EventId:       r.EventID,
			AggregateType: r.AggregateType,
			AggregateId:   r.AggregateID,
			Version:       r.Version,
			Type:          r.EventType,
			OccurredAt:    timestamppb.New(r.OccurredAt),
			Data:          data,
		})
	}
	if next == nil {
		return out, "", nil
	}
	return out, fmt.Sprintf("%d:%s", next.Version, next.EventID), nil
}
