package facts

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// handle answers one record of the agent's partition. Records keyed for
// other agents are skipped unread: every agent on the partition sees them,
// and only the addressee may judge (and dead-letter) a request.
func (s *Service) handle(ctx context.Context, r *kgo.Record) {
	if string(r.Key) != s.cfg.AgentID {
		return
	}
	req := &fleetv1.FactsGatheringRequested{}
	if err := proto.Unmarshal(r.Value, req); err != nil {
		s.deadLetter(ctx, r, "undecodable", fmt.Sprintf("not a %s: %v", proto.MessageName(req), err))
		return
	}
	switch {
	case req.GetAgentId() != s.cfg.AgentID:
		s.deadLetter(ctx, r, "wrong_agent", fmt.Sprintf("keyed by agent %s but addressed to agent %q", s.cfg.AgentID, req.GetAgentId()))
		return
	case req.GetExecutionId() == "":
		s.deadLetter(ctx, r, "invalid", "no execution_id: an answer could not be matched to its execution")
		return
	}
	log := s.log.With("execution_id", req.GetExecutionId(), "group_id", req.GetGroupId())
	if at := req.GetRequestedAt(); at != nil && time.Since(at.AsTime()) > s.cfg.MaxRequestAge {
		s.cfg.Metrics.request("stale")
		log.Info("fact request not answered: older than the execution timeout", "requested_at", at.AsTime(), "max_age", s.cfg.MaxRequestAge)
		return
	}
	start := time.Now()
	facts := s.cfg.Gatherers.GatherFacts(ctx, req.GetFacts())
	answer := &fleetv1.FactsGathered{ExecutionId: req.GetExecutionId(), GroupId: req.GetGroupId(), AgentId: s.cfg.AgentID, Facts: facts, GatheredAt: timestamppb.Now()}
	if err := s.publish(ctx, answer, traceID(r)); err != nil {
		if ctx.Err() == nil {
			s.cfg.Metrics.request("failed")
			log.Error("answer fact request", "err", err)
		}
		return
	}
	s.cfg.Metrics.request("answered")
	s.cfg.Metrics.published("request")
	log.Info("fact request answered", "facts", len(facts), "failed", countErrors(facts), "took", time.Since(start))
}

// deadLetter sends a request the agent cannot answer to the DLQ, as it
// came and with why, so it can be inspected and replayed.
func (s *Service) deadLetter(ctx context.Context, r *kgo.Record, reason, why string) {
	s.cfg.Metrics.deadLetter(reason)
	h := kafka.DeadLetterHeaders(dlqStage, why, r.Topic, r.Partition, r.Offset)
	dl := &kgo.Record{Topic: s.cfg.Topics.DLQ, Key: r.Key, Value: r.Value, Headers: append(slices.Clone(r.Headers), kafka.RecordHeaders(h)...)}
	s.log.Warn("fact request dead-lettered", "reason", why, "partition", r.Partition, "offset", r.Offset)
	if err := s.client.ProduceSync(ctx, dl).FirstErr(); err != nil && ctx.Err() == nil {
		s.log.Error("dead-letter fact request", "err", err, "partition", r.Partition, "offset", r.Offset)
	}
}

// traceID continues the request's trace, or starts one.
func traceID(r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key == kafka.HeaderTraceID && len(h.Value) > 0 {
			return string(h.Value)
		}
	}
	return uuid.NewString()
}

func countErrors(facts []*fleetv1.GatheredFact) int {
	n := 0
	for _, f := range facts {
		if f.GetError() != "" {
			n++
		}
	}
	return n
}
