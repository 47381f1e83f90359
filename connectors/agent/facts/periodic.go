package facts

import (
	"cmp"
	"context"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Distinct returns one request per distinct gatherer and argument of reqs,
// without check id and name, sorted: the facts of a host whichever checks
// need them.
func Distinct(reqs []*fleetv1.FactRequest) []*fleetv1.FactRequest {
	seen := map[factKey]bool{}
	var out []*fleetv1.FactRequest
	for _, q := range reqs {
		k := factKey{q.GetGatherer(), q.GetArgument()}
		if !seen[k] {
			seen[k] = true
			out = append(out, &fleetv1.FactRequest{Gatherer: k.gatherer, Argument: k.argument})
		}
	}
	slices.SortFunc(out, func(a, b *fleetv1.FactRequest) int {
		return cmp.Or(cmp.Compare(a.Gatherer, b.Gatherer), cmp.Compare(a.Argument, b.Argument))
	})
	return out
}

// gatherPeriodically gathers the periodic facts now and every Interval,
// and publishes them (execution id empty) when they differ from the last
// publication: an unchanged host costs the pipeline nothing. A publication
// that fails is retried at the next round.
func (s *Service) gatherPeriodically(ctx context.Context) {
	var last [sha256.Size]byte
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if sum, ok := s.gatherRound(ctx, last); ok {
			last = sum
		}
		timer.Reset(s.cfg.Interval)
	}
}

// gatherRound gathers once and publishes if the facts' fingerprint is not
// last; it returns the fingerprint and whether it is now the published one.
func (s *Service) gatherRound(ctx context.Context, last [sha256.Size]byte) ([sha256.Size]byte, bool) {
	start := time.Now()
	facts := s.cfg.Gatherers.GatherFacts(ctx, s.periodic)
	if ctx.Err() != nil {
		return last, false
	}
	msg := &fleetv1.FactsGathered{AgentId: s.cfg.AgentID, Facts: facts}
	// Deterministic marshalling orders map entries (structpb.Struct), so
	// equal facts give equal bytes.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		s.log.Error("fingerprint gathered facts", "err", err)
		return last, false
	}
	sum := sha256.Sum256(b)
	if sum == last {
		s.cfg.Metrics.published("periodic_unchanged")
		s.log.Debug("facts unchanged; not published", "facts", len(facts), "took", time.Since(start))
		return last, true
	}
	msg.GatheredAt = timestamppb.Now()
	if err := s.publish(ctx, msg, uuid.NewString()); err != nil {
		if ctx.Err() == nil {
			s.log.Error("publish periodic facts", "err", err)
		}
		return last, false
	}
	s.cfg.Metrics.published("periodic")
	s.log.Info("facts changed; published", "facts", len(facts), "failed", countErrors(facts), "took", time.Since(start))
	return sum, true
}
