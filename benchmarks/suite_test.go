package benchmarks

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunMeasuresAPipeline runs the whole benchmark, small and short, on
// kfake with the roles in this process and a real ClickHouse: every phase
// must measure what really flowed through the pipeline. It asserts what
// was measured, never how fast.
func TestRunMeasuresAPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse and the whole pipeline")
	}
	const hosts, changeHosts = 40, 20
	out := t.TempDir()
	rep, err := Run(t.Context(), Config{
		Hosts: hosts, ChangeHosts: changeHosts, Concurrency: 16, Runs: 1,
		FleetPhase: 4 * time.Second, FloodPhase: 2 * time.Second, ChangesPhase: 2 * time.Second,
		ProbeInterval: 200 * time.Millisecond, APIRate: 20, Partitions: 4,
		KFake: true, WorkDir: t.TempDir(), OutDir: out, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(rep.Runs))
	}
	f, fl, ch := rep.Runs[0].Fleet, rep.Runs[0].Flood, rep.Runs[0].Changes

	// At the agents' pace the fleet sends 4 discoveries per host every
	// 10 s (first calls spread over the interval); allow for scheduling.
	if want := hosts * 4 / 10.0; f.DiscoveriesPerSec < want/2 || f.DiscoveriesPerSec > want*1.5 {
		t.Errorf("%.1f discoveries/s at the agents' pace, want about %.0f", f.DiscoveriesPerSec, want)
	}
	if f.ToClickHouse.N == 0 || f.ToAPI.N == 0 || f.ProbesLost+f.ProbesFailed > 0 {
		t.Errorf("probes: %d seen in ClickHouse, %d through the API, %d lost, %d failed", f.ToClickHouse.N, f.ToAPI.N, f.ProbesLost, f.ProbesFailed)
	}
	if f.ToClickHouse.P50 <= 0 || f.ToAPI.P50 <= 0 {
		t.Errorf("latencies %+v %+v", f.ToClickHouse, f.ToAPI)
	}
	if f.APIList.N == 0 || f.APIGet.N == 0 || f.APIErrors > 0 {
		t.Errorf("API reader: %d lists, %d gets, %d errors", f.APIList.N, f.APIGet.N, f.APIErrors)
	}
	// NaN while no check applied to the simulated fleet's facts.
	checked := f.CheckEvalsPerSec == f.CheckEvalsPerSec
	if checked && f.CheckEvalsPerSec <= 0 {
		t.Errorf("check evaluations %v/s", f.CheckEvalsPerSec)
	}

	// The raw baseline reads the flood's own records back from Kafka: as
	// many as ingest accepted (a request cut short as the phase ended may
	// have been stored without its answer).
	if fl.Records == 0 || fl.Discoveries == 0 || fl.RecordsPerSec <= 0 {
		t.Errorf("flood: %+v", fl)
	}
	if got := float64(fl.Raw.Records); got < fl.Records || got > fl.Records+16 {
		t.Errorf("raw baseline of %v records for a flood of %v", got, fl.Records)
	}
	if fl.Raw.PerSec <= 0 || fl.Ratio <= 0 || fl.Raw.Bytes < int64(fl.Raw.Records)*100 {
		t.Errorf("raw baseline %+v, ratio %v", fl.Raw, fl.Ratio)
	}

	// Every changes-phase discovery changed its host, and each change
	// reached ClickHouse as an events row and a hosts row.
	if ch.Changes == 0 || ch.ChangedPerSec <= 0 || ch.SinkRowsPerSec < ch.ChangedPerSec {
		t.Errorf("changes: %+v", ch)
	}

	// The roles ran in this process: its usage is measured, once.
	u, ok := f.Usage[strings.Join([]string{compIngest, compProcess, compSink, compAPI, compKafka, compBench}, " + ")]
	if !ok || u.CPU <= 0 || u.RSSMax <= 0 {
		t.Errorf("usage %v", f.Usage)
	}
	if _, ok := f.Usage[compClickHouse]; !ok {
		t.Errorf("no usage of ClickHouse in %v", f.Usage)
	}
	if len(rep.Series) == 0 {
		t.Error("no time series")
	}
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	want := "n/a (no check evaluated)"
	if checked {
		want = "check evaluations/s at the agents' pace"
	}
	if err != nil || !strings.Contains(string(md), want) {
		t.Errorf("report.md: %v\n%s", err, md)
	}
	if _, err := os.Stat(filepath.Join(out, "report.png")); err != nil {
		t.Error(err)
	}
}
