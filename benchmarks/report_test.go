package benchmarks

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// syntheticReport is three runs whose medians are known: the runs measure
// 1, 2 and 10 × a base value, so every median is twice the base (and no
// mean is).
func syntheticReport(checks bool) *Report {
	r := &Report{Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Took: 5 * time.Minute, Config: DefaultConfig()}
	r.Env = Environment{CPU: "test CPU", Cores: 2, MemoryGiB: 24, Go: "go1.26", Kafka: "Apache Kafka 4.1.0", ClickHouse: "ClickHouse 18.16.1", Roles: "separate processes"}
	start := r.Started
	for i := 1; i <= 3; i++ {
		k := []float64{1, 2, 10}[i-1]
		usage := map[string]Usage{compIngest: {CPU: 0.1 * k, RSSMax: 40 * k}, compKafka: {CPU: 0.3 * k, RSSMax: 400 * k}, compOther: {CPU: 0.05, RSSMax: nan}}
		evals := nan
		if checks {
			evals = 50 * k
		}
		var ch, api Latencies
		for j := range 50 {
			ch.add(time.Duration(200+j) * time.Millisecond * time.Duration(i))
			api.add(time.Duration(20+j) * time.Millisecond)
		}
		r.Runs = append(r.Runs, RunResult{
			Fleet: FleetResult{
				Seconds: 25, DiscoveriesPerSec: 400 * k, HeartbeatsPerSec: 200 * k, ChangedPerSec: 4 * k, SinkRowsPerSec: 8 * k,
				CheckEvalsPerSec: evals, ToClickHouse: ch.Summary(), ToAPI: api.Summary(),
				APIList: LatencySummary{N: 10, P50: 10, P99: 30 * k}, APIGet: LatencySummary{N: 10, P50: 2, P99: 5 * k}, APIAll: LatencySummary{N: 20, P99: 25 * k},
				Usage: usage, latencyCH: ch, latencyAPI: api,
			},
			Flood: FloodResult{Seconds: 12, PipelineSeconds: 12.5, Records: 40000 * k, Discoveries: 32000 * k,
				RecordsPerSec: 3000 * k, DiscoveriesPerSec: 2400 * k, IngestRecordsPerSec: 3100 * k,
				Raw: RawResult{Records: int(40000 * k), Bytes: 45e6, Seconds: 1, PerSec: 40000}, Ratio: 3000 * k / 40000, Usage: usage},
			Changes: ChangesResult{Seconds: 8, PipelineSeconds: 9, Changes: 20000 * k, ChangedPerSec: 2000 * k, SinkRowsPerSec: 4000 * k,
				Raw: RawResult{Records: 20000, PerSec: 50000}, Ratio: 2000 * k / 50000, Usage: usage},
		})
		for s := range 10 {
			r.Series = append(r.Series, Point{At: start.Add(time.Duration(30*i+s) * time.Second), Phase: "fleet", Ingested: 600 * k, Processed: 600 * k, SinkRows: 8})
		}
	}
	return r
}

func row(md, prefix string) string {
	for line := range strings.Lines(md) {
		if strings.HasPrefix(line, "| "+prefix) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

func TestMarkdownShowsMediansRatiosAndRuns(t *testing.T) {
	md := syntheticReport(false).Markdown("report.png")
	for prefix, want := range map[string]string{
		"**sustained discoveries/s**":           "| 4,800 | 2,400, 4,800, 24,000 |",
		"records/s (discoveries + heartbeats)":  "| 6,000 | 3,000, 6,000, 30,000 | **15 %** (runs: 7.5, 15, 75 %) of raw 40,000 records/s |",
		"**changed-discovery throughput**":      "| 4,000 | 2,000, 4,000, 20,000 | **8 %** (runs: 4, 8, 40 %) of raw 50,000 records/s |",
		"discoveries/s ingested at the agents'": "| 800 | 400, 800, 4,000 |",
		"latency ingest → ClickHouse, p50":      "| 448 ms |", // run 2's 50 probes: 400..498 ms
		"check evaluations/s":                   "| n/a (no check evaluated) |",
		"API p99 under load":                    "| 50 ms |",
		"ingest |":                              "| 0.20 |",
	} {
		if got := row(md, prefix); !strings.Contains(got, want) {
			t.Errorf("row %q is %q, want it to contain %q", prefix, got, want)
		}
	}
	if got := row(md, "other processes on the machine"); !strings.Contains(got, "| 0.05 |") || !strings.HasSuffix(got, "| n/a |") {
		t.Errorf("others' row %q", got)
	}
	if !strings.Contains(md, "![rates, latencies and CPU](report.png)") || !strings.Contains(md, "Apache Kafka 4.1.0") {
		t.Errorf("report lacks the plot or the broker:\n%s", md)
	}
	withChecks := syntheticReport(true).Markdown("")
	if got := row(withChecks, "check evaluations/s"); !strings.Contains(got, "| 100 | 50, 100, 500 |") {
		t.Errorf("with checks built, the row is %q", got)
	}
	if strings.Contains(withChecks, "![") {
		t.Error("a report without a plot links one")
	}
}

func TestWriteMakesAReportAndAPicture(t *testing.T) {
	dir := t.TempDir()
	if err := syntheticReport(false).Write(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.HasPrefix(string(md), "# fleetstream benchmark") {
		t.Fatalf("report.md: %v %.40q", err, md)
	}
	f, err := os.Open(filepath.Join(dir, "report.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 700 {
		t.Errorf("plot is %v", b)
	}
	// An empty report (a benchmark that failed early) still draws.
	if err := (&Report{}).Plot(filepath.Join(dir, "empty.png")); err != nil {
		t.Errorf("plot of an empty report: %v", err)
	}
}

func TestNum(t *testing.T) {
	for x, want := range map[float64]string{1234567.4: "1,234,567", 999.5: "1,000", 100: "100", 42.42: "42.4", 0.01234: "0.0123", -2500: "-2,500", math.NaN(): "n/a"} {
		if got := num(x); got != want {
			t.Errorf("num(%v) = %q, want %q", x, got, want)
		}
	}
}
