package benchmarks

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Report is what a benchmark measured.
type Report struct {
	Started time.Time
	Took    time.Duration
	Config  Config
	Env     Environment
	Runs    []RunResult
	// Series is the pipeline's rates, once a second, over the whole
	// benchmark.
	Series []Point
}

// Environment is where the benchmark ran.
type Environment struct {
	CPU        string
	Cores      int
	MemoryGiB  float64
	Go         string
	Kafka      string
	ClickHouse string
	// Roles says whether the roles ran as processes of their own.
	Roles string
}

// RunResult is one measurement of the three phases.
type RunResult struct {
	Fleet   FleetResult
	Flood   FloodResult
	Changes ChangesResult
}

// FleetResult is the fleet at the agents' pace.
type FleetResult struct {
	Seconds float64
	// Accepted by ingest, per second.
	DiscoveriesPerSec, HeartbeatsPerSec float64
	// ChangedPerSec are discoveries whose payload differed from the
	// previous one of their agent and type.
	ChangedPerSec  float64
	SinkRowsPerSec float64
	// CheckEvalsPerSec is NaN while checks are not built.
	CheckEvalsPerSec float64
	// ToClickHouse and ToAPI are the latencies from a changed discovery's
	// request to the change in the hosts table and in GET /api/v1/hosts/{id}.
	ToClickHouse, ToAPI      LatencySummary
	ProbesLost, ProbesFailed int
	// The API reader's latencies: lists, single hosts, both.
	APIList, APIGet, APIAll LatencySummary
	APIErrors, APISkipped   int
	// Backlog is the records ingest had accepted and scenario detection
	// not yet processed when the load stopped, and CaughtUpSeconds how
	// long it took to process them: near zero when the pipeline kept up.
	Backlog, CaughtUpSeconds float64
	Usage                    map[string]Usage

	latencyCH, latencyAPI Latencies // for the plot
}

// FloodResult is the fleet as fast as the pipeline takes it.
type FloodResult struct {
	// Seconds of load; PipelineSeconds until scenario detection had
	// processed every record ingested.
	Seconds, PipelineSeconds float64
	// Records are discoveries and heartbeats ingested.
	Records, Discoveries float64
	// Through the pipeline (ingest → processed), per second.
	RecordsPerSec, DiscoveriesPerSec float64
	// IngestRecordsPerSec is ingest alone, over the load.
	IngestRecordsPerSec float64
	Raw                 RawResult
	// Ratio is RecordsPerSec over the raw Kafka ceiling.
	Ratio float64
	Usage map[string]Usage
}

// ChangesResult is changed host discoveries as fast as the pipeline takes
// them, timed until their events are in ClickHouse.
type ChangesResult struct {
	Seconds, PipelineSeconds float64
	Changes                  float64
	ChangedPerSec            float64
	SinkRowsPerSec           float64
	Raw                      RawResult
	Ratio                    float64
	Usage                    map[string]Usage
}

// environment describes this machine and the pipeline's servers.
func (s *suite) environment(ctx context.Context) Environment {
	env := Environment{Cores: runtime.NumCPU(), Go: runtime.Version(), Kafka: s.broker.kind, CPU: cpuModel(), MemoryGiB: memoryGiB()}
	if err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&env.ClickHouse); err != nil {
		env.ClickHouse = "(version unknown)"
	}
	env.ClickHouse = "ClickHouse " + env.ClickHouse
	if s.cfg.ClickHouse == "" {
		env.ClickHouse += " (internal/chlocal)"
	}
	env.Roles = "ingest, process, sink and api as separate `fleetstream` processes"
	if s.cfg.Binary == "" {
		env.Roles = "ingest, process, sink and api inside the benchmark's process"
	}
	return env
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memoryGiB() float64 {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nan
	}
	for line := range strings.Lines(string(raw)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / (1 << 20)
		}
	}
	return nan
}

// Write writes report.md and report.png into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown("report.png")), 0o644); err != nil {
		return err
	}
	return r.Plot(filepath.Join(dir, "report.png"))
}

// runs collects one figure from every run.
func (r *Report) runs(f func(RunResult) float64) []float64 {
	out := make([]float64, len(r.Runs))
	for i, run := range r.Runs {
		out[i] = f(run)
	}
	return out
}

