package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// DELETE /api/v1/hosts/{id} on a Kafka (kfake, or FLEETSTREAM_TEST_KAFKA):
// 409 with the reason for a live or deregistered host, 404 for an unknown
// one, and 202 once DeregisterHost for a lost host is in the host command
// topic.
func TestDeregisterHost(t *testing.T) {
	topics := kafkatest.Namespace(t, kafka.DefaultTopics())
	seeds := kafkatest.Cluster(t, topics)
	client, err := kafka.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)

	lastBeat := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := lastBeat.Add(time.Hour)
	hosts := memHosts{
		"alive": {Id: "alive", Heartbeat: "passing", LastHeartbeatAt: timestamppb.New(lastBeat)},
		"lost":  {Id: "lost", Heartbeat: "critical", LastHeartbeatAt: timestamppb.New(lastBeat)},
		"gone":  {Id: "gone", Heartbeat: "critical", Deregistered: true},
	}
	srv := NewHostsServer(hosts, KafkaHostCommands(client, topics.HostCommands), func() time.Time { return now }, slog.New(slog.DiscardHandler))
	a := start(t, hosts, &memStore{}, Options{Services: []Service{srv.APIService()}})

	wantError(t, a.do(t, http.MethodDelete, "/api/v1/hosts/alive", a.writer), http.StatusConflict, codes.Aborted,
		"host alive is alive (last heartbeat at 2026-03-01T12:00:00Z)", "only a host whose heartbeat is lost can be deregistered")
	wantError(t, a.do(t, http.MethodDelete, "/api/v1/hosts/gone", a.writer), http.StatusConflict, codes.Aborted, "already deregistered")
	wantError(t, a.do(t, http.MethodDelete, "/api/v1/hosts/nope", a.writer), http.StatusNotFound, codes.NotFound, `no host "nope"`)
	wantError(t, a.do(t, http.MethodDelete, "/api/v1/hosts/lost", a.reader), http.StatusForbidden, codes.PermissionDenied)
	if recs := kafkatest.ReadAll(t, seeds, topics.HostCommands); len(recs) != 0 {
		t.Fatalf("refused requests produced %d commands", len(recs))
	}

	r := a.do(t, http.MethodDelete, "/api/v1/hosts/lost", a.writer)
	if r.code != http.StatusAccepted || r.body["host_id"] != "lost" || r.body["command_id"] == "" {
		t.Fatalf("HTTP %d %s, want 202 with the host and command ids", r.code, r.raw)
	}
	if h := r.header.Get("Grpc-Metadata-X-Http-Code"); h != "" {
		t.Errorf("the status header leaked: %q", h)
	}
	recs := kafkatest.ReadAll(t, seeds, topics.HostCommands)
	if len(recs) != 1 {
		t.Fatalf("%d commands in %s, want 1", len(recs), topics.HostCommands)
	}
	c := new(fleetv1.Command)
	if err := proto.Unmarshal(recs[0].Value, c); err != nil {
		t.Fatal(err)
	}
	want := &fleetv1.Command{
		CommandId: r.body["command_id"].(string), AggregateId: "lost", IssuedAt: timestamppb.New(now), TraceId: c.TraceId,
		Body: &fleetv1.Command_DeregisterHost{DeregisterHost: &fleetv1.DeregisterHost{At: timestamppb.New(now)}},
	}
	if string(recs[0].Key) != "lost" || !proto.Equal(c, want) || c.TraceId == "" {
		t.Fatalf("record keyed %q: %v, want %v", recs[0].Key, c, want)
	}
	headers := map[string]string{}
	for _, h := range recs[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers[kafka.HeaderSchema] != "fleetstream.v1.Command" || headers[kafka.HeaderTraceID] != c.TraceId {
		t.Errorf("headers %v", headers)
	}
}

// Without Kafka the request fails as unavailable rather than answering
// 202 for a command nobody will apply.
func TestDeregisterHostWhenKafkaFails(t *testing.T) {
	hosts := memHosts{"lost": {Id: "lost", Heartbeat: "critical"}}
	failing := func(_ context.Context, _ *fleetv1.Command) error { return errors.New("broker down") }
	srv := NewHostsServer(hosts, failing, time.Now, slog.New(slog.DiscardHandler))
	a := start(t, hosts, &memStore{}, Options{Services: []Service{srv.APIService()}})
	wantError(t, a.do(t, http.MethodDelete, "/api/v1/hosts/lost", a.writer), http.StatusServiceUnavailable, codes.Unavailable, "not accepted by Kafka: broker down")
}
