package ingest

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const (
	agentA = "779cdd70-e9e2-58ca-b18a-bf3eb3f71244"
	agentB = "9cd46919-5f19-59aa-993e-cf3736c71053"
)

type fixture struct {
	srv     *httptest.Server
	seeds   []string
	topics  kafka.Topics
	keys    AgentKeys
	metrics *Metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	topics := kafkatest.Namespace(t, kafka.DefaultTopics())
	topics.Partitions = 4
	seeds := kafkatest.Cluster(t, topics)
	client, err := kafka.NewClient(seeds)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	keys := AgentKeys{Secret: []byte("test-secret"), Enrollment: "shared-enrollment-key"}
	m := NewMetrics(prometheus.NewRegistry())
	h := New(Config{Keys: keys, Topic: topics.Discoveries, MaxBodyBytes: 64 << 10, Validate: payload.Validate}, client, m, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, seeds: seeds, topics: topics, keys: keys, metrics: m}
}

func (f *fixture) post(t *testing.T, path string, header map[string]string, body string) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]string
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s answered %d with a non-JSON body %q", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func bearer(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

func fixtureBody(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/trento/discovery/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCollectAcceptsAndProducesEnvelope(t *testing.T) {
	f := newFixture(t)
	body := fixtureBody(t, "host_discovery.json")

	code, resp := f.post(t, "/api/v1/collect", bearer(f.keys.KeyFor(agentA)), body)
	if code != http.StatusAccepted {
		t.Fatalf("collect: got %d %v, want 202", code, resp)
	}
	code, _ = f.post(t, "/api/v1/collect", map[string]string{"X-Trento-Apikey": "shared-enrollment-key"}, body)
	if code != http.StatusAccepted {
		t.Fatalf("collect with the Trento enrollment key: got %d, want 202", code)
	}
	code, _ = f.post(t, "/api/v1/hosts/"+agentA+"/heartbeat", map[string]string{"X-Trento-Apikey": "shared-enrollment-key"}, "")
	if code != http.StatusNoContent {
		t.Fatalf("heartbeat: got %d, want 204 (the Trento agent treats anything else as an error)", code)
	}

	recs := kafkatest.ReadAll(t, f.seeds, f.topics.Discoveries)
	if len(recs) != 3 {
		t.Fatalf("got %d records, want 3", len(recs))
	}
	var sent struct{ Payload json.RawMessage }
	if err := json.Unmarshal([]byte(body), &sent); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, r := range recs {
		if string(r.Key) != agentA {
			t.Errorf("record key %q, want the agent id", r.Key)
		}
		var d fleetv1.Discovery
		if err := proto.Unmarshal(r.Value, &d); err != nil {
			t.Fatalf("record is not a Discovery: %v", err)
		}
		if d.AgentId != agentA || d.CollectedAt == nil || d.Source != "ingest" {
			t.Errorf("envelope %v lacks agent, time or source", &d)
		}
		types[d.DiscoveryType]++
		if d.DiscoveryType == "host_discovery" && string(d.Payload) != string(sent.Payload) {
			t.Errorf("payload changed in transit:\n%s\nwant\n%s", d.Payload, sent.Payload)
		}
		hdr := map[string]string{}
		for _, h := range r.Headers {
			hdr[h.Key] = string(h.Value)
		}
		if hdr[kafka.HeaderSchema] != "fleetstream.v1.Discovery" || hdr[kafka.HeaderTraceID] == "" || hdr[kafka.HeaderContentType] == "" {
			t.Errorf("headers %v lack schema, trace id or content type", hdr)
		}
	}
	if types["host_discovery"] != 2 || types["heartbeat"] != 1 {
		t.Errorf("discovery types %v, want 2 host_discovery and 1 heartbeat", types)
	}
}

func TestCollectRejectsAndProducesNothing(t *testing.T) {
	f := newFixture(t)
	good := fixtureBody(t, "host_discovery.json")
	keyA := bearer(f.keys.KeyFor(agentA))
	huge := `{"agent_id":"` + agentA + `","discovery_type":"host_discovery","payload":{"x":"` + strings.Repeat("a", 70<<10) + `"}}`

	cases := []struct {
		name   string
		path   string
		header map[string]string
		body   string
		code   int
		field  string
	}{
		{"malformed JSON", "/api/v1/collect", keyA, `{"agent_id": "` + agentA + `", "discovery_type": `, 400, ""},
		{"trailing garbage", "/api/v1/collect", keyA, good + "}", 400, ""},
		{"unknown type", "/api/v1/collect", keyA, strings.Replace(good, `"host_discovery"`, `"toaster_discovery"`, 1), 400, "discovery_type"},
		{"missing agent id", "/api/v1/collect", keyA, `{"discovery_type":"host_discovery","payload":{}}`, 400, "agent_id"},
		{"agent id of the wrong type", "/api/v1/collect", keyA, `{"agent_id":42,"discovery_type":"host_discovery","payload":{}}`, 400, "agent_id"},
		{"missing payload", "/api/v1/collect", keyA, `{"agent_id":"` + agentA + `","discovery_type":"host_discovery"}`, 400, "payload"},
		{"null host payload", "/api/v1/collect", keyA, `{"agent_id":"` + agentA + `","discovery_type":"host_discovery","payload":null}`, 400, "payload"},
		{"scalar payload", "/api/v1/collect", keyA, `{"agent_id":"` + agentA + `","discovery_type":"host_discovery","payload":"hi"}`, 400, "payload"},
		{"host payload field of the wrong type", "/api/v1/collect", keyA, strings.Replace(good, `"cpu_count": 2`, `"cpu_count": "two"`, 1), 400, "payload.cpu_count"},
		{"host payload without hostname", "/api/v1/collect", keyA, strings.Replace(good, `"hostname": "suse",`, ``, 1), 400, "payload.hostname"},
		{"oversized", "/api/v1/collect", keyA, huge, 413, ""},
		{"no key", "/api/v1/collect", nil, good, 401, ""},
		{"unknown key", "/api/v1/collect", bearer("nope"), good, 401, ""},
		{"forged key", "/api/v1/collect", bearer(agentA + ".AAAA"), good, 401, ""},
		{"basic auth is not a bearer key", "/api/v1/collect", map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}, good, 401, ""},
		{"another agent's key", "/api/v1/collect", bearer(f.keys.KeyFor(agentB)), good, 403, ""},
		{"heartbeat with another agent's key", "/api/v1/hosts/" + agentA + "/heartbeat", bearer(f.keys.KeyFor(agentB)), "", 403, ""},
		{"heartbeat without key", "/api/v1/hosts/" + agentA + "/heartbeat", nil, "", 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := f.post(t, c.path, c.header, c.body)
			if code != c.code {
				t.Fatalf("got %d %v, want %d", code, body, c.code)
			}
			if body["message"] == "" || body["error"] == "" {
				t.Errorf("error body %v lacks error code or message", body)
			}
			if body["field"] != c.field {
				t.Errorf("field %q, want %q (message %q)", body["field"], c.field, body["message"])
			}
		})
	}
	if recs := kafkatest.ReadAll(t, f.seeds, f.topics.Discoveries); len(recs) != 0 {
		t.Fatalf("rejected requests produced %d records", len(recs))
	}
	if got := testutil.ToFloat64(f.metrics.requests.WithLabelValues("invalid", "400")); got < 5 {
		t.Errorf("metric of invalid requests = %v, want >= 5", got)
	}
}

