package scenario

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

var topics = kafka.DefaultTopics()

var scenarioTable = goka.GroupTable(goka.Group(topics.Group(kafka.ScenarioGroup)))

type harness struct {
	tt       *tester.Tester
	m        *Metrics
	commands *tester.QueueTracker
	dlq      *tester.QueueTracker
}

// run starts the processor exactly as production builds it, on goka's tester.
func run(t *testing.T) *harness {
	t.Helper()
	tt := tester.New(t)
	m := NewMetrics(prometheus.NewRegistry())
	proc, err := NewProcessor(nil, topics, m, slog.New(slog.DiscardHandler), goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor stopped with %v", err)
		}
	})
	return &harness{tt: tt, m: m, commands: tt.NewQueueTracker(topics.HostCommands), dlq: tt.NewQueueTracker(topics.DLQ)}
}

func (h *harness) consume(t *testing.T, key string, value []byte, traceID string) {
	t.Helper()
	h.tt.Consume(topics.Discoveries, key, value, tester.WithHeaders(goka.Headers{kafka.HeaderTraceID: []byte(traceID)}))
}

func (h *harness) send(t *testing.T, d *fleetv1.Discovery, traceID string) {
	t.Helper()
	h.consume(t, d.AgentId, marshal(t, d), traceID)
}

// nextCommand returns the next command, failing if there is none.
func (h *harness) nextCommand(t *testing.T) (goka.Headers, string, *fleetv1.Command) {
	t.Helper()
	headers, key, value, ok := h.commands.NextWithHeaders()
	if !ok {
		t.Fatal("no command emitted")
	}
	return headers, key, value.(*fleetv1.Command)
}

