package links

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
const deadLetterStage = "links"

// Input names, for metrics.
const (
	inputEvent     = "event"
	inputDiscovery = "discovery"
	inputLoop      = "loop"
)

// NewProcessor returns the links processor. Production and tests build it
// here; tests add goka.WithTester or builders through opts.
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return record.NewProcessor(brokers, Graph(topics, m, logger), logger, opts...)
}

// Group is the goka group of the links processor in topics' namespace.
func Group(topics kafka.Topics) goka.Group {
	return goka.Group(topics.Group(kafka.LinksGroup))
}

// Graph is the group graph of the links processor: events and discoveries
// in, entities' links in the group table, messages between the ends of a
// link on the loop topic, link events and dead letters out.
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	h := &handler{
		events: goka.Stream(topics.Events),
		dlq:    goka.Stream(topics.DLQ),
		m:      m,
		logger: logger,
	}
	// Bytes everywhere, decoded in the callbacks: a codec error would stop
	// the processor.
	return goka.DefineGroup(Group(topics),
		goka.Input(goka.Stream(topics.Events), new(codec.Bytes), h.event),
		goka.Input(goka.Stream(topics.Discoveries), new(codec.Bytes), h.discovery),
		goka.Loop(new(codec.Bytes), h.loop),
		goka.Persist(kafka.ProtoCodec[fleetv1.EntityLinks, *fleetv1.EntityLinks]{}),
		// Bytes, encoded in the callback: the events topic is also an input,
		// and a topic has one codec per group.
		goka.Output(h.events, new(codec.Bytes)),
		goka.Output(h.dlq, new(codec.Bytes)),
	)
}

type handler struct {
	events goka.Stream
	dlq    goka.Stream
	m      *Metrics
	logger *slog.Logger
}

// event follows fleet.events.v1. A record that does not decode is the
// sink's to dead-letter (it owns the event store's consumers' contract);
// here it is counted and skipped, so one bad record is not dead-lettered
// twice.
func (h *handler) event(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	e := new(fleetv1.Event)
	if err := proto.Unmarshal(raw, e); err != nil || raw == nil || e.GetAggregateId() != ctx.Key() {
		h.m.skipped.WithLabelValues(inputEvent).Inc()
		return
	}
	state, _ := ctx.Value().(*fleetv1.EntityLinks)
	h.apply(ctx, inputEvent, applyResourceEvent(state, ctx.Key(), e))
}

// discovery follows fleet.discoveries.v1 for cloud_discovery. Records that
// do not decode are scenario detection's to dead-letter; a cloud_discovery
// whose metadata links cannot read is dead-lettered here, since scenario
// detection accepts any JSON for that type.
func (h *handler) discovery(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	d := new(fleetv1.Discovery)
	if err := proto.Unmarshal(raw, d); err != nil || raw == nil || d.GetAgentId() != ctx.Key() || d.GetCollectedAt() == nil {
		h.m.skipped.WithLabelValues(inputDiscovery).Inc()
		return
	}
	state, _ := ctx.Value().(*fleetv1.EntityLinks)
	res, err := applyCloudDiscovery(state, d, record.TraceID(ctx), discoveryCause(ctx))
	if err != nil {
		h.deadLetter(ctx, inputDiscovery, err.Error(), raw)
		return
	}
	h.apply(ctx, inputDiscovery, res)
}

// loop follows the messages between the ends of links; only this
// processor writes them.
func (h *handler) loop(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	m := new(fleetv1.LinkMessage)
	if err := proto.Unmarshal(raw, m); err != nil || m.GetBody() == nil {
		h.deadLetter(ctx, inputLoop, "not a fleetstream.v1.LinkMessage this processor knows", raw)
		return
	}
	state, _ := ctx.Value().(*fleetv1.EntityLinks)
	h.apply(ctx, inputLoop, applyMessage(state, ctx.Key(), m, record.TraceID(ctx)))
}

func (h *handler) apply(ctx goka.Context, input string, r result) {
	if r.state != nil {
		ctx.SetValue(r.state)
	}
	for _, e := range r.events {
		b, err := proto.Marshal(e)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode %s event %s: %w", aggregate.EventName(e), e.GetEventId(), err))
		}
		ctx.Emit(h.events, e.GetAggregateId(), b, record.Headers(e, e.GetTraceId()))
		h.m.events.WithLabelValues(aggregate.EventName(e)).Inc()
	}
	for _, s := range r.sends {
		b, err := proto.Marshal(s.msg)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode link message to %s: %w", s.key, err))
		}
		ctx.Loopback(s.key, b, record.Headers(s.msg, r.traceID))
		h.m.messages.Inc()
	}
	h.m.inputs.WithLabelValues(input, string(r.outcome)).Inc()
}

func (h *handler) deadLetter(ctx goka.Context, input, reason string, raw []byte) {
	h.logger.Warn("links: record dead-lettered", "input", input, "key", ctx.Key(), "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason)
	record.DeadLetter(ctx, h.dlq, deadLetterStage, reason, raw)
	h.m.deadLetters.WithLabelValues(input).Inc()
}

// discoveryCause names a discovery record, "<topic>/<partition>/<offset>",
// for the command_id of the link events it causes: discoveries have no id
// of their own.
func discoveryCause(ctx goka.Context) string {
	return fmt.Sprintf("%s/%d/%d", ctx.Topic(), ctx.Partition(), ctx.Offset())
}
