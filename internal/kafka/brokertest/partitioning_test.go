package brokertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	"github.com/fleetstream/fleetstream/processors/scenario"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// The partitioning contract: the ingest endpoint (franz-go) writes each
// agent's discoveries to the partition where goka keeps the agent's state.
// goka stores a key's value in the local storage of the partition its
// input came from, but writes the table's changelog, and looks keys up, by
// its own hash: with another partitioner a processor misses its own state
// on lookups and loses it at every restart, silently. So: Sarama's hash
// partitioner agrees record by record; the processor finds every agent by
// key; a restarted instance with empty storage recognises every reposted
// discovery as unchanged; and a view of the table (the API's read path)
// finds every agent.
func TestIngestPartitionsLikeGoka(t *testing.T) {
	e := newEnv(t, 8)
	const n = 64
	keys := ingest.AgentKeys{Secret: []byte("partitioning-secret")}
	h := ingest.New(ingest.Config{Keys: keys, Topic: e.topics.Discoveries, MaxBodyBytes: 64 << 10, Validate: payload.Validate},
		e.client, ingest.NewMetrics(prometheus.NewRegistry()), e.logger)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	agents := make([]string, n)
	for i := range agents {
		agents[i] = uuid.NewSHA1(uuid.NameSpaceURL, fmt.Appendf(nil, "partitioning/%d", i)).String()
	}
	postAll := func() {
		t.Helper()
		for i, id := range agents {
			body := fmt.Sprintf(`{"agent_id":%q,"discovery_type":%q,"payload":{"hostname":"host-%d","cpu_count":2}}`,
				id, payload.HostDiscovery, i)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/collect", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+keys.KeyFor(id))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST /api/v1/collect for agent %d: %d", i, resp.StatusCode)
			}
		}
	}
	postAll()

	sp := sarama.NewHashPartitioner(e.topics.Discoveries)
	recs := kafkatest.ReadAll(t, e.seeds, e.topics.Discoveries)
	if len(recs) != n {
		t.Fatalf("%d discoveries on Kafka, want %d", len(recs), n)
	}
	used := map[int32]bool{}
	for _, r := range recs {
		want, err := sp.Partition(&sarama.ProducerMessage{Key: sarama.ByteEncoder(r.Key)}, e.topics.Partitions)
		if err != nil {
			t.Fatal(err)
		}
		if r.Partition != want {
			t.Errorf("ingest wrote agent %s to partition %d, Sarama's hash partitioner picks %d", r.Key, r.Partition, want)
		}
		used[r.Partition] = true
	}
	if len(used) < 4 {
		t.Fatalf("%d agents landed in only %d partitions: the checks prove little", n, len(used))
	}

	group := e.topics.Group(kafka.ScenarioGroup)
	newProcessor := func() *goka.Processor {
		t.Helper()
		p, err := scenario.NewProcessor(e.seeds, e.topics, scenario.NewMetrics(nil), e.logger,
			goka.WithTopicManagerBuilder(e.topicManager()), goka.WithStorageBuilder(storage.MemoryBuilder()))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := newProcessor()
	run := start(t, "scenario processor", first.Run)
	e.caughtUp(t, group)
	for i, id := range agents {
		v, err := first.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := v.(*fleetv1.ScenarioState); st.GetHost().GetHostname() != fmt.Sprintf("host-%d", i) {
			t.Errorf("the processor does not find agent %s by key: %v", id, v)
		}
	}
	run.stop(t)
	commands := len(kafkatest.ReadAll(t, e.seeds, e.topics.HostCommands))
	if commands != n {
		t.Fatalf("%d host commands for %d new agents, want one RegisterHost each", commands, n)
	}

	// A new instance without local storage, and every agent posts again.
	start(t, "restarted scenario processor", newProcessor().Run)
	postAll()
	e.caughtUp(t, group)
	if again := len(kafkatest.ReadAll(t, e.seeds, e.topics.HostCommands)) - commands; again != 0 {
		t.Errorf("after a restart, %d of %d unchanged discoveries were taken for new ones: their state was lost", again, n)
	}

	view, err := goka.NewView(e.seeds, goka.GroupTable(goka.Group(group)),
		kafka.ProtoCodec[fleetv1.ScenarioState, *fleetv1.ScenarioState]{},
		goka.WithViewTopicManagerBuilder(e.topicManager()), goka.WithViewStorageBuilder(storage.MemoryBuilder()))
	if err != nil {
		t.Fatal(err)
	}
	start(t, "scenario view", view.Run)
	eventually(t, 60*time.Second, "the view finds every agent by key", func() error {
		if !view.Recovered() {
			return fmt.Errorf("view still recovering")
		}
		for i, id := range agents {
			v, err := view.Get(id)
			if err != nil {
				return err
			}
			if st, _ := v.(*fleetv1.ScenarioState); st.GetHost().GetHostname() != fmt.Sprintf("host-%d", i) {
				return fmt.Errorf("agent %s not found by key", id)
			}
		}
		return nil
	})
}
