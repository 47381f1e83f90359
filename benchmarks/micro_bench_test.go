package benchmarks

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/connectors/agent/sim"
	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/scenario"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// The micro-benchmarks time single stages in this process, without HTTP
// clients, other roles or a real broker competing for the CPU: what one
// discovery costs where it costs, next to what the suite measures end to
// end. Run them with `go test -run '^$' -bench . ./benchmarks/`.

// simFleet is one simulated host sending every discovery type.
func simFleet(b *testing.B, changeRate float64) *sim.Fleet {
	b.Helper()
	f, err := sim.New(sim.Config{N: 1, Seed: "micro", ChangeRate: changeRate, DiscoveryTypes: sim.AgentDiscoveryTypes()})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkIngest is the ingest endpoint's work for one discovery:
// authenticate, validate, wrap, produce and wait for the acknowledgement of
// an in-process kfake (the handler's own cost; a real broker adds its round
// trip, which concurrent requests share).
func BenchmarkIngest(b *testing.B) {
	topics := kafka.DefaultTopics()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(topics.Partitions, topics.Discoveries))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	client, err := kafka.NewClient(cluster.ListenAddrs())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	keys := ingest.AgentKeys{Secret: []byte("bench")}
	h := ingest.New(ingest.Config{Keys: keys, Topic: topics.Discoveries, Validate: payload.Validate},
		client, ingest.NewMetrics(prometheus.NewRegistry()), discard)
	f := simFleet(b, 0)
	id := f.AgentID(0)
	for _, typ := range sim.AgentDiscoveryTypes() {
		body, err := json.Marshal(map[string]any{"agent_id": id, "discovery_type": typ, "payload": f.PayloadJSON(0, typ)})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(typ, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			// Requests in flight share produce batches, as under load.
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/api/v1/collect", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+keys.KeyFor(id))
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusAccepted {
						b.Fatalf("ingest answered %d: %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}

// scenarioHarness is scenario detection on goka's tester: the processor
// production runs, with its table codec, without Kafka.
type scenarioHarness struct {
	tt     *tester.Tester
	topics kafka.Topics
}

func newScenario(b *testing.B) *scenarioHarness {
	b.Helper()
	tt := tester.New(b)
	topics := kafka.DefaultTopics()
	proc, err := scenario.NewProcessor(nil, topics, scenario.NewMetrics(nil), discard, goka.WithTester(tt))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("scenario detection stopped with %v", err)
		}
	})
	return &scenarioHarness{tt: tt, topics: topics}
}

func envelope(b *testing.B, id, typ string, body []byte) []byte {
	b.Helper()
	raw, err := proto.Marshal(&fleetv1.Discovery{AgentId: id, DiscoveryType: typ, CollectedAt: timestamppb.Now(), Payload: body, Source: "ingest"})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkScenario is scenario detection per discovery: the fast path of
// an unchanged discovery of each type (a fingerprint compared, nothing
// decoded, nothing written), a heartbeat of a registered host, and a
// changed host_discovery (decoded, compared field by field, a command
// emitted, the state written).
func BenchmarkScenario(b *testing.B) {
	f := simFleet(b, 0)
	id := f.AgentID(0)
	for _, typ := range sim.AgentDiscoveryTypes() {
		b.Run("unchanged_"+typ, func(b *testing.B) {
			s := newScenario(b)
			value := envelope(b, id, typ, f.PayloadJSON(0, typ))
			s.tt.Consume(s.topics.Discoveries, id, value) // the first one is a change
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s.tt.Consume(s.topics.Discoveries, id, value)
			}
		})
	}
	b.Run("heartbeat", func(b *testing.B) {
		s := newScenario(b)
		s.tt.Consume(s.topics.Discoveries, id, envelope(b, id, payload.HostDiscovery, f.PayloadJSON(0, payload.HostDiscovery)))
		value := envelope(b, id, payload.Heartbeat, nil)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			s.tt.Consume(s.topics.Discoveries, id, value)
		}
	})
	b.Run("changed_host_discovery", func(b *testing.B) {
		s := newScenario(b)
		// A ring of successive discoveries of one host, each a change.
		changing := simFleet(b, 1)
		ring := make([][]byte, 256)
		for i := range ring {
			p, _ := changing.NextJSON(0, payload.HostDiscovery)
			ring[i] = envelope(b, id, payload.HostDiscovery, p)
		}
		s.tt.Consume(s.topics.Discoveries, id, ring[len(ring)-1]) // registers the host
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			s.tt.Consume(s.topics.Discoveries, id, ring[i%len(ring)])
			i++
		}
	})
}
