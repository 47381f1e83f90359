package cloudresource

import (
	"errors"
	"log/slog"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/processors/internal/record"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// deadLetterStage names this processor in dead-letter headers.
const deadLetterStage = "cloud_resource"

// NewProcessor returns the cloud_resource aggregate processor. Production
// and tests build it here; tests add goka.WithTester or builders through
// opts, which override the defaults set here (logging through logger, and
// nil records passed to the callback so they are dead-lettered, not
// dropped).
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	base := []goka.ProcessorOption{
		goka.WithLogger(slog.NewLogLogger(logger.Handler(), slog.LevelInfo)),
		goka.WithNilHandling(goka.NilProcess),
	}
	return goka.NewProcessor(brokers, Graph(topics, m, logger), append(base, opts...)...)
}

// Group is the goka group of the aggregate in topics' namespace.
func Group(topics kafka.Topics) goka.Group {
	return goka.Group(topics.Group(kafka.CloudResourceGroup))
}

// Graph is the group graph of the aggregate: cloud resource commands in,
// the resource in the group table, events and dead letters out.
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	h := &handler{
		events: goka.Stream(topics.Events),
		dlq:    goka.Stream(topics.DLQ),
		m:      m,
		logger: logger,
	}
	return goka.DefineGroup(Group(topics),
		// Bytes, decoded in the callback: a codec error would stop the processor.
		goka.Input(goka.Stream(topics.CloudResourceCommands), new(codec.Bytes), h.process),
		goka.Persist(kafka.ProtoCodec[fleetv1.CloudResource, *fleetv1.CloudResource]{}),
		goka.Output(h.events, kafka.ProtoCodec[fleetv1.Event, *fleetv1.Event]{}),
		goka.Output(h.dlq, new(codec.Bytes)),
	)
}

type handler struct {
	events goka.Stream
	dlq    goka.Stream
	m      *Metrics
	logger *slog.Logger
}

func (h *handler) process(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte) // nil for a tombstone: refused as not a Command
	cmd, err := parseCommand(ctx.Key(), raw)
	if err != nil {
		reason := "internal"
		if dl, ok := errors.AsType[*deadLetter](err); ok {
			reason = dl.reason
		}
		h.logger.Warn("cloud resource command dead-lettered", "key", ctx.Key(), "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason, "err", err)
		record.DeadLetter(ctx, h.dlq, deadLetterStage, err.Error(), raw)
		h.m.deadLetters.WithLabelValues(reason).Inc()
		return
	}
	current, _ := ctx.Value().(*fleetv1.CloudResource)
	d := decide(current, cmd)
	if d.state != nil {
		ctx.SetValue(d.state)
	}
	for _, e := range d.events {
		ctx.Emit(h.events, e.GetAggregateId(), e, record.Headers(e, e.GetTraceId()))
		h.m.events.WithLabelValues(eventName(e)).Inc()
	}
	h.m.commands.WithLabelValues(commandName(cmd), string(d.outcome)).Inc()
}
