package checks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	"github.com/fleetstream/fleetstream/processors/internal/record"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Executions inputs, for metrics.
const (
	inputExecutionCommand = "execution_command"
	inputExecutionFacts   = "execution_facts"
	inputExpiry           = "expiry"
)

// visitExpire names the visitor that completes executions past their
// deadline.
const visitExpire = "expire"

// ExecutionsOptions configure the executions processor.
type ExecutionsOptions struct {
	// Timeout is how long agents have to answer an execution that names no
	// timeout of its own. Default DefaultExecutionTimeout.
	Timeout time.Duration
}

// NewExecutionsProcessor returns the on-demand executions processor.
// Production and tests build it here; run RunExpiry next to it.
func NewExecutionsProcessor(brokers []string, topics kafka.Topics, rules *Rules, o ExecutionsOptions, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return record.NewProcessor(brokers, ExecutionsGraph(topics, rules, o, m, logger), logger, opts...)
}

// ExecutionsGroup is the executions' goka group in topics' namespace.
func ExecutionsGroup(topics kafka.Topics) goka.Group {
	return goka.Group(topics.Group(kafka.ExecutionsGroup))
}

// ExecutionsGraph is the group graph of executions: checks commands and
// gathered facts in, answers forwarded to the group id over the loop
// topic, the continuous evaluation table joined, executions in the group
// table, events, fact requests and dead letters out.
func ExecutionsGraph(topics kafka.Topics, rules *Rules, o ExecutionsOptions, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	if o.Timeout <= 0 {
		o.Timeout = DefaultExecutionTimeout
	}
	h := &execHandler{
		rules:    rules,
		timeout:  o.Timeout,
		targets:  goka.GroupTable(Group(topics)),
		events:   goka.Stream(topics.Events),
		requests: goka.Stream(topics.AgentRequests),
		dlq:      goka.Stream(topics.DLQ),
		m:        m,
		logger:   logger,
	}
	return goka.DefineGroup(ExecutionsGroup(topics),
		goka.Input(goka.Stream(topics.ChecksCommands), new(codec.Bytes), h.command),
		goka.Input(goka.Stream(topics.Facts), new(codec.Bytes), h.facts),
		goka.Loop(new(codec.Bytes), h.answer),
		goka.Join(h.targets, kafka.ProtoCodec[fleetv1.ChecksTarget, *fleetv1.ChecksTarget]{}),
		goka.Visitor(visitExpire, h.expire),
		goka.Persist(kafka.ProtoCodec[fleetv1.ExecutionsTable, *fleetv1.ExecutionsTable]{}),
		goka.Output(h.events, new(codec.Bytes)),
		goka.Output(h.requests, new(codec.Bytes)),
		goka.Output(h.dlq, new(codec.Bytes)),
	)
}

// RunExpiry completes executions past their deadline: every interval it
// visits the executions table, until ctx ends. Visits fail while the
// processor is not running; they are retried at the next tick.
func RunExpiry(ctx context.Context, p *goka.Processor, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := p.VisitAll(ctx, visitExpire, now); err != nil && !errors.Is(err, context.Canceled) {
				logger.Debug("checks: execution expiry visit failed; retrying at the next tick", "err", err)
			}
		}
	}
}

type execHandler struct {
	rules                 *Rules
	timeout               time.Duration
	targets               goka.Table
	events, requests, dlq goka.Stream
	m                     *Metrics
	logger                *slog.Logger
}

func (h *execHandler) state(ctx goka.Context) (*fleetv1.ExecutionsTable, *fleetv1.ChecksTarget) {
	table, _ := ctx.Value().(*fleetv1.ExecutionsTable)
	target, _ := ctx.Join(h.targets).(*fleetv1.ChecksTarget)
	return table, target
}

// command follows fleet.commands.checks.v1 for RequestExecution; the
// continuous evaluation group dead-letters bad commands.
func (h *execHandler) command(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	cmd, reason := parseCommand(ctx.Key(), raw)
	if reason != "" {
		h.m.skipped.WithLabelValues(inputExecutionCommand).Inc()
		return
	}
	if cmd.GetRequestExecution() == nil {
		h.m.inputs.WithLabelValues(inputExecutionCommand, string(outcomeIgnored)).Inc()
		return
	}
	table, target := h.state(ctx)
	h.apply(ctx, inputExecutionCommand, h.rules.requestExecution(table, target, cmd, h.timeout))
}

// facts follows fleet.facts.v1 for answers to executions and forwards each
// to its target group's key.
func (h *execHandler) facts(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	fg := new(fleetv1.FactsGathered)
	if err := proto.Unmarshal(raw, fg); err != nil || raw == nil || fg.GetExecutionId() == "" {
		// Not an answer to an execution: continuous evaluation's (which
		// dead-letters what does not decode).
		h.m.inputs.WithLabelValues(inputExecutionFacts, string(outcomeIgnored)).Inc()
		return
	}
	if fg.GetGroupId() == "" || fg.GetAgentId() != ctx.Key() {
		h.deadLetter(ctx, inputExecutionFacts, fmt.Sprintf("an answer to execution %s needs group_id and agent_id (equal to the record key %q)", fg.GetExecutionId(), ctx.Key()), raw)
		return
	}
	ctx.Loopback(fg.GetGroupId(), raw, record.Headers(fg, record.TraceID(ctx)))
}

// answer follows the answers forwarded to the group id.
func (h *execHandler) answer(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	fg := new(fleetv1.FactsGathered)
	if err := proto.Unmarshal(raw, fg); err != nil || raw == nil {
		h.deadLetter(ctx, inputExecutionFacts, "value is not a fleetstream.v1.FactsGathered", raw)
		return
	}
	table, target := h.state(ctx)
	h.apply(ctx, inputExecutionFacts, h.rules.executionAnswer(table, target, ctx.Key(), fg, record.TraceID(ctx)))
}

// expire is the visitor's callback; meta is the tick's time.
func (h *execHandler) expire(ctx goka.Context, meta any) {
	now, _ := meta.(time.Time)
	table, target := h.state(ctx)
	res := h.rules.expireExecution(table, target, ctx.Key(), now)
	if res.outcome == outcomeIgnored {
		return // most visits find nothing to do: not counted
	}
	h.apply(ctx, inputExpiry, res)
}

func (h *execHandler) apply(ctx goka.Context, input string, r execResult) {
	if r.state != nil {
		ctx.SetValue(r.state)
	}
	for _, e := range r.events {
		emitProto(ctx, h.events, e.GetAggregateId(), e, e.GetTraceId())
		h.m.events.WithLabelValues(aggregate.EventName(e)).Inc()
	}
	for _, req := range r.requests {
		emitProto(ctx, h.requests, req.GetAgentId(), req, r.traceID)
		h.m.factRequests.Inc()
	}
	if r.completed != "" {
		h.m.executions.WithLabelValues(r.completed).Inc()
	}
	h.m.inputs.WithLabelValues(input, string(r.outcome)).Inc()
}

func (h *execHandler) deadLetter(ctx goka.Context, input, reason string, raw []byte) {
	h.logger.Warn("checks executions: record dead-lettered", "input", input, "key", ctx.Key(), "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason)
	record.DeadLetter(ctx, h.dlq, deadLetterStage, reason, raw)
	h.m.deadLetters.WithLabelValues(input).Inc()
}
