// Package record holds what every goka processor does with records: its
// base options (nil records delivered, goka logging through slog), reading
// the trace id, writing the standard headers, and sending a refused record
// to the dead-letter topic.
package record

import (
	"log/slog"
	"maps"

	"github.com/lovoo/goka"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
)

// NewProcessor returns a processor of graph. Every processor is built
// here, in production and tests; tests add goka.WithTester or builders
// through opts, which override the defaults set here: goka logs through
// logger, and nil records (tombstones) are passed to the callbacks, so they
// are handled or dead-lettered, not silently dropped.
func NewProcessor(brokers []string, graph *goka.GroupGraph, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	base := []goka.ProcessorOption{
		goka.WithLogger(slog.NewLogLogger(logger.Handler(), slog.LevelInfo)),
		goka.WithNilHandling(goka.NilProcess),
	}
	return goka.NewProcessor(brokers, graph, append(base, opts...)...)
}

// TraceID is the input record's trace id, or "" when it has none.
func TraceID(ctx goka.Context) string {
	return string(ctx.Headers()[kafka.HeaderTraceID])
}

// Headers returns the standard headers of a record holding msg as an emit
// option.
func Headers(msg proto.Message, traceID string) goka.ContextOption {
	return goka.WithCtxEmitHeaders(toGoka(kafka.Headers(msg, traceID)))
}

// DeadLetter sends the record being processed, unchanged, to topic with
// the reason it was refused. The input's own headers (trace id, schema) are
// kept so the record can be inspected and replayed. The group must declare
// topic as an Output with goka's bytes codec.
func DeadLetter(ctx goka.Context, topic goka.Stream, stage, reason string, value []byte) {
	h := maps.Clone(ctx.Headers())
	if h == nil {
		h = goka.Headers{}
	}
	maps.Copy(h, toGoka(kafka.DeadLetterHeaders(stage, reason, string(ctx.Topic()), ctx.Partition(), ctx.Offset())))
	ctx.Emit(topic, ctx.Key(), value, goka.WithCtxEmitHeaders(h))
}

func toGoka(h map[string]string) goka.Headers {
	out := make(goka.Headers, len(h))
	for k, v := range h {
		out[k] = []byte(v)
	}
	return out
}
