package checks

import (
	"fmt"
	"log/slog"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/record"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// deadLetterStage names this processor in dead-letter headers.
const deadLetterStage = "checks"

// Input names, for metrics.
const (
	inputEvent     = "event"
	inputDiscovery = "discovery"
	inputFacts     = "facts"
	inputCommand   = "command"
	inputLoop      = "loop"
)

// NewProcessor returns the continuous evaluation processor. Production and
// tests build it here; tests add goka.WithTester or builders through opts.
func NewProcessor(brokers []string, topics kafka.Topics, rules *Rules, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return record.NewProcessor(brokers, Graph(topics, rules, m, logger), logger, opts...)
}

// Group is the continuous evaluation's goka group in topics' namespace.
func Group(topics kafka.Topics) goka.Group {
	return goka.Group(topics.Group(kafka.ChecksGroup))
}

// Graph is the group graph of continuous evaluation: discoveries, facts,
// events and checks commands in, targets in the group table, messages
// between clusters and their hosts on the loop topic; checks events,
// results, health commands and dead letters out.
func Graph(topics kafka.Topics, rules *Rules, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	h := &handler{
		rules:    rules,
		events:   goka.Stream(topics.Events),
		results:  goka.Stream(topics.ChecksResults),
		hosts:    goka.Stream(topics.HostCommands),
		clusters: goka.Stream(topics.ClusterCommands),
		dlq:      goka.Stream(topics.DLQ),
		m:        m,
		logger:   logger,
	}
	// Bytes everywhere, decoded in the callbacks: a codec error would stop
	// the processor, and the events topic is both input and output.
	return goka.DefineGroup(Group(topics),
		goka.Input(goka.Stream(topics.Events), new(codec.Bytes), h.event),
		goka.Input(goka.Stream(topics.Discoveries), new(codec.Bytes), h.discovery),
		goka.Input(goka.Stream(topics.Facts), new(codec.Bytes), h.facts),
		goka.Input(goka.Stream(topics.ChecksCommands), new(codec.Bytes), h.command),
		goka.Loop(new(codec.Bytes), h.loop),
		goka.Persist(kafka.ProtoCodec[fleetv1.ChecksTarget, *fleetv1.ChecksTarget]{}),
		goka.Output(h.events, new(codec.Bytes)),
		goka.Output(h.results, new(codec.Bytes)),
		goka.Output(h.hosts, new(codec.Bytes)),
		goka.Output(h.clusters, new(codec.Bytes)),
		goka.Output(h.dlq, new(codec.Bytes)),
	)
}

type handler struct {
	rules                                 *Rules
	events, results, hosts, clusters, dlq goka.Stream
	m                                     *Metrics
	logger                                *slog.Logger
}

// event follows fleet.events.v1 for host and cluster events. Records that
// do not decode are the sink's to dead-letter; here they are counted and
// skipped.
func (h *handler) event(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	e := new(fleetv1.Event)
	if err := proto.Unmarshal(raw, e); err != nil || raw == nil || e.GetAggregateId() != ctx.Key() {
		h.m.skipped.WithLabelValues(inputEvent).Inc()
		return
	}
	if t := e.GetAggregateType(); t != hostAggregate && t != clusterAggregate {
		h.m.inputs.WithLabelValues(inputEvent, string(outcomeIgnored)).Inc()
		return
	}
	state, _ := ctx.Value().(*fleetv1.ChecksTarget)
	h.apply(ctx, inputEvent, h.rules.applyEvent(state, ctx.Key(), e))
}

// discovery follows fleet.discoveries.v1; scenario detection dead-letters
// what does not decode.
func (h *handler) discovery(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	d := new(fleetv1.Discovery)
	if err := proto.Unmarshal(raw, d); err != nil || raw == nil || d.GetAgentId() != ctx.Key() || d.GetCollectedAt() == nil {
		h.m.skipped.WithLabelValues(inputDiscovery).Inc()
		return
	}
	state, _ := ctx.Value().(*fleetv1.ChecksTarget)
	h.apply(ctx, inputDiscovery, h.rules.applyDiscovery(state, d, record.TraceID(ctx), recordCause(ctx)))
}

// facts follows fleet.facts.v1: facts agents gathered on their own
// schedule (the executions group takes the answers to executions).
func (h *handler) facts(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	fg := new(fleetv1.FactsGathered)
	if err := proto.Unmarshal(raw, fg); err != nil || raw == nil {
		h.deadLetter(ctx, inputFacts, "value is not a fleetstream.v1.FactsGathered", raw)
		return
	}
	if fg.GetExecutionId() != "" {
		h.m.inputs.WithLabelValues(inputFacts, string(outcomeIgnored)).Inc()
		return
	}
	if fg.GetAgentId() != ctx.Key() || fg.GetGatheredAt() == nil {
		h.deadLetter(ctx, inputFacts, fmt.Sprintf("facts need agent_id (equal to the record key %q) and gathered_at", ctx.Key()), raw)
		return
	}
	state, _ := ctx.Value().(*fleetv1.ChecksTarget)
	res, err := h.rules.applyFacts(state, fg, record.TraceID(ctx), recordCause(ctx))
	if err != nil {
		h.deadLetter(ctx, inputFacts, err.Error(), raw)
		return
	}
	h.apply(ctx, inputFacts, res)
}

// command follows fleet.commands.checks.v1: selections and overrides.
func (h *handler) command(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	cmd, reason := parseCommand(ctx.Key(), raw)
	if reason != "" {
		h.deadLetter(ctx, inputCommand, reason, raw)
		return
	}
	state, _ := ctx.Value().(*fleetv1.ChecksTarget)
	h.apply(ctx, inputCommand, h.rules.applyCommand(state, cmd))
}

// loop follows the messages between clusters and their hosts; only this
// processor writes them.
func (h *handler) loop(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	m := new(fleetv1.ChecksLoopMessage)
	if err := proto.Unmarshal(raw, m); err != nil || m.GetBody() == nil {
		h.deadLetter(ctx, inputLoop, "not a fleetstream.v1.ChecksLoopMessage this processor knows", raw)
		return
	}
	state, _ := ctx.Value().(*fleetv1.ChecksTarget)
	h.apply(ctx, inputLoop, h.rules.applyLoop(state, ctx.Key(), m, record.TraceID(ctx)))
}

func (h *handler) apply(ctx goka.Context, input string, r result) {
	if r.state != nil {
		ctx.SetValue(r.state)
	}
	for _, e := range r.events {
		emitProto(ctx, h.events, e.GetAggregateId(), e, e.GetTraceId())
		h.m.events.WithLabelValues(aggregate.EventName(e)).Inc()
	}
	for _, res := range r.results {
		emitProto(ctx, h.results, res.GetEntityId(), res, r.traceID)
		h.m.resultChanges.WithLabelValues(resultLabel(res.GetResult())).Inc()
	}
	for res, n := range r.evaluations {
		h.m.evaluations.WithLabelValues(res).Add(float64(n))
	}
	for _, c := range r.commands {
		topic := h.hosts
		if c.targetType == TargetCluster {
			topic = h.clusters
		}
		emitProto(ctx, topic, c.cmd.GetAggregateId(), c.cmd, c.cmd.GetTraceId())
		h.m.healthCommands.WithLabelValues(c.targetType).Inc()
	}
	for _, s := range r.sends {
		b, err := proto.Marshal(s.msg)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode checks loop message to %s: %w", s.key, err))
		}
		ctx.Loopback(s.key, b, record.Headers(s.msg, r.traceID))
	}
	h.m.inputs.WithLabelValues(input, string(r.outcome)).Inc()
}

