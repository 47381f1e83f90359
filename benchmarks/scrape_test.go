package benchmarks

import (
	"strings"
	"testing"
)

const exposition = `# HELP fleetstream_ingest_requests_total Ingest requests by discovery type and HTTP status.
# TYPE fleetstream_ingest_requests_total counter
fleetstream_ingest_requests_total{code="202",type="host_discovery"} 120
fleetstream_ingest_requests_total{code="202",type="saptune_discovery"} 30
fleetstream_ingest_requests_total{code="204",type="heartbeat"} 75
fleetstream_ingest_requests_total{code="503",type="host_discovery"} 2
# HELP fleetstream_ingest_request_seconds Ingest request duration.
# TYPE fleetstream_ingest_request_seconds histogram
fleetstream_ingest_request_seconds_bucket{le="0.001"} 10
fleetstream_ingest_request_seconds_bucket{le="+Inf"} 227
fleetstream_ingest_request_seconds_sum 1.5
fleetstream_ingest_request_seconds_count 227
# TYPE go_goroutines gauge
go_goroutines 42
`

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	accepted := func(l map[string]string) bool { return l["code"] == "202" }
	if got := m.Sum("fleetstream_ingest_requests_total", accepted); got != 150 {
		t.Errorf("accepted = %v, want 150", got)
	}
	if got := m.Sum("fleetstream_ingest_requests_total", nil); got != 227 {
		t.Errorf("all requests = %v, want 227", got)
	}
	if got := m.Sum("go_goroutines", nil); got != 42 {
		t.Errorf("gauge = %v, want 42", got)
	}
	if m.Has("fleetstream_ingest_request_seconds") || m.Sum("fleetstream_ingest_request_seconds", nil) != 0 {
		t.Error("histograms are not left out")
	}
	if m.Has(CheckEvaluationsMetric) {
		t.Error("a metric that is not there is reported")
	}
	if _, err := ParseMetrics(strings.NewReader("not metrics {")); err == nil {
		t.Error("garbage parsed")
	}
}

func TestCountersConditions(t *testing.T) {
	c0 := Counters{Discoveries: 100, Heartbeats: 50, Processed: 150, Commands: 10, HostCommands: 10, HostEvents: 8, Events: 8, SinkEvents: 8}
	behind := c0
	behind.Discoveries += 20
	behind.Processed += 19
	if behind.processedSince(c0) {
		t.Error("processed with a record outstanding")
	}
	caughtUp := behind
	caughtUp.Processed++
	if !caughtUp.processedSince(c0) {
		t.Error("not processed with nothing outstanding")
	}

	// Twenty changes: twenty commands, twenty events, all inserted.
	done := caughtUp
	done.Commands, done.HostCommands, done.HostEvents, done.Events, done.SinkEvents = 30, 30, 28, 28, 28
	if !done.hostChangesVisibleSince(c0) {
		t.Error("everything in ClickHouse, but not visible")
	}
	for name, mutate := range map[string]func(*Counters){
		"a command not handled":          func(c *Counters) { c.HostCommands-- },
		"an event emitted, not produced": func(c *Counters) { c.Events--; c.SinkEvents-- },
		"an event not inserted":          func(c *Counters) { c.SinkEvents-- },
		"a discovery not processed":      func(c *Counters) { c.Discoveries++ },
	} {
		c := done
		mutate(&c)
		if c.hostChangesVisibleSince(c0) {
			t.Errorf("%s, yet visible", name)
		}
	}
}
