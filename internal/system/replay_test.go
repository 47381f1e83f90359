package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/system"
)

const scenarioDir = "../../testdata/fixtures/trento/scenarios"

// discovery is one fixture of a scenario: what the Trento agent posted.
type discovery struct {
	file    string
	agentID string
	body    []byte
}

func loadScenario(t *testing.T, name string) []discovery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(scenarioDir, name, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("scenario %s has no fixtures (%v)", name, err)
	}
	var out []discovery
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			AgentID string `json:"agent_id"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if env.AgentID == "" {
			// The ingest rejects it (connectors/ingest TestEveryTrentoFixture).
			continue
		}
		out = append(out, discovery{file: filepath.Base(f), agentID: env.AgentID, body: raw})
	}
	return out
}

// agentPost sends what the Trento agent sends: body (nil for a
// heartbeat) to path with the agent's key in X-Trento-Apikey. It returns
// the status and the answer's body.
func (p *pipeline) agentPost(ctx context.Context, agent, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Trento-Apikey", p.keys.KeyFor(agent))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return resp.StatusCode, answer, err
}

// collect posts one discovery as its agent and fails unless it is accepted.
func (p *pipeline) collect(t *testing.T, agent, name string, body []byte) {
	t.Helper()
	code, answer, err := p.agentPost(context.Background(), agent, "/api/v1/collect", body)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/collect %s: %d %s, want 202", name, code, answer)
	}
}

// replay posts every discovery the way the Trento agent does and a
// heartbeat per agent; it returns the requests per second the ingest
// answered.
func (p *pipeline) replay(t *testing.T, ds []discovery) float64 {
	t.Helper()
	start := time.Now()
	agents := map[string]bool{}
	for _, d := range ds {
		p.collect(t, d.agentID, d.file, d.body)
		agents[d.agentID] = true
	}
	for id := range agents {
		code, answer, err := p.agentPost(context.Background(), id, "/api/v1/hosts/"+id+"/heartbeat", nil)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusNoContent {
			t.Fatalf("heartbeat of %s: %d %s, want 204", id, code, answer)
		}
	}
	return float64(len(ds)+len(agents)) / time.Since(start).Seconds()
}

// settle waits until every processor and the sink consumed everything and
// no topic grew for a while: the discovery domain's processors feed each
// other (reactions, loops), so one pass of zero lags is not enough.
func (p *pipeline) settle(t *testing.T) {
	t.Helper()
	groups := []string{kafka.ScenarioGroup, kafka.HostGroup, kafka.ClusterGroup, kafka.SapSystemGroup, kafka.DatabaseGroup,
		kafka.MembershipGroup, kafka.SapDatabasesGroup, kafka.ChecksGroup, kafka.ExecutionsGroup, clickhouse.DefaultSinkGroup}
	last := int64(-1)
	stable := 0
	p.eventually(t, "every group catches up and the event store stops growing", func() error {
		for _, g := range groups {
			g = p.topics.Group(g)
			lags, err := p.admin.Lag(context.Background(), g)
			if err != nil {
				return err
			}
			if e := lags.Error(); e != nil {
				return e
			}
			if total := lags[g].Lag.Total(); total != 0 {
				stable = 0
				return fmt.Errorf("group %s lags %d", g, total)
			}
		}
		end := p.endOffsets(t, p.topics.Events) + p.endOffsets(t, p.topics.ChecksResults)
		if end != last {
			last, stable = end, 0
			return fmt.Errorf("event store at %d", end)
		}
		if stable++; stable < 5 {
			return fmt.Errorf("event store at %d for %d polls", end, stable)
		}
		return nil
	})
}

// bigBodies lets the ingest take the largest real cluster payloads (40 KiB).
func bigBodies(c *system.Config) { c.MaxBodyBytes = 1 << 20 }

// listAllOf pages through one list endpoint and returns its items.
func (p *pipeline) listAllOf(t *testing.T, collection, query string) []map[string]any {
	t.Helper()
	var out []map[string]any
	token := ""
	for {
		q := "page_size=50&" + query
		if token != "" {
			q += "&page_token=" + token
		}
		code, body := p.get(t, "/api/v1/"+collection+"?"+q)
		if code != http.StatusOK {
			t.Fatalf("list %s?%s: %d %v", collection, q, code, body)
		}
		items, _ := body[collection].([]any)
		for _, it := range items {
			out = append(out, it.(map[string]any))
		}
		token, _ = body["next_page_token"].(string)
		if token == "" {
			return out
		}
	}
}

// landscape is what the REST API shows of a whole landscape, one sorted
// line per entity, without what differs between two replays (versions,
// times, ids derived from nothing but names are kept: they are stable).
func (p *pipeline) landscape(t *testing.T) []string {
	t.Helper()
	var lines []string
	for _, h := range p.listAllOf(t, "hosts", "") {
		d, _ := h["details"].(map[string]any)
		prov, _ := h["provider"].(map[string]any)
		lines = append(lines, fmt.Sprintf("host %v hostname=%v provider=%v heartbeat=%v saptune=%v",
			h["id"], d["hostname"], prov["provider"], h["heartbeat"], h["saptune_health"]))
		assertWorst(t, fmt.Sprint("host ", h["id"]), h["health"], h["heartbeat"], h["saptune_health"], h["checks_health"])
	}
	for _, c := range p.listAllOf(t, "clusters", "") {
		d, _ := c["details"].(map[string]any)
		hosts, _ := c["hosts"].([]any)
		lines = append(lines, fmt.Sprintf("cluster %v type=%v arch=%v sids=%v hosts=%d discovered=%v",
			c["name"], c["type"], d["architecture"], d["hana_sids"], len(hosts), c["discovered_health"]))
		subs := []any{c["checks_health"]}
		for _, h := range c["discovered_health"].(map[string]any) {
			subs = append(subs, h)
		}
		assertWorst(t, fmt.Sprint("cluster ", c["name"]), c["health"], subs...)
	}
	for _, s := range p.listAllOf(t, "sap_systems", "") {
		inst, _ := s["application_instances"].([]any)
		lines = append(lines, fmt.Sprintf("sap_system %v type=%v instances=%d database=%v health=%v",
			s["sid"], s["type"], len(inst), s["database_sid"], s["health"]))
	}
	for _, d := range p.listAllOf(t, "databases", "") {
		inst, _ := d["instances"].([]any)
		lines = append(lines, fmt.Sprintf("database %v instances=%d tenants=%v health=%v", d["sid"], len(inst), d["tenants"], d["health"]))
	}
	slices.Sort(lines)
	return lines
}

// replayScenarios is what the API must show after each scenario of real
// agent payloads, one line per entity as landscape writes it. Hosts exist
// only where the agent sent a host_discovery (a cloud or saptune discovery
// of an unknown host is rejected by its aggregate); a SAP system exists
// only once it has an ABAP or J2EE instance, a message server and a known
// database, which is why NWD (a lone dialog instance) and NWJ (its
// database is not part of the scenario) are held, not shown.
var replayScenarios = map[string][]string{
	"hana-cluster-details": {
		"cluster hana_angi type=hana_scale_up arch=angi sids=[HN9] hosts=1 discovered=map[distribution:unknown replication:critical sbd:passing]",
		"cluster hana_cluster_3 type=hana_scale_up arch=classic sids=[HDP] hosts=2 discovered=map[distribution:unknown replication:passing sbd:passing]",
	},
	"hana-database-details": {
		"database HDD instances=2 tenants=[HDD] health=unknown",
	},
	"hana-scale-up-angi": {
		"cluster hana_angi type=hana_scale_up arch=angi sids=[HN9] hosts=2 discovered=map[distribution:unknown replication:passing sbd:passing]",
		"database HN9 instances=2 tenants=[HN9] health=passing",
		"host 4b67842f-ccf7-46a4-a344-9e918648b117 hostname=vmangi02 provider=azure heartbeat=passing saptune=passing",
		"host 851a4dd3-9693-44c3-a40b-b32d22872e74 hostname=vmangi01 provider=azure heartbeat=passing saptune=passing",
	},
	"hana-scale-up-cost-opt": {
		"cluster hana_cost_opt type=hana_scale_up arch=classic sids=[HDC] hosts=2 discovered=map[distribution:unknown replication:passing sbd:passing]",
		"database HDC instances=2 tenants=[HDC] health=passing",
		"database QAS instances=1 tenants=[QAS] health=passing",
		// saptune reports "tuning state: not compliant".
		"host 2372b24f-3d7a-5d01-9b1a-a2c4c95c53d4 hostname=vmhdbcost02 provider=azure heartbeat=passing saptune=critical",
		// Its saptune fixture is the one the ingest rejects.
		"host fa7a5602-232b-5389-96a6-f5f5de6ff9a2 hostname=vmhdbcost01 provider=azure heartbeat=passing saptune=unknown",
	},
	"host-details":       nil,
	"hosts-overview":     nil,
	"sap-system-details": nil,
	"sap-system-java": {
		"host a18a203d-4f2f-4d21-b9a5-e300a9c5eeee hostname=vmnwjava01 provider=azure heartbeat=passing saptune=passing",
	},
	"single-hana-single-app": {
		"database PRD instances=1 tenants=[PRD] health=passing",
		"host c4914bd4-efa3-553a-9a52-e9b562e210e5 hostname=trento-hana01 provider=aws heartbeat=passing saptune=unknown",
		"host e77ab524-c4e4-5381-bb59-5af8639d52a4 hostname=trento-vmnetweaver01 provider=aws heartbeat=passing saptune=unknown",
		"sap_system HA1 type=abap instances=2 database=PRD health=passing",
	},
}

// lastWords splits a scenario into what comes before each agent's last
// discovery of each type and those last discoveries. A landscape (one
// discovery per agent and type) is all last words; a directory of variants
// (several discoveries of one agent and type, e.g. GREEN, RED, YELLOW)
// ends with the variant that sorts last.
func lastWords(ds []discovery) (before, last []discovery) {
	at := map[string]int{}
	for i, d := range ds {
		at[d.agentID+" "+discoveryType(d.body)] = i
	}
	for i, d := range ds {
		if at[d.agentID+" "+discoveryType(d.body)] == i {
			last = append(last, d)
		} else {
			before = append(before, d)
		}
	}
	return before, last
}

// shuffled reorders a scenario: a landscape whole; in a directory of
// variants, what comes before the last words, which stay at the end in
// order: the final state may depend on each agent's last word, not on the
// history before it.
func shuffled(ds []discovery, rng *rand.Rand) []discovery {
	before, last := lastWords(ds)
	if len(before) == 0 {
		before, last = slices.Clone(last), nil
	}
	rng.Shuffle(len(before), func(i, j int) { before[i], before[j] = before[j], before[i] })
	return append(before, last...)
}

func discoveryType(body []byte) string {
	var env struct {
		DiscoveryType string `json:"discovery_type"`
	}
	_ = json.Unmarshal(body, &env)
	return env.DiscoveryType
}

// TestReplayScenarios replays every scenario of real agent payloads through
// the ingest, then again (no new event), then shuffled into a fresh system
// (the same state).
func TestReplayScenarios(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(scenarioDir, "*"))
	if len(dirs) != len(replayScenarios) {
		t.Fatalf("%d scenario directories, %d with expectations", len(dirs), len(replayScenarios))
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("shuffle seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, dir := range dirs {
		name := filepath.Base(dir)
		want, ok := replayScenarios[name]
		if !ok {
			t.Fatalf("scenario %s has no expectations", name)
		}
		t.Run(name, func(t *testing.T) {
			ds := loadScenario(t, name)
			p := startPipeline(t, bigBodies)
			start := time.Now()
			rate := p.replay(t, ds)
			p.settle(t)
			t.Logf("%d requests at %.0f/s, settled after %v", len(ds), rate, time.Since(start).Round(time.Millisecond))
			assertLandscape(t, p, want)

			// Every agent repeats its last word, as it does every period.
			events := p.endOffsets(t, p.topics.Events)
			_, last := lastWords(ds)
			p.replay(t, last)
			p.settle(t)
			if after := p.endOffsets(t, p.topics.Events); after != events {
				t.Errorf("replaying %s again added %d events", name, after-events)
			}
			assertLandscape(t, p, want)

			order := shuffled(ds, rng)
			q := startPipeline(t, bigBodies)
			q.replay(t, order)
			q.settle(t)
			if got := q.landscape(t); !slices.Equal(got, want) {
				var files []string
				for _, d := range order {
					files = append(files, d.file)
				}
				t.Errorf("shuffled replay (%s):\n got  %s\n want %s", strings.Join(files, ", "), strings.Join(got, "\n      "), strings.Join(want, "\n      "))
			}
		})
	}
}

// assertWorst: an entity's health is the worst of its sub-healths, unknown
// meaning "not evaluated". The checks' part follows the catalog, so the
// landscape lines leave health out and this asserts the rule instead.
func assertWorst(t *testing.T, what string, health any, subs ...any) {
	t.Helper()
	rank := map[any]int{"passing": 1, "warning": 2, "critical": 3}
	worst := any("unknown")
	for _, h := range subs {
		if rank[h] > rank[worst] {
			worst = h
		}
	}
	if health != worst {
		t.Errorf("%s: health %v, want %v, the worst of %v", what, health, worst, subs)
	}
}

func assertLandscape(t *testing.T, p *pipeline, want []string) {
	t.Helper()
	if got := p.landscape(t); !slices.Equal(got, want) {
		t.Errorf("landscape:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}