func TestCollectAnswers503WhenKafkaIsGone(t *testing.T) {
	f := newFixture(t)
	// A client whose seed refuses connections: the produce times out.
	client, err := kafka.NewClient([]string{"127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	h := New(Config{Keys: f.keys, Topic: f.topics.Discoveries, ProduceTimeout: 300e6}, client, NewMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(h)
	defer srv.Close()
	f.srv = srv
	code, body := f.post(t, "/api/v1/collect", bearer(f.keys.KeyFor(agentA)), fixtureBody(t, "host_discovery.json"))
	if code != http.StatusServiceUnavailable || !strings.Contains(body["message"], "retry") {
		t.Fatalf("got %d %v, want 503 telling the agent to retry", code, body)
	}
}

// TestEveryTrentoFixture posts every real agent payload the way the agent
// does. All are accepted but the one the agent could not have sent; the
// ones whose names say "invalid" or "wrong" are real payloads a tolerant
// decoder must take, each named here with the reason.
func TestEveryTrentoFixture(t *testing.T) {
	f := newFixture(t)
	rejected := map[string]struct {
		field, reason string
	}{
		// The envelope's agent_id and discovery_type were written inside
		// the payload: no agent_id at the top level, so no agent sent it.
		"hana-scale-up-cost-opt/fa7a5602-232b-5389-96a6-f5f5de6ff9a2_saptune_discovery.json": {"agent_id", "agent_id is required"},
	}
	tolerated := map[string]string{
		"ha_cluster_discovery_ascs_ers_invalid.json":         "an ASCS/ERS cluster without its ERS group is a cluster of type unknown",
		"ha_cluster_discovery_malformed_resources_null.json": "a clone with null resources is a clone without resources",
		"host_discovery_with_last_boot_timestamp_wrong.json": "an unreadable last boot time is an unknown one",
		"host_discovery_with_prometheus_mode_invalid.json":   "prometheus fields are not part of the inventory and are ignored",
	}
	root := "../../testdata/fixtures/trento/"
	files, _ := filepath.Glob(root + "discovery/*.json")
	scenarios, _ := filepath.Glob(root + "scenarios/*/*.json")
	files = append(files, scenarios...)
	if len(files) < 131 {
		t.Fatalf("found %d fixtures, want the 131 committed", len(files))
	}
	accepted, seenRejected, seenTolerated := 0, 0, 0
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(path, root+"discovery/"), root+"scenarios/")
		code, resp := f.post(t, "/api/v1/collect", map[string]string{"X-Trento-Apikey": "shared-enrollment-key"}, string(raw))
		if want, ok := rejected[name]; ok {
			seenRejected++
			if code != http.StatusBadRequest || resp["field"] != want.field || !strings.Contains(resp["message"], want.reason) {
				t.Errorf("%s: %d %v, want 400 on %s: %s", name, code, resp, want.field, want.reason)
			}
			continue
		}
		if code != http.StatusAccepted {
			t.Errorf("%s: %d %v, want 202", name, code, resp)
			continue
		}
		accepted++
		if reason, ok := tolerated[filepath.Base(name)]; ok {
			seenTolerated++
			t.Logf("%s accepted: %s", name, reason)
		}
	}
	if seenRejected != len(rejected) || seenTolerated != len(tolerated) {
		t.Errorf("saw %d of %d rejected and %d of %d tolerated fixtures", seenRejected, len(rejected), seenTolerated, len(tolerated))
	}
	if recs := kafkatest.ReadAll(t, f.seeds, f.topics.Discoveries); len(recs) != accepted {
		t.Errorf("%d records for %d accepted fixtures", len(recs), accepted)
	}
}
