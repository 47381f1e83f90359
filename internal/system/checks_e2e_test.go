package system_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/connectors/agent/facts"
	"github.com/fleetstream/fleetstream/internal/system"
)

// The HANA scale-up cluster of the Trento fixtures: two Azure hosts.
const (
	checksScenario = "../../testdata/fixtures/trento/scenarios/hana-scale-up-cost-opt"
	checksCluster  = "81237d528fa520f993b5d6e1cd8e7138"
	// answering runs a facts service; silent has no agent.
	answering = "2372b24f-3d7a-5d01-9b1a-a2c4c95c53d4"
	silent    = "fa7a5602-232b-5389-96a6-f5f5de6ff9a2"
)

// executionTimeout is the system's default execution timeout in this
// test: how long the silent host keeps the execution running.
const executionTimeout = 4 * time.Second

// Two hosts of a HANA scale-up cluster register through the collect
// endpoint with their real Trento discoveries; continuous evaluation
// checks the cluster from the discovered facts at once. Then an on-demand
// execution asks both hosts for facts: one runs the real agent facts
// service (gatherers on a testdata root and fake tools), the other has no
// agent. The execution completes at the system's configured timeout with
// the silent host timed out, and the REST API shows it from the
// executions table and from ClickHouse.
func TestChecksExecutionWithASilentAgentEndToEnd(t *testing.T) {
	p := startPipeline(t, func(c *system.Config) {
		c.Checks.ExecutionTimeout = executionTimeout
		c.Checks.ExpiryInterval = 100 * time.Millisecond
		c.MaxBodyBytes = 1 << 20 // the cluster discoveries are up to 41 KiB
	})
	for _, agent := range []string{answering, silent} {
		for _, typ := range []string{"host_discovery", "cloud_discovery", "ha_cluster_discovery"} {
			p.postFixture(t, agent, filepath.Join(checksScenario, agent+"_"+typ+".json"))
		}
	}
	catalog := p.clusterCatalog(t)

	// Continuous evaluation: the checks that need only discovered facts
	// have results on both hosts, without any execution and without an
	// agent; checks needing gathered facts wait for them.
	var continuous map[string]map[string]any
	p.eventually(t, "the cluster's continuous results", func() error {
		code, body := p.get(t, "/api/v1/checks/targets/"+checksCluster)
		if code != http.StatusOK {
			return fmt.Errorf("HTTP %d %v", code, body)
		}
		continuous = byCheck(body["results"])
		if r := continuous["9FAAD0"]; r == nil || len(r["targets"].([]any)) != 2 {
			return fmt.Errorf("no result of 9FAAD0 on both hosts yet: %v", body)
		}
		return nil
	})
	_, target := p.get(t, "/api/v1/checks/targets/"+checksCluster)
	var continuousResults []string
	for id, r := range continuous {
		c, ok := catalog[id]
		switch {
		case !ok:
			t.Errorf("continuous result of %s, which is not a cluster check of the catalog for this cluster", id)
		case !c.derivedOnly:
			t.Errorf("continuous result of %s, which needs facts no agent has sent", id)
		case r["execution_id"] != "" || r["entity_type"] != "cluster" || r["group"] != c.group || r["severity"] != c.severity:
			t.Errorf("continuous result of %s: %v", id, r)
		}
		if got := targetIDs(r); !slices.Equal(got, []string{answering, silent}) {
			t.Errorf("continuous result of %s evaluated on %v, want both hosts", id, got)
		}
		continuousResults = append(continuousResults, r["result"].(string))
	}
	for id, c := range catalog {
		if c.derivedOnly && continuous[id] == nil {
			t.Errorf("derived-facts check %s has no continuous result", id)
		}
	}
	if r := continuous["9FAAD0"]; r["result"] != "warning" || !strings.Contains(fmt.Sprint(r["messages"]), "concurrent-fencing") {
		t.Errorf("9FAAD0 (concurrent-fencing unset in the fixture): %v", r)
	}
	if r := continuous["3A59DC"]; r["result"] != "passing" {
		t.Errorf("3A59DC (both nodes online in the fixture): %v", r)
	}
	health := worstResult(continuousResults...)
	if target["health"] != health {
		t.Errorf("the cluster's checks health %v, its worst result %s", target["health"], health)
	}
	// The checks health reaches the cluster aggregate: its checks
	// sub-health, and its health (at least as bad).
	p.eventually(t, "the cluster's checks sub-health", func() error {
		code, body := p.get(t, "/api/v1/clusters/"+checksCluster)
		c, _ := body["cluster"].(map[string]any)
		if code != http.StatusOK || c["checks_health"] != health || resultRank(c["health"].(string)) < resultRank(health) {
			return fmt.Errorf("HTTP %d: health %v, checks_health %v", code, c["health"], c["checks_health"])
		}
		return nil
	})

	// One agent answers, the other host is silent.
	startFactsAgent(t, p, answering, agentRoot(t))
	requested := time.Now()
	code, exec := p.postJSON(t, "/api/v1/checks/executions", map[string]any{"group_id": checksCluster})
	if code != http.StatusOK || exec["status"] != "running" {
		t.Fatalf("POST /api/v1/checks/executions: HTTP %d %v, want 200 and a running execution", code, exec)
	}
	id := exec["id"].(string)
	if got := fmt.Sprint(exec["targets"]); got != fmt.Sprint([]string{answering, silent}) {
		t.Errorf("execution targets %s, want both hosts", got)
	}
	deadline := parseTime(t, exec["deadline"]).Sub(parseTime(t, exec["requested_at"]))
	if deadline != executionTimeout {
		t.Errorf("the execution's deadline is %s after its request, want the configured %s", deadline, executionTimeout)
	}
	checkIDs := stringList(exec["check_ids"])
	for _, c := range checkIDs {
		if _, ok := catalog[c]; !ok {
			t.Errorf("the execution runs %s, not a catalog check for this cluster", c)
		}
	}
	for c := range continuous {
		if !slices.Contains(checkIDs, c) {
			t.Errorf("the execution does not run %s, which the cluster has selected", c)
		}
	}
	for _, c := range []string{"156F64", "24ABCB"} {
		if !slices.Contains(checkIDs, c) {
			t.Fatalf("the execution does not run the corosync check %s: %v", c, checkIDs)
		}
	}

	// A second request while it runs: 409, naming the running execution.
	code, conflict := p.postJSON(t, "/api/v1/checks/executions", map[string]any{"group_id": checksCluster})
	if msg, _ := conflict["message"].(string); code != http.StatusConflict || !strings.Contains(msg, "execution "+id+" is running on "+checksCluster) {
		t.Errorf("a second request while %s runs: HTTP %d %v, want 409 naming it", id, code, conflict)
	}

	p.eventually(t, "the execution completes", func() error {
		code, body := p.get(t, "/api/v1/checks/executions/"+id+"?group_id="+checksCluster)
		if code != http.StatusOK || body["status"] != "completed" {
			return fmt.Errorf("HTTP %d: %v", code, body["status"])
		}
		exec = body
		return nil
	})
	took := time.Since(requested)
	if took < executionTimeout-time.Second {
		t.Errorf("the execution completed after %s, before the silent host's timeout %s", took, executionTimeout)
	}
	if got := parseTime(t, exec["completed_at"]); !got.Equal(parseTime(t, exec["deadline"])) {
		t.Errorf("completed at %s, want its deadline %s (completion by timeout)", got, exec["deadline"])
	}
	if a, to := stringList(exec["answered"]), stringList(exec["timed_out"]); !slices.Equal(a, []string{answering}) || !slices.Equal(to, []string{silent}) {
		t.Errorf("answered %v, timed out %v; want %s answered and %s timed out", a, to, answering, silent)
	}
	results := byCheck(exec["check_results"])
	if got := keysSorted(results); !slices.Equal(got, checkIDs) {
		t.Errorf("results of %v, want one per check %v", got, checkIDs)
	}
	var execResults []string
	for id, r := range results {
		execResults = append(execResults, r["result"].(string))
		ts := byTarget(r)
		a, s := ts[answering], ts[silent]
		if a == nil || s == nil || len(ts) != 2 {
			t.Errorf("%s: targets %v, want both hosts", id, r["targets"])
			continue
		}
		// The silent host is timed out, and so the check critical.
		if s["timed_out"] != true || s["result"] != "critical" || !strings.Contains(fmt.Sprint(s["messages"]), "did not answer in time") {
			t.Errorf("%s on the silent host: %v, want timed out and critical", id, s)
		}
		if r["result"] != "critical" || r["execution_id"] != exec["id"] || r["entity_id"] != checksCluster || r["group"] != catalog[id].group {
			t.Errorf("%s: %v, want critical for the timed-out host", id, r)
		}
		// The answering host is evaluated on what its agent gathered.
		if a["timed_out"] == true || a["error"] != "" || a["result"] == "" {
			t.Errorf("%s on the answering host: %v, want an evaluation of its facts", id, a)
		}
		// Derived-facts checks evaluate as continuous evaluation does.
		if c := continuous[id]; c != nil {
			if want := byTarget(c)[answering]["result"]; a["result"] != want {
				t.Errorf("%s on the answering host: %v in the execution, %v continuously", id, a["result"], want)
			}
		}
	}
	if a := byTarget(results["24ABCB"])[answering]; a["result"] != "warning" || !strings.Contains(fmt.Sprint(a["messages"]), "max_messages' is '10'") {
		t.Errorf("24ABCB on the answering host (max_messages: 10 in its corosync.conf): %v", a)
	}
	if a := byTarget(results["156F64"])[answering]; a["result"] != "passing" {
		t.Errorf("156F64 on the answering host (token 30000, expected on Azure): %v", a)
	}
	if exec["result"] != worstResult(execResults...) || exec["result"] != "critical" {
		t.Errorf("execution result %v, its worst check %s", exec["result"], worstResult(execResults...))
	}

	// The ClickHouse read model: the execution by id, the group's last,
	// the list, and its results per entity and per check.
	p.eventually(t, "the completed execution in ClickHouse", func() error {
		code, body := p.get(t, "/api/v1/checks/executions?group_id="+checksCluster)
		list, _ := body["executions"].([]any)
		if code != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["status"] != "completed" {
			return fmt.Errorf("HTTP %d: %v", code, body)
		}
		return nil
	})
	_, listed := p.get(t, "/api/v1/checks/executions?group_id="+checksCluster)
	sameExecution(t, "listed", listed["executions"].([]any)[0].(map[string]any), exec)
	for q, want := range map[string]int{"status=completed&result=critical": 1, "status=running": 0, "result=passing": 0} {
		_, body := p.get(t, "/api/v1/checks/executions?group_id="+checksCluster+"&"+q)
		if got := len(body["executions"].([]any)); got != want {
			t.Errorf("executions?%s: %d, want %d", q, got, want)
		}
	}
	code, byID := p.get(t, "/api/v1/checks/executions/"+id)
	if code != http.StatusOK {
		t.Fatalf("GET the execution by id alone: HTTP %d %v", code, byID)
	}
	sameExecution(t, "by id", byID, exec)
	code, last := p.get(t, "/api/v1/checks/executions/last/"+checksCluster)
	if code != http.StatusOK || last["running"] != nil {
		t.Fatalf("last execution: HTTP %d %v", code, last)
	}
	sameExecution(t, "last", last["last"].(map[string]any), exec)

	p.eventually(t, "the execution's results in ClickHouse", func() error {
		got := p.checkResults(t, "execution_id="+id)
		if len(got) != len(checkIDs) {
			return fmt.Errorf("%d results, want %d", len(got), len(checkIDs))
		}
		return nil
	})
	for id, r := range p.checkResults(t, "entity_id="+checksCluster+"&source=execution") {
		if r["result"] != results[id]["result"] || fmt.Sprint(r["targets"]) != fmt.Sprint(results[id]["targets"]) {
			t.Errorf("stored execution result of %s: %v, the execution has %v", id, r, results[id])
		}
	}
	current := p.checkResults(t, "entity_id="+checksCluster+"&current=true")
	if got, want := keysSorted(current), keysSorted(continuous); !slices.Equal(got, want) {
		t.Errorf("current results of %v, want the continuous ones %v", got, want)
	}
	for id, r := range current {
		if r["result"] != continuous[id]["result"] || r["execution_id"] != "" {
			t.Errorf("current result of %s: %v, want %v", id, r, continuous[id]["result"])
		}
	}
	// Per check, the history: continuous rows (one per change: a host
	// joining the cluster changes the targets) that never drop the result
	// while a joining host's facts are in transit, then the execution's.
	for _, check := range []string{"24ABCB", "9FAAD0"} {
		_, body := p.get(t, "/api/v1/checks/results?check_id="+check)
		var history, execs []string
		for _, r := range body["results"].([]any) {
			r := r.(map[string]any)
			if r["entity_id"] != checksCluster {
				t.Errorf("results of check %s: a result of %v", check, r["entity_id"])
			}
			if r["execution_id"] == "" {
				history = append(history, r["result"].(string))
			} else {
				execs = append(execs, r["execution_id"].(string)+"/"+r["result"].(string))
			}
		}
		if !slices.Equal(execs, []string{id + "/critical"}) {
			t.Errorf("execution results of check %s: %v, want %s/critical", check, execs, id)
		}
		c := continuous[check]
		if c == nil {
			if len(history) != 0 {
				t.Errorf("continuous results of check %s, which needs gathered facts: %v", check, history)
			}
			continue
		}
		if len(history) == 0 || slices.Contains(history, "") || history[len(history)-1] != c["result"] {
			t.Errorf("continuous history of check %s: %q, want changes ending at %v and no removal", check, history, c["result"])
		}
	}

	// Compliance counts continuous evaluation: one cluster per check, per
	// group the sum of its checks; the execution changes none.
	code, comp := p.get(t, "/api/v1/checks/compliance?entity_type=cluster")
	buckets, _ := comp["buckets"].([]any)
	if code != http.StatusOK || len(buckets) == 0 {
		t.Fatalf("compliance: HTTP %d %v", code, comp)
	}
	end := buckets[len(buckets)-1].(map[string]any)
	wantGroups := map[string][3]int{}
	gotChecks := map[string][3]int{}
	for _, c := range end["checks"].([]any) {
		c := c.(map[string]any)
		gotChecks[c["check_id"].(string)] = complianceCounts(c)
	}
	for id, r := range continuous {
		var w [3]int
		w[resultRank(r["result"].(string))]++
		if gotChecks[id] != w {
			t.Errorf("compliance of %s: passing/warning/critical %v, want %v", id, gotChecks[id], w)
		}
		g := wantGroups[r["group"].(string)]
		g[resultRank(r["result"].(string))]++
		wantGroups[r["group"].(string)] = g
	}
	if len(gotChecks) != len(continuous) {
		t.Errorf("compliance counts %d checks, want %d", len(gotChecks), len(continuous))
	}
	gotGroups := map[string][3]int{}
	for _, g := range end["groups"].([]any) {
		g := g.(map[string]any)
		gotGroups[g["group"].(string)] = complianceCounts(g)
	}
	if fmt.Sprint(gotGroups) != fmt.Sprint(wantGroups) {
		t.Errorf("compliance per group %v, want %v", gotGroups, wantGroups)
	}
	_, pm := p.get(t, "/api/v1/checks/compliance?group=Pacemaker")
	pb := pm["buckets"].([]any)
	for _, g := range pb[len(pb)-1].(map[string]any)["groups"].([]any) {
		if g := g.(map[string]any); g["group"] != "Pacemaker" {
			t.Errorf("compliance?group=Pacemaker counts group %v", g["group"])
		}
	}
}