func (h *handler) deadLetter(ctx goka.Context, input, reason string, raw []byte) {
	h.logger.Warn("checks: record dead-lettered", "input", input, "key", ctx.Key(), "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason)
	record.DeadLetter(ctx, h.dlq, deadLetterStage, reason, raw)
	h.m.deadLetters.WithLabelValues(input).Inc()
}

// emitProto emits m encoded, with the standard headers.
func emitProto(ctx goka.Context, topic goka.Stream, key string, m proto.Message, traceID string) {
	b, err := proto.Marshal(m)
	if err != nil {
		ctx.Fail(fmt.Errorf("encode %s for %s: %w", m.ProtoReflect().Descriptor().Name(), key, err))
	}
	ctx.Emit(topic, key, b, record.Headers(m, traceID))
}

// recordCause names the input record, "<topic>/<partition>/<offset>", for
// the command_id of the events it causes: discoveries and facts have no id
// of their own.
func recordCause(ctx goka.Context) string {
	return fmt.Sprintf("%s/%d/%d", ctx.Topic(), ctx.Partition(), ctx.Offset())
}

// parseCommand decodes a checks command keyed by key, or says why it is a
// dead letter.
func parseCommand(key string, raw []byte) (*fleetv1.Command, string) {
	cmd := new(fleetv1.Command)
	if err := proto.Unmarshal(raw, cmd); err != nil || raw == nil {
		return nil, "value is not a fleetstream.v1.Command"
	}
	switch {
	case key == "" || cmd.GetAggregateId() != key:
		return nil, fmt.Sprintf("record key %q differs from aggregate_id %q: key checks commands by target id", key, cmd.GetAggregateId())
	case cmd.GetCommandId() == "":
		return nil, "command has no command_id"
	case cmd.GetIssuedAt() == nil:
		return nil, "command has no issued_at"
	case cmd.GetBody() == nil:
		return nil, "command has no body this processor knows"
	}
	return cmd, ""
}

func resultLabel(r string) string {
	if r == "" {
		return "none"
	}
	return r
}