// Markdown renders the report; plot names the PNG shown at its end.
func (r *Report) Markdown(plot string) string {
	var b strings.Builder
	c := r.Config
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# fleetstream benchmark\n\n")
	p("%s, %s. Each figure is the median of %d runs (the runs' own values follow it). ", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Took.Round(time.Second), len(r.Runs))
	p("How it is measured: [benchmarks/README.md](../README.md).\n\n")
	p("| setting | value |\n|---|---|\n")
	p("| machine | %s, %d cores, %.0f GiB |\n", r.Env.CPU, r.Env.Cores, r.Env.MemoryGiB)
	p("| Kafka | %s |\n| ClickHouse | %s |\n| roles | %s |\n| Go | %s |\n", r.Env.Kafka, r.Env.ClickHouse, r.Env.Roles, r.Env.Go)
	p("| fleet | %d hosts × (host, cloud, subscription, saptune discovery every 10 s + heartbeat every 5 s), change rate %.3g, %d requests in flight |\n",
		c.Hosts, c.ChangeRate, c.Concurrency)
	p("| phases per run | agents' pace %s, flood %s, changes flood %s (%d hosts) |\n", c.FleetPhase, c.FloodPhase, c.ChangesPhase, c.ChangeHosts)
	p("| probes, API reader | a latency probe every %s polled every %s; %.0f API requests/s |\n", c.ProbeInterval, c.PollInterval, c.APIRate)
	p("| topics | %d partitions |\n\n", c.Partitions)

	p("## Results\n\n")
	p("| figure | median | runs | vs raw Kafka |\n|---|---:|---|---|\n")
	row := func(name string, f func(RunResult) float64, unit string, vsRaw string) {
		xs := r.runs(f)
		p("| %s | %s%s | %s | %s |\n", name, num(Median(xs)), unit, nums(xs), vsRaw)
	}
	// Each run's ratio is to its own raw baseline; the median of those
	// ratios is the figure, next to the median baseline for scale.
	vsRaw := func(ratio, raw func(RunResult) float64) string {
		ratios := r.runs(ratio)
		for i := range ratios {
			ratios[i] *= 100
		}
		return fmt.Sprintf("**%s** (runs: %s %%) of raw %s records/s", pct(Median(r.runs(ratio))), nums(ratios), num(Median(r.runs(raw))))
	}
	row(fmt.Sprintf("discoveries/s ingested at the agents' pace (%d hosts)", c.Hosts),
		func(x RunResult) float64 { return x.Fleet.DiscoveriesPerSec }, "", "offered load, not a limit")
	row("**sustained discoveries/s**, ingest → processed, flood", func(x RunResult) float64 { return x.Flood.DiscoveriesPerSec }, "", "")
	row("records/s (discoveries + heartbeats), ingest → processed, flood", func(x RunResult) float64 { return x.Flood.RecordsPerSec }, "",
		vsRaw(func(x RunResult) float64 { return x.Flood.Ratio }, func(x RunResult) float64 { return x.Flood.Raw.PerSec }))
	row("**changed-discovery throughput**: changed host discoveries/s → ClickHouse", func(x RunResult) float64 { return x.Changes.ChangedPerSec }, "",
		vsRaw(func(x RunResult) float64 { return x.Changes.Ratio }, func(x RunResult) float64 { return x.Changes.Raw.PerSec }))
	row("changed discoveries/s at the agents' pace", func(x RunResult) float64 { return x.Fleet.ChangedPerSec }, "", "")
	row("latency ingest → ClickHouse, p50", func(x RunResult) float64 { return x.Fleet.ToClickHouse.P50 }, " ms", "")
	row("latency ingest → ClickHouse, p99", func(x RunResult) float64 { return x.Fleet.ToClickHouse.P99 }, " ms", "")
	row("latency ingest → API (GET /api/v1/hosts/{id}), p50", func(x RunResult) float64 { return x.Fleet.ToAPI.P50 }, " ms", "")
	row("latency ingest → API (GET /api/v1/hosts/{id}), p99", func(x RunResult) float64 { return x.Fleet.ToAPI.P99 }, " ms", "")
	if evals := r.runs(func(x RunResult) float64 { return x.Fleet.CheckEvalsPerSec }); math.IsNaN(Median(evals)) {
		p("| check evaluations/s | n/a (no check evaluated) | | |\n")
	} else {
		row("check evaluations/s at the agents' pace", func(x RunResult) float64 { return x.Fleet.CheckEvalsPerSec }, "", "")
	}
	row("sink rows/s at the agents' pace", func(x RunResult) float64 { return x.Fleet.SinkRowsPerSec }, "", "")
	row("sink rows/s, flood of changes", func(x RunResult) float64 { return x.Changes.SinkRowsPerSec }, "", "")
	row(fmt.Sprintf("API p99 under load (%.0f req/s, lists and single hosts)", c.APIRate), func(x RunResult) float64 { return x.Fleet.APIAll.P99 }, " ms", "")
	row("API p99, list (GET /api/v1/hosts?page_size=50, ClickHouse)", func(x RunResult) float64 { return x.Fleet.APIList.P99 }, " ms", "")
	row("API p99, get (GET /api/v1/hosts/{id}, processor table)", func(x RunResult) float64 { return x.Fleet.APIGet.P99 }, " ms", "")
	p("\nEach run's ratio compares the phase with a raw franz-go produce+consume of that phase's own discovery records (same count, keys, values and headers) ")
	p("on the same broker right after it (median of three): the ceiling a pipeline on this broker could approach.\n\n")

	p("## CPU and memory per component\n\n")
	p("CPU in cores (2.0 = both cores of a 2-core machine) over each phase, and the largest resident set seen in it; medians of the runs.\n\n")
	p("| component | CPU, agents' pace | CPU, flood | CPU, changes flood | RSS max (MiB) |\n|---|---:|---:|---:|---:|\n")
	for _, name := range r.components() {
		get := func(f func(RunResult) map[string]Usage, cpu bool) float64 {
			return Median(r.runs(func(x RunResult) float64 {
				u, ok := f(x)[name]
				switch {
				case !ok:
					return nan
				case cpu:
					return u.CPU
				}
				return u.RSSMax
			}))
		}
		fleet := func(x RunResult) map[string]Usage { return x.Fleet.Usage }
		flood := func(x RunResult) map[string]Usage { return x.Flood.Usage }
		changes := func(x RunResult) map[string]Usage { return x.Changes.Usage }
		rss := math.Max(get(fleet, false), math.Max(get(flood, false), get(changes, false)))
		p("| %s | %s | %s | %s | %s |\n", name, fix2(get(fleet, true)), fix2(get(flood, true)), fix2(get(changes, true)), num(rss))
	}

	p("\n## Runs\n\n")
	p("| run | agents' pace: disc/s, hb/s, changed/s, backlog at the end | probes (lost) | API req (errors, skipped) | flood: records, pipeline s, rec/s, ingest-only rec/s | raw Kafka: records, MB, s, rec/s | changes: changes, s, /s | raw Kafka (changes): rec/s |\n")
	p("|---|---|---|---|---|---|---|---|\n")
	for i, x := range r.Runs {
		f, fl, ch := x.Fleet, x.Flood, x.Changes
		p("| %d | %s, %s, %s, %s records (%.2f s) | %d (%d) | %d (%d, %d) | %s, %.1f, %s, %s | %d, %.1f, %.2f, %s | %s, %.1f, %s | %s |\n", i+1,
			num(f.DiscoveriesPerSec), num(f.HeartbeatsPerSec), num(f.ChangedPerSec), num(f.Backlog), f.CaughtUpSeconds,
			f.ToClickHouse.N, f.ProbesLost+f.ProbesFailed, f.APIAll.N+f.APIErrors, f.APIErrors, f.APISkipped,
			num(fl.Records), fl.PipelineSeconds, num(fl.RecordsPerSec), num(fl.IngestRecordsPerSec),
			fl.Raw.Records, float64(fl.Raw.Bytes)/1e6, fl.Raw.Seconds, num(fl.Raw.PerSec),
			num(ch.Changes), ch.PipelineSeconds, num(ch.ChangedPerSec), num(ch.Raw.PerSec))
	}
	if plot != "" {
		p("\n## Over time\n\n![rates, latencies and CPU](%s)\n", plot)
	}
	return b.String()
}

// components lists the measured processes in report order.
func (r *Report) components() []string {
	seen := map[string]bool{}
	var names []string
	order := append(append([]string{}, roleNames...), compKafka, compClickHouse, compBench, compOther)
	for _, x := range r.Runs {
		for _, u := range []map[string]Usage{x.Fleet.Usage, x.Flood.Usage, x.Changes.Usage} {
			for _, n := range sortedNames(u, order) {
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
	}
	return names
}

// num formats x with thousands separators and no more precision than a
// benchmark has: integers from 100 up, three significant digits below.
func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "n/a"
	case math.Abs(x) >= 100:
		s := strconv.FormatInt(int64(math.Round(x)), 10)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		var b strings.Builder
		for i, d := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(d)
		}
		if neg {
			return "-" + b.String()
		}
		return b.String()
	default:
		return strconv.FormatFloat(x, 'g', 3, 64)
	}
}

func nums(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = num(x)
	}
	return strings.Join(s, ", ")
}

func fix2(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

func pct(x float64) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return strconv.FormatFloat(100*x, 'g', 3, 64) + " %"
}
