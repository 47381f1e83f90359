package membership

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
const deadLetterStage = "membership"

// Input names, for metrics.
const (
	inputEvent = "event"
	inputLoop  = "loop"
)

// NewProcessor returns the membership process manager. Production and
// tests build it here; tests add goka.WithTester or builders through opts.
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return record.NewProcessor(brokers, Graph(topics, m, logger), logger, opts...)
}

// Group is the goka group of the membership process manager in topics'
// namespace.
func Group(topics kafka.Topics) goka.Group {
	return goka.Group(topics.Group(kafka.MembershipGroup))
}

// Graph is the group graph of the membership process manager: events in,
// memberships in the group table, updates from aggregates to hosts on the
// loop topic, cascade commands and dead letters out.
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	h := &handler{
		commands: map[string]goka.Stream{
			TypeCluster:   goka.Stream(topics.ClusterCommands),
			TypeSapSystem: goka.Stream(topics.SapSystemCommands),
			TypeDatabase:  goka.Stream(topics.DatabaseCommands),
		},
		dlq:    goka.Stream(topics.DLQ),
		m:      m,
		logger: logger,
	}
	// Bytes everywhere, decoded in the callbacks: a codec error would stop
	// the processor.
	return goka.DefineGroup(Group(topics),
		goka.Input(goka.Stream(topics.Events), new(codec.Bytes), h.event),
		goka.Loop(new(codec.Bytes), h.loop),
		goka.Persist(kafka.ProtoCodec[fleetv1.Membership, *fleetv1.Membership]{}),
		goka.Output(h.commands[TypeCluster], new(codec.Bytes)),
		goka.Output(h.commands[TypeSapSystem], new(codec.Bytes)),
		goka.Output(h.commands[TypeDatabase], new(codec.Bytes)),
		goka.Output(h.dlq, new(codec.Bytes)),
	)
}

type handler struct {
	commands map[string]goka.Stream
	dlq      goka.Stream
	m        *Metrics
	logger   *slog.Logger
}

// event follows fleet.events.v1. A record that does not decode is the
// sink's to dead-letter; here it is counted and skipped, so one bad record
// is not dead-lettered twice.
func (h *handler) event(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	e := new(fleetv1.Event)
	if err := proto.Unmarshal(raw, e); err != nil || raw == nil || e.GetAggregateId() != ctx.Key() {
		h.m.skipped.WithLabelValues(inputEvent).Inc()
		return
	}
	state, _ := ctx.Value().(*fleetv1.Membership)
	h.apply(ctx, inputEvent, applyEvent(state, ctx.Key(), e))
}

// loop follows the updates aggregates send their hosts; only this
// processor writes them.
func (h *handler) loop(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	u := new(fleetv1.MembershipUpdate)
	if err := proto.Unmarshal(raw, u); err != nil || raw == nil {
		h.deadLetter(ctx, inputLoop, "not a fleetstream.v1.MembershipUpdate", raw)
		return
	}
	state, _ := ctx.Value().(*fleetv1.Membership)
	r := applyUpdate(state, ctx.Key(), u, record.TraceID(ctx))
	if r.outcome == outcomeIgnored {
		h.deadLetter(ctx, inputLoop, fmt.Sprintf("membership update of unknown aggregate type %q or without aggregate id", u.GetAggregateType()), raw)
		return
	}
	h.apply(ctx, inputLoop, r)
}

func (h *handler) apply(ctx goka.Context, input string, r result) {
	if r.state != nil {
		ctx.SetValue(r.state)
	}
	for _, s := range r.sends {
		b, err := proto.Marshal(s.msg)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode membership update for host %s: %w", s.key, err))
		}
		ctx.Loopback(s.key, b, record.Headers(s.msg, record.TraceID(ctx)))
		h.m.updates.Inc()
	}
	for _, t := range r.commands {
		b, err := proto.Marshal(t.cmd)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode %s command for %s: %w", aggregate.CommandName(t.cmd), t.cmd.GetAggregateId(), err))
		}
		ctx.Emit(h.commands[t.typ], t.cmd.GetAggregateId(), b, record.Headers(t.cmd, t.cmd.GetTraceId()))
		h.m.commands.WithLabelValues(aggregate.CommandName(t.cmd)).Inc()
	}
	h.m.inputs.WithLabelValues(input, string(r.outcome)).Inc()
}

func (h *handler) deadLetter(ctx goka.Context, input, reason string, raw []byte) {
	h.logger.Warn("membership: record dead-lettered", "input", input, "key", ctx.Key(), "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason)
	record.DeadLetter(ctx, h.dlq, deadLetterStage, reason, raw)
	h.m.deadLetters.WithLabelValues(input).Inc()
}