// catalogCheck is what the test needs of a catalog check.
type catalogCheck struct {
	group, severity string
	// derivedOnly: all its facts are derived from discoveries.
	derivedOnly bool
}

// clusterCatalog lists the catalog's checks for the fixture's cluster
// (Azure, HANA scale-up) through the API.
func (p *pipeline) clusterCatalog(t *testing.T) map[string]catalogCheck {
	t.Helper()
	code, body := p.get(t, "/api/v1/checks/catalog?target_type=cluster&provider=azure&cluster_type=hana_scale_up")
	if code != http.StatusOK {
		t.Fatalf("catalog: HTTP %d %v", code, body)
	}
	out := map[string]catalogCheck{}
	for _, c := range body["checks"].([]any) {
		c := c.(map[string]any)
		cc := catalogCheck{group: c["group"].(string), severity: c["severity"].(string), derivedOnly: true}
		for _, f := range c["facts"].([]any) {
			if !strings.HasPrefix(f.(map[string]any)["gatherer"].(string), "discovery.") {
				cc.derivedOnly = false
			}
		}
		out[c["id"].(string)] = cc
	}
	return out
}

// checkResults lists check results (every page) by check id; a check listed
// twice fails.
func (p *pipeline) checkResults(t *testing.T, query string) map[string]map[string]any {
	t.Helper()
	code, body := p.get(t, "/api/v1/checks/results?page_size=1000&"+query)
	if code != http.StatusOK || body["next_page_token"] != "" {
		t.Fatalf("results?%s: HTTP %d %v", query, code, body)
	}
	out := map[string]map[string]any{}
	for _, r := range body["results"].([]any) {
		r := r.(map[string]any)
		id := r["check_id"].(string)
		if out[id] != nil {
			t.Fatalf("results?%s lists %s twice", query, id)
		}
		out[id] = r
	}
	return out
}

