package sapsystem

import (
	"fmt"
	"log/slog"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/record"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// reactionStage names the reaction in dead-letter headers.
const reactionStage = "sap_system.databases"

// Inputs of the reaction, for metrics.
const (
	inputEvent   = "event"
	inputCommand = "command"
	inputLoop    = "loop"
)

// ReactionMetrics are the metrics of the database reaction.
type ReactionMetrics struct {
	// inputs counts records by input and whether they led to a loop
	// message or a command ("forwarded", "ignored", "commands", "stored",
	// "unchanged", "dead_letter").
	inputs *prometheus.CounterVec
	// commands counts DatabaseAvailable commands sent.
	commands prometheus.Counter
}

// NewReactionMetrics registers the reaction's metrics with reg:
// fleetstream_sap_database_reaction_inputs_total and
// fleetstream_sap_database_reaction_commands_total. A nil reg leaves them
// unregistered.
func NewReactionMetrics(reg prometheus.Registerer) *ReactionMetrics {
	f := promauto.With(reg)
	return &ReactionMetrics{
		inputs: f.NewCounterVec(prometheus.CounterOpts{
			Name: "fleetstream_sap_database_reaction_inputs_total",
			Help: "Records the SAP system database reaction read, by input (event, command, loop) and outcome.",
		}, []string{"input", "outcome"}),
		commands: f.NewCounter(prometheus.CounterOpts{
			Name: "fleetstream_sap_database_reaction_commands_total",
			Help: "DatabaseAvailable commands the SAP system database reaction sent to SAP systems.",
		}),
	}
}

// ReactionGroup is the reaction's goka group in topics' namespace.
func ReactionGroup(topics kafka.Topics) goka.Group {
	return goka.Group(topics.Group(kafka.SapDatabasesGroup))
}

// NewReaction returns the reaction that tells SAP systems about the
// database they run on (see reaction_rules.go). Production and tests
// build it here; tests add goka.WithTester or builders through opts.
func NewReaction(brokers []string, topics kafka.Topics, m *ReactionMetrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return record.NewProcessor(brokers, ReactionGraph(topics, m, logger), logger, opts...)
}

// ReactionGraph is the reaction's group graph: database events and SAP
// system commands in, both re-keyed by tenant through the loop topic, the
// tenant's databases and SAP systems in the group table, DatabaseAvailable
// commands and dead letters out.
func ReactionGraph(topics kafka.Topics, m *ReactionMetrics, logger *slog.Logger) *goka.GroupGraph {
	h := &reaction{commands: goka.Stream(topics.SapSystemCommands), dlq: goka.Stream(topics.DLQ), m: m, logger: logger}
	// Bytes everywhere, decoded in the callbacks: a codec error would stop
	// the processor, and the command topic is both input and output.
	return goka.DefineGroup(ReactionGroup(topics),
		goka.Input(goka.Stream(topics.Events), new(codec.Bytes), h.event),
		goka.Input(h.commands, new(codec.Bytes), h.command),
		goka.Loop(new(codec.Bytes), h.loop),
		goka.Persist(kafka.ProtoCodec[fleetv1.SapDatabaseDependencies, *fleetv1.SapDatabaseDependencies]{}),
		goka.Output(h.commands, new(codec.Bytes)),
		goka.Output(h.dlq, new(codec.Bytes)),
	)
}

type reaction struct {
	commands goka.Stream
	dlq      goka.Stream
	m        *ReactionMetrics
	logger   *slog.Logger
}

// event follows the event store for database events. Records that do not
// decode are the event store's consumers' to report (the sink dead-letters
// them); here they are counted and skipped.
func (h *reaction) event(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	e := new(fleetv1.Event)
	if err := proto.Unmarshal(raw, e); err != nil || raw == nil {
		h.m.inputs.WithLabelValues(inputEvent, "ignored").Inc()
		return
	}
	h.forward(ctx, inputEvent, databaseUpdates(e))
}

// command follows the SAP system commands for the tenant each
// RegisterApplicationInstance names. The aggregate dead-letters what does
// not decode; here it is skipped.
func (h *reaction) command(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	c := new(fleetv1.Command)
	if err := proto.Unmarshal(raw, c); err != nil || raw == nil || c.GetAggregateId() != ctx.Key() || c.GetIssuedAt() == nil {
		h.m.inputs.WithLabelValues(inputCommand, "ignored").Inc()
		return
	}
	h.forward(ctx, inputCommand, sapSystemUpdates(c))
}

func (h *reaction) forward(ctx goka.Context, input string, sends []loopSend) {
	if len(sends) == 0 {
		h.m.inputs.WithLabelValues(input, "ignored").Inc()
		return
	}
	for _, s := range sends {
		b, err := proto.Marshal(s.msg)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode the dependency update of tenant %s: %w", s.key, err))
		}
		ctx.Loopback(s.key, b, record.Headers(s.msg, s.msg.GetTraceId()))
	}
	h.m.inputs.WithLabelValues(input, "forwarded").Inc()
}

// loop applies an update to a tenant's dependencies; only this processor
// writes the loop topic.
func (h *reaction) loop(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	u := new(fleetv1.SapDatabaseDependencyUpdate)
	if err := proto.Unmarshal(raw, u); err != nil || u.GetSubject() == nil {
		h.logger.Warn("sap_system.databases: loop record dead-lettered", "key", ctx.Key(), "partition", ctx.Partition(), "offset", ctx.Offset())
		record.DeadLetter(ctx, h.dlq, reactionStage, "not a fleetstream.v1.SapDatabaseDependencyUpdate this processor knows", raw)
		h.m.inputs.WithLabelValues(inputLoop, "dead_letter").Inc()
		return
	}
	state, _ := ctx.Value().(*fleetv1.SapDatabaseDependencies)
	next, commands := applyUpdate(state, u)
	if next == nil {
		h.m.inputs.WithLabelValues(inputLoop, "unchanged").Inc()
		return
	}
	ctx.SetValue(next)
	for _, c := range commands {
		b, err := proto.Marshal(c)
		if err != nil {
			ctx.Fail(fmt.Errorf("encode DatabaseAvailable for SAP system %s: %w", c.GetAggregateId(), err))
		}
		ctx.Emit(h.commands, c.GetAggregateId(), b, record.Headers(c, c.GetTraceId()))
		h.m.commands.Inc()
	}
	outcome := "stored"
	if len(commands) > 0 {
		outcome = "commands"
	}
	h.m.inputs.WithLabelValues(inputLoop, outcome).Inc()
}
