package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/internal/system"
	cloudresource "github.com/fleetstream/fleetstream/processors/cloud_resource"
	"github.com/fleetstream/fleetstream/processors/host"
	"github.com/fleetstream/fleetstream/processors/links"
	"github.com/fleetstream/fleetstream/processors/membership"
	"github.com/fleetstream/fleetstream/processors/scenario"
)

// recorder keeps the collectors registered with it.
type recorder struct{ collectors []prometheus.Collector }

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}
func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}
func (r *recorder) Unregister(prometheus.Collector) bool { return false }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// seriesNames returns every series name the roles export: their metrics
// as their NewMetrics functions register them (histograms with _bucket,
// _sum and _count), and the Go and process collectors every role's
// registry starts with (system.NewRegistry).
func seriesNames(t *testing.T) map[string]bool {
	t.Helper()
	rec := &recorder{}
	ingest.NewMetrics(rec)
	scenario.NewMetrics(rec)
	host.NewMetrics(rec)
	cloudresource.NewMetrics(rec)
	links.NewMetrics(rec)
	membership.NewMetrics(rec)
	clickhouse.NewMetrics(rec)
	api.NewMetrics(rec)
	tasks.NewMetrics(rec)
	collectors.NewMetrics(rec)
	names := map[string]bool{}
	for _, c := range rec.collectors {
		_, observes := c.(interface{ Observe(float64) })
		_, observesVec := c.(*prometheus.HistogramVec)
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fqName.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			names[m[1]] = true
			if observes || observesVec {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					names[m[1]+s] = true
				}
			}
		}
	}
	families, err := system.NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		names[f.GetName()] = true
	}
	return names
}

// dashboard is the part of Grafana's dashboard model the checks read.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos *struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var grafanaVariable = regexp.MustCompile(`\$\{?(\w+)\}?`)

// selectors parses a PromQL expression, with Grafana's variables replaced
// by values of their kind, and returns the metric names it selects.
func selectors(expr string) ([]string, error) {
	expr = grafanaVariable.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.Contains(v, "__rate_interval") || strings.Contains(v, "__interval") || strings.Contains(v, "__range") {
			return "5m"
		}
		return "variable"
	})
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

// queries returns every PromQL expression of the dashboard, with where it
// is, including the label_values() queries of template variables.
func queries(t *testing.T, d dashboard) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			out[fmt.Sprintf("panel %q query %s", p.Title, q.RefID)] = q.Expr
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			m := labelValues.FindStringSubmatch(v.Definition)
			if m == nil {
				t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, v.Definition)
				continue
			}
			out["variable "+v.Name] = m[1]
		}
	}
	return out
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile("grafana/fleetstream.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana/fleetstream.json: %v", err)
	}
	return d
}

// Every query parses as PromQL and selects only series the code exports.
func TestDashboardQueriesUseRealMetrics(t *testing.T) {
	d := readDashboard(t)
	known := seriesNames(t)
	used := map[string]bool{}
	for where, expr := range queries(t, d) {
		names, err := selectors(expr)
		if err != nil {
			t.Errorf("%s: %q: %v", where, expr, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s selects no metric: %q", where, expr)
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("%s selects %s, which no role exports", where, n)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count")] = true
		}
	}
	// What the dashboard is for: each of these has a panel.
	for _, m := range []string{
		"fleetstream_ingest_requests_total", "fleetstream_ingest_request_seconds", "fleetstream_ingest_produce_seconds",
		"fleetstream_scenario_discoveries_total", "fleetstream_scenario_commands_emitted_total",
		"fleetstream_host_commands_total", "fleetstream_host_events_emitted_total",
		"fleetstream_clickhouse_sink_rows_total", "fleetstream_clickhouse_sink_batches_total", "fleetstream_clickhouse_sink_lag_records",
		"fleetstream_api_request_duration_seconds",
		"fleetstream_scenario_dead_letters_total", "fleetstream_host_dead_letters_total", "fleetstream_clickhouse_sink_dead_letters_total",
		"fleetstream_cloud_resource_commands_total", "fleetstream_cloud_resource_events_emitted_total", "fleetstream_cloud_resource_dead_letters_total",
		"fleetstream_links_inputs_total", "fleetstream_links_events_emitted_total", "fleetstream_links_dead_letters_total",
		"fleetstream_membership_commands_total", "fleetstream_membership_dead_letters_total",
		"fleetstream_tasks_finished_total", "fleetstream_task_run_seconds", "fleetstream_task_wait_seconds",
		"fleetstream_tasks_active", "fleetstream_tasks_buffered", "fleetstream_tasks_relayed_total",
		"fleetstream_scheduler_fired_total", "fleetstream_scheduler_fire_errors_total",
		"fleetstream_collector_collections_total", "fleetstream_collector_resources_total", "fleetstream_collector_collect_seconds",
		"process_cpu_seconds_total", "process_resident_memory_bytes",
	} {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}

func TestDashboardLayout(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Fatal("the dashboard needs a uid and a title (provisioning keys on the uid)")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q has no place on the 24-column grid: %+v", p.Title, p.GridPos)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// The check itself fails on a metric no role exports and on bad PromQL.
func TestDashboardCheckCatchesDrift(t *testing.T) {
	known := seriesNames(t)
	names, err := selectors(`sum(rate(fleetstream_ingest_requests_totl[$__rate_interval]))`)
	if err != nil || len(names) != 1 || known[names[0]] {
		t.Errorf("a misspelt metric passed: %v, %v", names, err)
	}
	if _, err := selectors(`sum(rate(fleetstream_ingest_requests_total[$__rate_interval])`); err == nil {
		t.Error("unbalanced parentheses parsed")
	}
	if !known["fleetstream_api_request_duration_seconds_bucket"] || known["fleetstream_ingest_requests_total_bucket"] {
		t.Error("histogram series names are derived wrongly")
	}
}

// The Grafana provisioning of docker-compose.yml points at the dashboard
// and the Prometheus service.
func TestGrafanaProvisioning(t *testing.T) {
	type datasources struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Type      string `json:"type"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
		} `json:"datasources"`
	}
	type dashboards struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name            string `json:"name"`
			Folder          string `json:"folder"`
			Type            string `json:"type"`
			DisableDeletion bool   `json:"disableDeletion"`
			Options         struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	var ds datasources
	var db dashboards
	for path, v := range map[string]any{
		"grafana/provisioning/datasources/prometheus.yml": &ds,
		"grafana/provisioning/dashboards/fleetstream.yml": &db,
	} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(raw, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("data source: %+v", ds.Datasources)
	}
	compose, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Providers) != 1 {
		t.Fatalf("dashboard providers: %+v, want one", db.Providers)
	}
	mount := "./grafana/fleetstream.json:" + db.Providers[0].Options.Path + "/fleetstream.json"
	if !strings.Contains(string(compose), mount) {
		t.Errorf("docker-compose.yml does not mount the dashboard where the provider reads it (%s)", mount)
	}
}