// sameExecution compares a read of the execution with the completed one.
func sameExecution(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for _, k := range []string{"id", "group_id", "status", "result", "targets", "answered", "timed_out", "check_ids", "requested_at", "deadline", "completed_at"} {
		if fmt.Sprint(got[k]) != fmt.Sprint(want[k]) {
			t.Errorf("execution %s: %s %v, want %v", what, k, got[k], want[k])
		}
	}
	g, w := byCheck(got["check_results"]), byCheck(want["check_results"])
	if len(g) != len(w) {
		t.Errorf("execution %s: %d check results, want %d", what, len(g), len(w))
	}
	for id, r := range w {
		if g[id]["result"] != r["result"] || fmt.Sprint(g[id]["targets"]) != fmt.Sprint(r["targets"]) {
			t.Errorf("execution %s: result of %s %v, want %v", what, id, g[id], r)
		}
	}
}

func byCheck(results any) map[string]map[string]any {
	out := map[string]map[string]any{}
	list, _ := results.([]any)
	for _, r := range list {
		r := r.(map[string]any)
		out[r["check_id"].(string)] = r
	}
	return out
}

func byTarget(result map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	list, _ := result["targets"].([]any)
	for _, tr := range list {
		tr := tr.(map[string]any)
		out[tr["target_id"].(string)] = tr
	}
	return out
}