func (h *harness) noCommand(t *testing.T) {
	t.Helper()
	if _, _, value, ok := h.commands.NextWithHeaders(); ok {
		t.Fatalf("unexpected command %v", value)
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestHostDiscoveryLifecycle(t *testing.T) {
	h := run(t)
	raw := fixture(t, "discovery/host_discovery.json")

	h.send(t, discovery(payload.HostDiscovery, raw, collectedAt), "trace-register")
	headers, key, cmd := h.nextCommand(t)
	if key != fixtureAgent || cmd.AggregateId != fixtureAgent {
		t.Fatalf("command keyed %q for aggregate %q, want %q", key, cmd.AggregateId, fixtureAgent)
	}
	want := &fleetv1.RegisterHost{Details: fixtureDetails(t)}
	if !proto.Equal(cmd.GetRegisterHost(), want) {
		t.Fatalf("RegisterHost\n%v\nwant\n%v", cmd.GetRegisterHost(), want)
	}
	if !cmd.IssuedAt.AsTime().Equal(collectedAt) || cmd.TraceId != "trace-register" || cmd.CommandId == "" {
		t.Fatalf("envelope %v", cmd)
	}
	for k, v := range map[string]string{
		kafka.HeaderContentType: kafka.ContentTypeProtobuf,
		kafka.HeaderSchema:      "fleetstream.v1.Command",
		kafka.HeaderTraceID:     "trace-register",
	} {
		if got := string(headers[k]); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	state := h.tt.TableValue(scenarioTable, fixtureAgent).(*fleetv1.ScenarioState)
	if !state.HostRegistered || !proto.Equal(state.Host, fixtureDetails(t)) || len(state.Fingerprints) != 1 {
		t.Fatalf("table value %v", state)
	}

	h.send(t, discovery(payload.HostDiscovery, raw, collectedAt.Add(1)), "")
	h.noCommand(t)
	if got := counter(t, h.m.discoveries.WithLabelValues(payload.HostDiscovery, string(outcomeUnchanged))); got != 1 {
		t.Errorf("unchanged discoveries counted %v, want 1", got)
	}

	changed := modified(t, raw, map[string]any{"cpu_count": 8, "ip_addresses": []string{"10.1.1.4", "10.1.1.9"}})
	h.send(t, discovery(payload.HostDiscovery, changed, collectedAt.Add(2)), "trace-update")
	_, _, cmd = h.nextCommand(t)
	wantUpdate := &fleetv1.UpdateHostDetails{
		Details:       &fleetv1.HostDetails{CpuCount: 8, IpAddresses: []string{"10.1.1.4", "10.1.1.9"}},
		ChangedFields: []string{"cpu_count", "ip_addresses"},
	}
	if !proto.Equal(cmd.GetUpdateHostDetails(), wantUpdate) {
		t.Fatalf("UpdateHostDetails %v, want %v", cmd.GetUpdateHostDetails(), wantUpdate)
	}
	h.noCommand(t)
}

func TestHeartbeats(t *testing.T) {
	h := run(t)
	h.send(t, discovery(payload.Heartbeat, nil, collectedAt), "")
	h.noCommand(t)
	if got := counter(t, h.m.discoveries.WithLabelValues(payload.Heartbeat, string(outcomeHostUnknown))); got != 1 {
		t.Errorf("heartbeats before registration counted %v, want 1", got)
	}
	if v := h.tt.TableValue(scenarioTable, fixtureAgent); v != nil {
		t.Errorf("a dropped heartbeat wrote state %v", v)
	}

	h.send(t, discovery(payload.HostDiscovery, fixture(t, "discovery/host_discovery.json"), collectedAt), "")
	h.nextCommand(t)
	beat := collectedAt.Add(5e9)
	h.send(t, discovery(payload.Heartbeat, nil, beat), "trace-beat")
	_, key, cmd := h.nextCommand(t)
	if key != fixtureAgent || !cmd.GetUpdateHeartbeat().GetAt().AsTime().Equal(beat) || cmd.TraceId != "trace-beat" {
		t.Fatalf("heartbeat command %v keyed %q", cmd, key)
	}
}

func TestBadRecordsAreDeadLettered(t *testing.T) {
	h := run(t)
	tests := []struct {
		name   string
		key    string
		value  []byte
		reason string
		says   string // in the reason header
	}{
		{"malformed host payload", fixtureAgent, marshal(t, discovery(payload.HostDiscovery, []byte(`{"hostname": "suse",`), collectedAt)), reasonMalformedPayload, "host_discovery of agent " + fixtureAgent},
		{"unknown discovery type", fixtureAgent, marshal(t, discovery("toaster_discovery", []byte(`{}`), collectedAt)), reasonUnknownType, `unknown discovery_type "toaster_discovery"`},
		{"not protobuf", fixtureAgent, []byte(`{"agent_id": "779cdd70"}`), reasonNotProtobuf, "not a fleetstream.v1.Discovery"},
		{"tombstone", fixtureAgent, nil, reasonInvalidEnvelope, "no agent_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offset := h.tt.NewQueueTracker(topics.Discoveries).Hwm()
			h.consume(t, tt.key, tt.value, "trace-bad")
			headers, key, value, ok := h.dlq.NextRawWithHeaders()
			if !ok {
				t.Fatal("nothing dead-lettered")
			}
			if key != tt.key || string(value) != string(tt.value) {
				t.Errorf("dead letter %q=%q, want the input record unchanged", key, value)
			}
			if got := string(headers[kafka.HeaderDLQReason]); !strings.Contains(got, tt.says) {
				t.Errorf("reason %q does not say %q", got, tt.says)
			}
			for k, v := range map[string]string{
				kafka.HeaderDLQStage:     "scenario",
				kafka.HeaderDLQTopic:     topics.Discoveries,
				kafka.HeaderDLQPartition: "0",
				kafka.HeaderDLQOffset:    strconv.FormatInt(offset, 10),
				kafka.HeaderTraceID:      "trace-bad",
			} {
				if got := string(headers[k]); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			h.noCommand(t)
			if got := counter(t, h.m.deadLetters.WithLabelValues(tt.reason)); got != 1 {
				t.Errorf("dead letters with reason %s counted %v, want 1", tt.reason, got)
			}
		})
	}
	// The processor is still running and the bad records left no state.
	if v := h.tt.TableValue(scenarioTable, fixtureAgent); v != nil {
		t.Fatalf("bad records wrote state %v", v)
	}
	h.send(t, discovery(payload.HostDiscovery, fixture(t, "discovery/host_discovery.json"), collectedAt), "")
	if _, _, cmd := h.nextCommand(t); cmd.GetRegisterHost() == nil {
		t.Fatalf("after bad records: %v", cmd)
	}
}

// TestDeregistrationForgetsTheAgent: after HostDeregistered the agent's
// unchanged discoveries register the host again, and its heartbeats are
// held until they do; other events change nothing.
func TestDeregistrationForgetsTheAgent(t *testing.T) {
	h := run(t)
	raw := fixture(t, "discovery/host_discovery.json")
	h.send(t, discovery(payload.HostDiscovery, raw, collectedAt), "")
	h.nextCommand(t)

	event := func(aggregate string, e *fleetv1.Event) {
		e.AggregateId, e.EventId = aggregate, aggregate+strconv.Itoa(len(e.String()))
		h.tt.Consume(topics.Events, aggregate, marshal(t, e))
	}
	event(fixtureAgent, &fleetv1.Event{AggregateType: "host", Payload: &fleetv1.Event_HeartbeatFailed{HeartbeatFailed: &fleetv1.HeartbeatFailed{}}})
	event("another-agent", &fleetv1.Event{AggregateType: "host", Payload: &fleetv1.Event_HostDeregistered{HostDeregistered: &fleetv1.HostDeregistered{}}})
	h.tt.Consume(topics.Events, fixtureAgent, []byte("not an event"))
	h.send(t, discovery(payload.HostDiscovery, raw, collectedAt.Add(1)), "")
	h.noCommand(t)
	if v := h.tt.TableValue(scenarioTable, "another-agent"); v != nil {
		t.Errorf("an unknown agent's deregistration wrote state %v", v)
	}

	event(fixtureAgent, &fleetv1.Event{AggregateType: "host", Payload: &fleetv1.Event_HostDeregistered{HostDeregistered: &fleetv1.HostDeregistered{}}})
	if v := h.tt.TableValue(scenarioTable, fixtureAgent); v != nil {
		t.Fatalf("a deregistered host's agent is still known: %v", v)
	}
	if got := counter(t, h.m.forgotten); got != 1 {
		t.Errorf("agents forgotten %v, want 1", got)
	}
	h.send(t, discovery(payload.Heartbeat, nil, collectedAt.Add(2)), "")
	h.noCommand(t)
	h.send(t, discovery(payload.HostDiscovery, raw, collectedAt.Add(3)), "trace-back")
	_, _, cmd := h.nextCommand(t)
	if !proto.Equal(cmd.GetRegisterHost(), &fleetv1.RegisterHost{Details: fixtureDetails(t)}) || cmd.TraceId != "trace-back" {
		t.Fatalf("after deregistration the same discovery sent %v, want RegisterHost", cmd)
	}
}
