package scenario

import (
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
const deadLetterStage = "scenario"

// NewProcessor returns the scenario detection processor. Production and
// tests build it here; tests add goka.WithTester or builders through opts.
func NewProcessor(brokers []string, topics kafka.Topics, m *Metrics, logger *slog.Logger, opts ...goka.ProcessorOption) (*goka.Processor, error) {
	return record.NewProcessor(brokers, Graph(topics, m, logger), logger, opts...)
}

// Graph is the group graph of scenario detection: discoveries in, agent
// state in the group table, host and cloud resource commands and dead
// letters out. It also follows the event store for one event: a host's
// deregistration makes it forget the agent, so the agent's next
// discoveries, unchanged as they are, register the host again instead of
// being dropped as "unchanged".
func Graph(topics kafka.Topics, m *Metrics, logger *slog.Logger) *goka.GroupGraph {
	h := &handler{
		hostCommands:    goka.Stream(topics.HostCommands),
		cloudCommands:   goka.Stream(topics.CloudResourceCommands),
		clusterCommands: goka.Stream(topics.ClusterCommands),
		sapCommands:     goka.Stream(topics.SapSystemCommands),
		dbCommands:      goka.Stream(topics.DatabaseCommands),
		dlq:             goka.Stream(topics.DLQ),
		m:               m,
		logger:          logger,
	}
	return goka.DefineGroup(goka.Group(topics.Group(kafka.ScenarioGroup)),
		// Bytes, decoded in the callback: a codec error would stop the processor.
		goka.Input(goka.Stream(topics.Discoveries), new(codec.Bytes), h.process),
		goka.Input(goka.Stream(topics.Events), new(codec.Bytes), h.event),
		goka.Persist(kafka.ProtoCodec[fleetv1.ScenarioState, *fleetv1.ScenarioState]{}),
		goka.Output(h.hostCommands, kafka.ProtoCodec[fleetv1.Command, *fleetv1.Command]{}),
		goka.Output(h.cloudCommands, kafka.ProtoCodec[fleetv1.Command, *fleetv1.Command]{}),
		goka.Output(h.clusterCommands, kafka.ProtoCodec[fleetv1.Command, *fleetv1.Command]{}),
		goka.Output(h.sapCommands, kafka.ProtoCodec[fleetv1.Command, *fleetv1.Command]{}),
		goka.Output(h.dbCommands, kafka.ProtoCodec[fleetv1.Command, *fleetv1.Command]{}),
		goka.Output(h.dlq, new(codec.Bytes)),
	)
}

type handler struct {
	hostCommands goka.Stream
	// cloudCommands go to the cloud_resource aggregate.
	cloudCommands goka.Stream
	dlq           goka.Stream
	m             *Metrics
	logger        *slog.Logger

	// sapCommands and dbCommands go to the sap_system and database
	// aggregates (policy_sap.go).
	sapCommands, dbCommands goka.Stream
	// clusterCommands go to the cluster aggregate (policy_cluster.go).
	clusterCommands goka.Stream
}

func (h *handler) process(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte) // nil for a tombstone: refused as not a Discovery
	d, err := parseDiscovery(ctx.Key(), raw)
	var res result
	if err == nil {
		state, _ := ctx.Value().(*fleetv1.ScenarioState)
		res, err = detect(state, d, origin{
			topic:     string(ctx.Topic()),
			partition: ctx.Partition(),
			offset:    ctx.Offset(),
			traceID:   record.TraceID(ctx),
		})
	}
	if err != nil {
		reason := rejectionReason(err)
		h.logger.Warn("discovery dead-lettered", "key", ctx.Key(), "partition", ctx.Partition(), "offset", ctx.Offset(), "reason", reason, "err", err)
		record.DeadLetter(ctx, h.dlq, deadLetterStage, err.Error(), raw)
		h.m.deadLetters.WithLabelValues(reason).Inc()
		return
	}
	if res.state != nil {
		ctx.SetValue(res.state)
	}
	for _, c := range res.commands {
		ctx.Emit(h.commandTopic(c), c.GetAggregateId(), c, record.Headers(c, c.GetTraceId()))
		h.m.commands.WithLabelValues(aggregate.CommandName(c)).Inc()
	}
	h.m.discoveries.WithLabelValues(d.GetDiscoveryType(), string(res.outcome)).Inc()
}

// event forgets an agent whose host was deregistered; every other event,
// and one that does not decode (the sink dead-letters it), is skipped.
// Events of keys without agent state (clusters, SAP systems, databases,
// unknown agents) are skipped before decoding: events carry the whole
// aggregate state, and this input sees the whole event store.
func (h *handler) event(ctx goka.Context, msg any) {
	raw, _ := msg.([]byte)
	if raw == nil || ctx.Value() == nil {
		return
	}
	e := new(fleetv1.Event)
	if proto.Unmarshal(raw, e) != nil || !forgets(e, ctx.Key()) {
		return
	}
	ctx.Delete()
	h.m.forgotten.Inc()
}

// commandTopic is the command topic of c's aggregate.
func (h *handler) commandTopic(c *fleetv1.Command) goka.Stream {
	switch c.GetBody().(type) {
	case *fleetv1.Command_DiscoverResource, *fleetv1.Command_DeleteResource:
		return h.cloudCommands
	case *fleetv1.Command_RegisterOnlineClusterHost, *fleetv1.Command_RegisterOfflineClusterHost, *fleetv1.Command_DeregisterClusterHost:
		return h.clusterCommands
	case *fleetv1.Command_RegisterApplicationInstance, *fleetv1.Command_MarkApplicationInstanceAbsent:
		return h.sapCommands
	case *fleetv1.Command_RegisterDatabaseInstance, *fleetv1.Command_MarkDatabaseInstanceAbsent:
		return h.dbCommands
	}
	return h.hostCommands
}