func targetIDs(result map[string]any) []string {
	return keysSorted(byTarget(result))
}

func keysSorted[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.(string)
	}
	return out
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return at
}

// resultRank orders passing, warning, critical; anything else (error) ranks
// past critical.
func resultRank(result string) int {
	switch result {
	case "passing":
		return 0
	case "warning":
		return 1
	case "critical":
		return 2
	}
	return 3
}

// worstResult is the worst of results, "error" counting as critical.
func worstResult(results ...string) string {
	w := "passing"
	for _, r := range results {
		if r == "error" {
			r = "critical"
		}
		if resultRank(r) > resultRank(w) {
			w = r
		}
	}
	return w
}

// complianceCounts reads a compliance count's passing, warning and critical.
func complianceCounts(c map[string]any) [3]int {
	var out [3]int
	for i, k := range []string{"passing", "warning", "critical"} {
		var n int
		fmt.Sscan(fmt.Sprint(c[k]), &n)
		out[i] = n
	}
	return out
}

// postFixture posts a Trento discovery fixture (agent_id, discovery_type,
// payload) through the ingest endpoint with the agent's key.
func (p *pipeline) postFixture(t *testing.T, agent, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p.collect(t, agent, filepath.Base(path), raw)
}

// postJSON sends body as JSON with the write key and decodes the answer.
func (p *pipeline) postJSON(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	return p.send(t, http.MethodPost, path, p.writeKey, body)
}

