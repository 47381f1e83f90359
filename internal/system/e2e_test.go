package system_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/agent"
	"github.com/fleetstream/fleetstream/connectors/agent/sim"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/internal/chlocal"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/kafka/kafkatest"
	"github.com/fleetstream/fleetstream/internal/system"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

func TestMain(m *testing.M) { chlocal.Main(m) }

// pipeline is the whole system in this process: kfake, a real ClickHouse,
// every role on one loopback listener.
type pipeline struct {
	base string
	key  string
	// writeKey may also submit and control tasks.
	writeKey string
	brokers  []string
	topics   kafka.Topics
	keys     ingest.AgentKeys
	admin    *kadm.Client
}

// startPipeline starts the system; opts adjust its config before it starts.
func startPipeline(t *testing.T, opts ...func(*system.Config)) *pipeline {
	t.Helper()
	topics := kafkatest.Namespace(t, kafka.DefaultTopics())
	topics.Partitions = 4
	brokers := kafkatest.Cluster(t, topics)
	chAddr, db := chlocal.ForTest(t)
	userKey, err := api.GenerateKey("e2e", api.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	writeKey, err := api.GenerateKey("e2e-write", api.ScopeRead, api.ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := api.NewKeys(userKey, writeKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := system.Config{
		Brokers:           brokers,
		Topics:            topics,
		Replication:       1,
		ClickHouse:        clickhouse.Options{Addr: chAddr},
		Database:          db,
		AgentKeys:         ingest.AgentKeys{Secret: []byte("e2e-secret")},
		UserKeys:          keys,
		MaxBodyBytes:      32 << 10,
		SinkFlushInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
		Registry:          prometheus.NewRegistry(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := system.Prepare(ctx, cfg, true, true); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- system.Run(ctx, cfg, system.All(), lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("system stopped with %v", err)
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	p := &pipeline{base: "http://" + lis.Addr().String(), key: userKey.Secret, writeKey: writeKey.Secret, brokers: brokers, topics: topics, keys: cfg.AgentKeys, admin: kadm.NewClient(cl)}
	p.eventually(t, "the API is ready", func() error {
		code, _ := p.get(t, "/readyz")
		if code != http.StatusOK {
			return fmt.Errorf("readyz answered %d", code)
		}
		return nil
	})
	return p
}

// get calls the REST API with the user key and decodes the JSON answer.
func (p *pipeline) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("GET %s: %d with a bad JSON body %q", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func (p *pipeline) eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 60s", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// quiesce waits until every stage consumed everything written so far:
// scenario, then host, then the sink, each with no lag.
func (p *pipeline) quiesce(t *testing.T) {
	t.Helper()
	for _, g := range []string{p.topics.Group(kafka.ScenarioGroup), p.topics.Group(kafka.HostGroup), p.topics.Group(clickhouse.DefaultSinkGroup)} {
		p.eventually(t, "group "+g+" catches up", func() error {
			lags, err := p.admin.Lag(context.Background(), g)
			if err != nil {
				return err
			}
			if e := lags.Error(); e != nil {
				return e
			}
			if total := lags[g].Lag.Total(); total != 0 {
				return fmt.Errorf("lag %d", total)
			}
			if len(lags[g].Lag) == 0 {
				return fmt.Errorf("no committed offsets yet")
			}
			return nil
		})
	}
}

func (p *pipeline) endOffsets(t *testing.T, topic string) int64 {
	t.Helper()
	ends, err := p.admin.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	return total
}

// forEach runs f for every simulated host, a few at a time, like a fleet.
func forEach(t *testing.T, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				errs <- fmt.Errorf("host %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestTwoHundredHostsEndToEnd(t *testing.T) {
	const n = 200
	p := startPipeline(t)
	fleet, err := sim.New(sim.Config{N: n, Seed: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := agent.NewPublisher(agent.PublisherConfig{Server: p.base})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	publishAll := func() {
		forEach(t, n, func(i int) error {
			id := fleet.AgentID(i)
			if err := pub.Publish(ctx, id, p.keys.KeyFor(id), payload.HostDiscovery, fleet.Payload(i)); err != nil {
				return err
			}
			return pub.Heartbeat(ctx, id, p.keys.KeyFor(id))
		})
	}

	publishAll()
	p.quiesce(t)

	// Every host, through the view (always current) and the list (ClickHouse).
	for i := range n {
		want := fleet.Payload(i)
		code, h := p.get(t, "/api/v1/hosts/"+fleet.AgentID(i))
		if code != http.StatusOK {
			t.Fatalf("host %d: GET answered %d %v", i, code, h)
		}
		checkHost(t, h, fleet.AgentID(i), want, "3")
	}
	listed := p.listAll(t, "page_size=37")
	if len(listed) != n {
		t.Fatalf("list shows %d hosts, want %d", len(listed), n)
	}
	for i := range n {
		checkHost(t, listed[fleet.AgentID(i)], fleet.AgentID(i), fleet.Payload(i), "3")
	}
	if got := p.listAll(t, "hostname_prefix=sim-01"); len(got) != 100 {
		t.Errorf("hostname_prefix=sim-01 lists %d hosts, want 100 (sim-0100..sim-0199)", len(got))
	}
	if got := p.listAll(t, "health=passing&os="+url.QueryEscape(fleet.Payload(0).OSVersion)); len(got) == 0 || len(got) > n {
		t.Errorf("health and os filter listed %d hosts", len(got))
	}
	if got := p.listAll(t, "health=critical"); len(got) != 0 {
		t.Errorf("health=critical lists %d hosts, want none", len(got))
	}

	// Reposting unchanged discoveries adds no event.
	eventsBefore := p.endOffsets(t, p.topics.Events)
	publishAll()
	p.quiesce(t)
	if after := p.endOffsets(t, p.topics.Events); after != eventsBefore {
		t.Fatalf("reposting unchanged discoveries added %d events", after-eventsBefore)
	}
	for _, i := range []int{0, 57, n - 1} {
		if got := p.eventTypes(t, fleet.AgentID(i)); strings.Join(got, ",") != "HostRegistered,HeartbeatSucceeded,HostHealthChanged" {
			t.Fatalf("host %d history %v, want HostRegistered,HeartbeatSucceeded,HostHealthChanged", i, got)
		}
	}

	// A changed field adds exactly one HostDetailsUpdated naming it.
	changed := fleet.Payload(7)
	changed.CPUCount += 4
	id := fleet.AgentID(7)
	if err := pub.Publish(ctx, id, p.keys.KeyFor(id), payload.HostDiscovery, changed); err != nil {
		t.Fatal(err)
	}
	p.quiesce(t)
	if after := p.endOffsets(t, p.topics.Events); after != eventsBefore+1 {
		t.Fatalf("one changed field added %d events, want 1", after-eventsBefore)
	}
	p.eventually(t, "the change reaches ClickHouse", func() error {
		if got := p.eventTypes(t, id); strings.Join(got, ",") != "HostRegistered,HeartbeatSucceeded,HostHealthChanged,HostDetailsUpdated" {
			return fmt.Errorf("history %v", got)
		}
		return nil
	})
	_, ev := p.get(t, "/api/v1/hosts/"+id+"/events")
	last := ev["events"].([]any)[3].(map[string]any)
	if fields := fmt.Sprint(last["data"].(map[string]any)["changed_fields"]); fields != "[cpu_count]" {
		t.Errorf("HostDetailsUpdated names %s, want [cpu_count]", fields)
	}
	_, h := p.get(t, "/api/v1/hosts/"+id)
	checkHost(t, h, id, changed, "4")
	p.eventually(t, "the list shows version 4", func() error {
		listed := p.listAll(t, "hostname_prefix="+changed.Hostname)
		if v := listed[id]["version"]; v != "4" {
			return fmt.Errorf("version %v", v)
		}
		return nil
	})

	// Unknown ids and bad parameters get JSON errors.
	if code, body := p.get(t, "/api/v1/hosts/no-such-host"); code != http.StatusNotFound || body["message"] == nil {
		t.Errorf("unknown host: %d %v, want 404 with a message", code, body)
	}
	if code, _ := p.get(t, "/api/v1/hosts?page_size=abc"); code != http.StatusBadRequest {
		t.Errorf("page_size=abc: %d, want 400", code)
	}
}

// checkHost compares an API host with the payload its agent sent.
func checkHost(t *testing.T, h map[string]any, id string, want agent.HostPayload, version string) {
	t.Helper()
	if h == nil {
		t.Fatalf("host %s is missing", id)
	}
	d, _ := h["details"].(map[string]any)
	got := fmt.Sprint([]any{h["id"], d["hostname"], d["os_name"], d["os_version"], d["kernel_version"], d["arch"],
		d["cpu_count"], d["socket_count"], d["total_memory_mb"], d["ip_addresses"], d["agent_version"], h["version"], h["health"], h["heartbeat"]})
	exp := fmt.Sprint([]any{id, want.Hostname, want.OSName, want.OSVersion, want.KernelVersion, want.Arch,
		want.CPUCount, want.SocketCount, want.TotalMemoryMB, want.IPAddresses, want.AgentVersion, version, "passing", "passing"})
	if got != exp {
		t.Errorf("host %s:\n got  %s\n want %s", id, got, exp)
	}
}

// listAll pages through GET /api/v1/hosts?query and returns hosts by id,
// failing on a host listed twice.
func (p *pipeline) listAll(t *testing.T, query string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	token := ""
	for {
		q := query
		if token != "" {
			q += "&page_token=" + url.QueryEscape(token)
		}
		code, body := p.get(t, "/api/v1/hosts?"+q)
		if code != http.StatusOK {
			t.Fatalf("list %s: %d %v", q, code, body)
		}
		hosts, _ := body["hosts"].([]any)
		for _, h := range hosts {
			m := h.(map[string]any)
			id := m["id"].(string)
			if _, dup := out[id]; dup {
				t.Fatalf("host %s listed twice", id)
			}
			out[id] = m
		}
		token, _ = body["next_page_token"].(string)
		if token == "" {
			return out
		}
	}
}

func (p *pipeline) eventTypes(t *testing.T, id string) []string {
	t.Helper()
	code, body := p.get(t, "/api/v1/hosts/"+id+"/events")
	if code != http.StatusOK {
		t.Fatalf("events of %s: %d %v", id, code, body)
	}
	var types []string
	for _, e := range body["events"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	return types
}

func TestRejectedRequestsProduceNothing(t *testing.T) {
	p := startPipeline(t)
	id := "779cdd70-e9e2-58ca-b18a-bf3eb3f71244"
	good := `{"agent_id":"` + id + `","discovery_type":"host_discovery","payload":{"hostname":"suse","cpu_count":2}}`
	post := func(body string, header map[string]string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, p.base+"/api/v1/collect", strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("status %d without a JSON body: %v", resp.StatusCode, err)
		}
		return resp.StatusCode, out
	}
	auth := map[string]string{"Authorization": "Bearer " + p.keys.KeyFor(id)}
	before := p.endOffsets(t, p.topics.Discoveries)
	for _, c := range []struct {
		name   string
		body   string
		header map[string]string
		code   int
	}{
		{"malformed", `{"agent_id":`, auth, http.StatusBadRequest},
		{"unknown type", strings.Replace(good, "host_discovery", "fridge_discovery", 1), auth, http.StatusBadRequest},
		{"wrong field type", strings.Replace(good, `"cpu_count":2`, `"cpu_count":"2"`, 1), auth, http.StatusBadRequest},
		{"unauthenticated", good, nil, http.StatusUnauthorized},
		{"another agent's key", good, map[string]string{"Authorization": "Bearer " + p.keys.KeyFor("someone-else")}, http.StatusForbidden},
		{"a user API key is not an agent key", good, map[string]string{"Authorization": "Bearer " + p.key}, http.StatusUnauthorized},
		{"oversized", strings.Replace(good, `"suse"`, `"`+strings.Repeat("x", 40<<10)+`"`, 1), auth, http.StatusRequestEntityTooLarge},
	} {
		if code, body := post(c.body, c.header); code != c.code || body["message"] == "" {
			t.Errorf("%s: %d %v, want %d with a message", c.name, code, body, c.code)
		}
	}
	if code, _ := post(good, auth); code != http.StatusAccepted {
		t.Fatalf("a good request after the bad ones: %d", code)
	}
	if after := p.endOffsets(t, p.topics.Discoveries); after != before+1 {
		t.Fatalf("%d records produced, want only the good one", after-before)
	}
}
