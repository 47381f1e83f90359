package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// HostCommandSender sends a host command, keyed by its aggregate id, and
// returns once Kafka acknowledged it.
type HostCommandSender func(ctx context.Context, c *fleetv1.Command) error

// KafkaHostCommands sends host commands to topic (kafka.Topics'
// HostCommands) through client.
func KafkaHostCommands(client *kgo.Client, topic string) HostCommandSender {
	return func(ctx context.Context, c *fleetv1.Command) error {
		value, err := proto.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode %s: %w", c.GetCommandId(), err)
		}
		rec := &kgo.Record{Topic: topic, Key: []byte(c.GetAggregateId()), Value: value,
			Headers: kafka.RecordHeaders(kafka.Headers(c, c.GetTraceId()))}
		return client.ProduceSync(ctx, rec).FirstErr()
	}
}

// HostsServer implements fleetv1.HostsServiceServer: commands about hosts,
// checked against the host aggregate's table first so the caller learns
// at once why one cannot be applied. The aggregate checks again: the
// table seen here may lag behind a heartbeat.
type HostsServer struct {
	fleetv1.UnimplementedHostsServiceServer
	hosts  HostReader
	send   HostCommandSender
	now    func() time.Time
	logger *slog.Logger
}

// NewHostsServer builds the HostsService implementation; now stamps the
// commands (time.Now in production).
func NewHostsServer(hosts HostReader, send HostCommandSender, now func() time.Time, logger *slog.Logger) *HostsServer {
	return &HostsServer{hosts: hosts, send: send, now: now, logger: logger}
}

// APIService is the server as an API Service, its method open to the
// write scope.
func (s *HostsServer) APIService() Service {
	return Service{
		Name:     "hosts",
		Register: func(g *grpc.Server) { fleetv1.RegisterHostsServiceServer(g, s) },
		Gateway:  fleetv1.RegisterHostsServiceHandler,
		Scopes: map[string]Scope{
			fleetv1.HostsService_DeregisterHost_FullMethodName: ScopeWrite,
		},
	}
}

// DeregisterHost sends DeregisterHost for a host whose heartbeat is lost.
func (s *HostsServer) DeregisterHost(ctx context.Context, req *fleetv1.DeregisterHostRequest) (*fleetv1.DeregisterHostResponse, error) {
	id := req.GetId()
	h, err := s.hosts.Get(id)
	if err != nil {
		s.logger.Error("deregister host: read host", "id", id, "err", err)
		return nil, status.Errorf(codes.Unavailable, "the host table cannot be read: %v; retry later", err)
	}
	switch {
	case h == nil:
		return nil, status.Errorf(codes.NotFound, "no host %q: list hosts with GET /api/v1/hosts", id)
	case h.GetDeregistered():
		return nil, status.Errorf(codes.Aborted, "host %s is already deregistered", id)
	case h.GetHeartbeat() == "passing":
		return nil, status.Errorf(codes.Aborted, "host %s is alive (last heartbeat at %s): only a host whose heartbeat is lost can be deregistered; stop its agent first",
			id, h.GetLastHeartbeatAt().AsTime().Format(time.RFC3339))
	}
	now := timestamppb.New(s.now())
	c := &fleetv1.Command{
		CommandId:   uuid.NewString(),
		AggregateId: id,
		IssuedAt:    now,
		TraceId:     uuid.NewString(),
		Body:        &fleetv1.Command_DeregisterHost{DeregisterHost: &fleetv1.DeregisterHost{At: now}},
	}
	if err := s.send(ctx, c); err != nil {
		s.logger.Error("deregister host: send command", "id", id, "err", err)
		return nil, status.Errorf(codes.Unavailable, "DeregisterHost for %s was not accepted by Kafka: %v; retry", id, err)
	}
	// REST answers 202 Accepted: the host is deregistered once the
	// aggregate applied the command.
	if err := grpc.SetHeader(ctx, metadata.Pairs(httpCodeHeader, strconv.Itoa(http.StatusAccepted))); err != nil {
		return nil, status.Errorf(codes.Internal, "set the HTTP status: %v", err)
	}
	return &fleetv1.DeregisterHostResponse{HostId: id, CommandId: c.GetCommandId()}, nil
}

// httpCodeHeader is the gRPC response header through which a method sets
// the HTTP status the gateway answers with (httpCodeFromHeader).
const httpCodeHeader = "x-http-code"

// httpCodeFromHeader is a gateway forward-response option: it answers a
// successful call with the status the method put in httpCodeHeader, and
// keeps the header itself out of the HTTP response.
func httpCodeFromHeader(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	md, ok := runtime.ServerMetadataFromContext(ctx)
	if !ok {
		return nil
	}
	vals := md.HeaderMD.Get(httpCodeHeader)
	if len(vals) == 0 {
		return nil
	}
	code, err := strconv.Atoi(vals[0])
	if err != nil {
		return fmt.Errorf("%s header %q is not an HTTP status", httpCodeHeader, vals[0])
	}
	w.Header().Del("Grpc-Metadata-" + httpCodeHeader)
	w.WriteHeader(code)
	return nil
}
