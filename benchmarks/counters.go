package benchmarks

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/fleetstream/fleetstream/schemas/payload"
)

// CheckEvaluationsMetric is the counter of check evaluations the benchmark
// reports as evaluations/s when a role exports it; the checks processor
// exports it once a check was evaluated (a fleet whose facts no check
// applies to has none), and the report says so instead of showing 0.
const CheckEvaluationsMetric = "fleetstream_checks_evaluations_total"

// Counters are the pipeline's cumulative progress, from the roles'
// Prometheus metrics and the event store's end offsets. Differences of two
// readings are what the benchmark measures.
type Counters struct {
	At time.Time
	// Discoveries and Heartbeats accepted by ingest (202 and 204).
	Discoveries, Heartbeats float64
	// Processed counts discovery records handled by scenario detection,
	// whatever the outcome, dead letters included.
	Processed float64
	// Changed counts discoveries (heartbeats excluded) whose payload
	// differed from the agent's previous one of its type.
	Changed float64
	// HostChanges counts host_discoveries that became host commands.
	HostChanges float64
	// Commands emitted by scenario detection (to every aggregate), and
	// those the host aggregate handled, and the events it emitted.
	Commands, HostCommands, HostEvents float64
	// Events in the event store, and those the sink inserted.
	Events, SinkEvents float64
	// SinkRows are rows inserted into every ClickHouse table.
	SinkRows float64
	// CheckEvaluations is NaN while no role exports CheckEvaluationsMetric.
	CheckEvaluations float64
}

// accepted is what ingest acknowledged.
func (c Counters) accepted() float64 { return c.Discoveries + c.Heartbeats }

// reader reads Counters.
type reader struct {
	client *http.Client
	roles  map[string]*role
	admin  *kadm.Client
	events string // the event store topic
}

func (r *reader) read(ctx context.Context) (Counters, error) {
	c := Counters{At: time.Now()}
	// Downstream first: a count read later is never behind one read
	// earlier, so "processed everything accepted" is never seen too soon.
	m := map[string]Metrics{}
	for _, name := range []string{compProcess, compSink, compAPI, compIngest} {
		got, err := scrape(ctx, r.client, r.roles[name].base+"/metrics")
		if err != nil {
			return c, fmt.Errorf("metrics of %s: %w", name, err)
		}
		m[name] = got
	}
	notHeartbeat := func(l map[string]string) bool { return l["type"] != payload.Heartbeat }
	c.Discoveries = m[compIngest].Sum("fleetstream_ingest_requests_total", func(l map[string]string) bool { return l["code"] == "202" })
	c.Heartbeats = m[compIngest].Sum("fleetstream_ingest_requests_total", func(l map[string]string) bool { return l["code"] == "204" })
	proc := m[compProcess]
	c.Processed = proc.Sum("fleetstream_scenario_discoveries_total", nil) + proc.Sum("fleetstream_scenario_dead_letters_total", nil)
	c.Changed = proc.Sum("fleetstream_scenario_discoveries_total", func(l map[string]string) bool {
		return notHeartbeat(l) && l["outcome"] != "unchanged"
	})
	c.HostChanges = proc.Sum("fleetstream_scenario_discoveries_total", func(l map[string]string) bool {
		return l["type"] == payload.HostDiscovery && l["outcome"] == "commands"
	})
	c.Commands = proc.Sum("fleetstream_scenario_commands_emitted_total", nil)
	c.HostCommands = proc.Sum("fleetstream_host_commands_total", nil) + proc.Sum("fleetstream_host_dead_letters_total", nil)
	c.HostEvents = proc.Sum("fleetstream_host_events_emitted_total", nil)
	sink := m[compSink]
	c.SinkEvents = sink.Sum("fleetstream_clickhouse_sink_rows_total", func(l map[string]string) bool { return l["table"] == "events" }) +
		sink.Sum("fleetstream_clickhouse_sink_dead_letters_total", nil)
	c.SinkRows = sink.Sum("fleetstream_clickhouse_sink_rows_total", nil)
	c.CheckEvaluations = nan
	for _, got := range m {
		if got.Has(CheckEvaluationsMetric) {
			c.CheckEvaluations = got.Sum(CheckEvaluationsMetric, nil)
		}
	}
	ends, err := r.admin.ListEndOffsets(ctx, r.events)
	if err != nil {
		return c, fmt.Errorf("end offsets of %s: %w", r.events, err)
	}
	ends.Each(func(o kadm.ListedOffset) { c.Events += float64(o.Offset) })
	return c, nil
}

// processedSince reports whether scenario detection has handled every
// record ingest acknowledged since c0.
func (c Counters) processedSince(c0 Counters) bool {
	return c.Processed-c0.Processed >= c.accepted()-c0.accepted()
}

// hostChangesVisibleSince reports whether everything since c0 reached
// ClickHouse, for a phase in which only host discoveries were sent: every
// discovery processed, every command handled by the host aggregate, every
// event it emitted in the event store and inserted by the sink.
func (c Counters) hostChangesVisibleSince(c0 Counters) bool {
	events := c.Events - c0.Events
	return c.processedSince(c0) &&
		c.HostCommands-c0.HostCommands >= c.Commands-c0.Commands &&
		events >= c.HostEvents-c0.HostEvents &&
		c.SinkEvents-c0.SinkEvents >= events
}
