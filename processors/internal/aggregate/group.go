// Package aggregate is what every command-driven aggregate (host,
// cloud_resource, ...) shares: the goka group that parses commands,
// dead-letters those it cannot read, applies the rest to the aggregate's
// state through the aggregate's pure decide function, writes the new
// state to the group table and emits the resulting events; the envelopes
// and deterministic ids of those events; and the metrics of it all.
//
// An aggregate supplies a Definition: its type, group, command topic and
// decide. Its business rules stay in its own package and never touch
// Kafka types.
package aggregate

import (
	"context"
	"log/slog"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/record"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Definition is one aggregate's group: commands in, the aggregate's state
// of type *S in the group table, events and dead letters out.
type Definition[S any, PS interface {
	*S
	State
}] struct {
	// Type is the aggregate_type of the events, e.g. "host". It also names
	// the processor in dead-letter headers and logs.
	Type string
	// GroupName is the group's name before the topics' namespace, e.g.
	// kafka.HostGroup.
	GroupName string
	// Commands picks the command topic from the topic table.
	Commands func(kafka.Topics) string
	// KeyedBy names what commands are keyed by, e.g. "host id", in the
	// reason of a record keyed otherwise.
	KeyedBy string
	// Decide applies a command to the current state (nil: the aggregate
	// does not exist yet). It must not modify current, and must derive
	// everything from the command and the state, never the clock: a
	// command reprocessed after a crash must yield identical records.
	Decide func(current PS, cmd *fleetv1.Command) Decision[PS]
	// Visit, when set, gives the group a visitor (a goka.Visitor edge
	// named VisitorName): VisitAll hands a meta value to every aggregate
	// in the table partitions the processor owns, and Visit turns it into
	// the command to decide on the aggregate keyed key, nil for none. The
	// command goes through Decide like any other, so what it emits derives
	// from meta and the state alone. A periodic sweep (the host's
	// heartbeat timeout) is its use.
	Visit func(key string, meta any) *fleetv1.Command
}

// VisitorName names the visitor edge of an aggregate with a Visit.
const VisitorName = "visit"

// VisitAll passes meta to every aggregate of proc's active partitions
// through the Definition's Visit, and returns how many it visited. It
// returns when all were visited, ctx ends or the processor rebalances or
// stops (goka.ErrVisitAborted).
func VisitAll(ctx context.Context, proc *goka.Processor, meta any) (int64, error) {
	return proc.VisitAllWithStats(ctx, VisitorName, meta)
}

// NewProcessor returns the aggregate's processor with record.NewProcessor's
// defaults; tests add goka.WithTester or builders through opts.
func (d Definition[S, PS]) NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return record.NewProcessor(brokers, d.Graph(topics, m, logger), logger, opts...)
}

// Group is the aggregate's goka group in topics' namespace.
func (d Definition[S, PS]) Group(topics kafka.Topics) goka.Group {
	return goka.Group(topics.Group(d.GroupName))
}

// Graph is the aggregate's group graph.
func (d Definition[S, PS]) Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	h := &handler[S, PS]{
		def:    d,
		events: goka.Stream(topics.Events),
		dlq:    goka.Stream(topics.DLQ),
		m:      m,
		logger: logger,
	}
	edges := []goka.Edge{
		// Bytes, decoded in the callback: a codec error would stop the processor.
		goka.Input(goka.Stream(d.Commands(topics)), new(codec.Bytes), h.process),
		goka.Persist(kafka.ProtoCodec[S, PS]{}),
		goka.Output(h.events, kafka.ProtoCodec[fleetv1.Event, *fleetv1.Event]{}),
		goka.Output(h.dlq, new(codec.Bytes)),
	}
	if d.Visit != nil {
		edges = append(edges, goka.Visitor(VisitorName, h.visit))
	}
	return goka.DefineGroup(d.Group(topics), edges...)
}

// NewView returns a goka view of the aggregate's table, kept current by
// following the table's changelog.
func (d Definition[S, PS]) NewView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return goka.NewView(brokers, goka.GroupTable(d.Group(topics)), kafka.ProtoCodec[S, PS]{}, opts...)
}

type handler[S any, PS interface {
	*S
	State
}] struct {
	def    Definition[S, PS]
	events goka.Stream
	dlq    goka.Stream
	m      *Metrics
	logger *slog.Logger
}

func (h *handler[S, PS]) process(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte) // nil for a tombstone: refused as not a Command
	cmd, err := parseCommand(ctx.Key(), raw, h.def.KeyedBy)
	if err != nil {
		reason := deadLetterReason(err)
		h.logger.Warn(noun(h.def.Type)+" command dead-lettered", "key", ctx.Key(), "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason, "err", err)
		record.DeadLetter(ctx, h.dlq, h.def.Type, err.Error(), raw)
		h.m.DeadLetters.WithLabelValues(reason).Inc()
		return
	}
	h.apply(ctx, cmd)
}

// visit decides the command Visit makes of meta for the visited aggregate.
func (h *handler[S, PS]) visit(ctx goka.Context, meta any) {
	if cmd := h.def.Visit(ctx.Key(), meta); cmd != nil {
		h.apply(ctx, cmd)
	}
}

// apply decides cmd on the aggregate of ctx, stores its new state and
// emits its events.
func (h *handler[S, PS]) apply(ctx goka.Context, cmd *fleetv1.Command) {
	current, _ := ctx.Value().(PS)
	d := h.def.Decide(current, cmd)
	if d.State != nil {
		ctx.SetValue(d.State)
	}
	for _, e := range d.Events {
		ctx.Emit(h.events, e.GetAggregateId(), e, record.Headers(e, e.GetTraceId()))
		h.m.Events.WithLabelValues(EventName(e)).Inc()
	}
	h.m.Commands.WithLabelValues(CommandName(cmd), string(d.Outcome)).Inc()
}