// agentTestdata is the facts package's testdata: a machine's root and
// the outputs of its tools.
const agentTestdata = "../../connectors/agent/facts/testdata"

// agentRoot is a copy of the facts package's testdata root whose
// corosync.conf sets max_messages to 10 (the catalog expects 20), so the
// answering host fails one check for a reason only its gathered facts
// show.
func agentRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join(agentTestdata, "root"))); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "etc/corosync/corosync.conf")
	raw, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(raw), "max_messages: 20", "max_messages: 10", 1)
	if changed == string(raw) {
		t.Fatal("the testdata corosync.conf no longer sets max_messages: 20")
	}
	if err := os.WriteFile(conf, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// agentTools is a directory of the tools the gatherers run, as scripts
// printing the facts package's testdata (rpm: one version for every
// package).
func agentTools(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	abs := func(name string) string {
		p, err := filepath.Abs(filepath.Join(agentTestdata, name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, body := range map[string]string{
		"cibadmin": "cat " + abs("cib.xml"),
		"saptune":  "cat " + abs("saptune-status.json"),
		"rpm":      "echo 2.1.7+20231107.1a2d6c1a-150600.3.3",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startFactsAgent runs the agent's facts service (answers only, no
// periodic gathering) on the pipeline's Kafka until the test ends.
func startFactsAgent(t *testing.T, p *pipeline, agent, root string) {
	t.Helper()
	metrics := facts.NewMetrics(prometheus.NewRegistry())
	svc, err := facts.NewService(facts.ServiceConfig{
		AgentID:   agent,
		Brokers:   p.brokers,
		Topics:    p.topics,
		Gatherers: facts.NewRegistry(facts.Config{Root: root, Path: []string{agentTools(t)}, Metrics: metrics}),
		Metrics:   metrics,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("facts service stopped with %v", err)
		}
	})
}
