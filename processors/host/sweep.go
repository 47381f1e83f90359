package host

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/lovoo/goka"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/processors/internal/aggregate"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// Heartbeat defaults: the Trento agent heartbeats every 5 s, and a host
// may miss two before its heartbeat is lost (15 s).
const (
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultHeartbeatMissed   = 2
)

// HeartbeatConfig is how often agents heartbeat and how many heartbeats a
// host may miss before HeartbeatFailed.
type HeartbeatConfig struct {
	// Interval between an agent's heartbeats; also how often the sweep
	// runs. Zero: DefaultHeartbeatInterval.
	Interval time.Duration
	// Missed heartbeats tolerated. Zero: DefaultHeartbeatMissed.
	Missed int
}

func (c HeartbeatConfig) withDefaults() HeartbeatConfig {
	if c.Interval <= 0 {
		c.Interval = DefaultHeartbeatInterval
	}
	if c.Missed <= 0 {
		c.Missed = DefaultHeartbeatMissed
	}
	return c
}

// Timeout is how old a host's last heartbeat may be before it is lost:
// Interval·(Missed+1).
func (c HeartbeatConfig) Timeout() time.Duration {
	c = c.withDefaults()
	return c.Interval * time.Duration(c.Missed+1)
}

// Sweep is the meta of one heartbeat sweep: every host of the swept
// partitions whose last heartbeat is older than At - Timeout gets
// HeartbeatFailed, dated At. The events depend on it and the table only.
type Sweep struct {
	At      time.Time
	Timeout time.Duration
}

// sweepNamespace is the UUIDv5 namespace of sweep command ids:
// UUIDv5(URL namespace, "urn:fleetstream:sweep").
var sweepNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:sweep"))

// sweepCommand is the SweepHeartbeat the sweep meta (a Sweep) makes for
// the host keyed key; its id is UUIDv5 of "heartbeat/<host>/<sweep time in
// Unix nanoseconds>", so the same sweep yields the same command.
func sweepCommand(key string, meta any) *fleetv1.Command {
	s, ok := meta.(Sweep)
	if !ok {
		return nil
	}
	return &fleetv1.Command{
		CommandId:   uuid.NewSHA1(sweepNamespace, []byte("heartbeat/"+key+"/"+strconv.FormatInt(s.At.UnixNano(), 10))).String(),
		AggregateId: key,
		IssuedAt:    timestamppb.New(s.At),
		Body: &fleetv1.Command_SweepHeartbeat{SweepHeartbeat: &fleetv1.SweepHeartbeat{
			At: timestamppb.New(s.At), Timeout: durationpb.New(s.Timeout),
		}},
	}
}

// SweepOnce sweeps the hosts of proc's own partitions (built by
// NewProcessor) as of at, and returns how many it visited.
func SweepOnce(ctx context.Context, proc *goka.Processor, at time.Time, cfg HeartbeatConfig) (int64, error) {
	return aggregate.VisitAll(ctx, proc, Sweep{At: at.UTC(), Timeout: cfg.Timeout()})
}

// RunSweeps sweeps proc's partitions every cfg.Interval until ctx ends,
// as of now(). Each instance of the process role sweeps only the
// partitions it owns, so the hosts are swept once whatever the number of
// instances.
//
// The first sweep waits until proc recovered its table and then one
// timeout more: heartbeats that queued up in the command topic while no
// instance ran must be applied before hosts are judged by them. A sweep
// aborted by a rebalance is simply retried at the next tick.
func RunSweeps(ctx context.Context, proc *goka.Processor, cfg HeartbeatConfig, now func() time.Time, logger *slog.Logger) error {
	cfg = cfg.withDefaults()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	var since time.Time // when proc was first seen recovered
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if !proc.Recovered() {
			continue
		}
		if since.IsZero() {
			since = now()
		}
		if now().Sub(since) < cfg.Timeout() {
			continue
		}
		if _, err := SweepOnce(ctx, proc, now(), cfg); err != nil && ctx.Err() == nil {
			level := slog.LevelWarn
			if errors.Is(err, goka.ErrVisitAborted) {
				level = slog.LevelDebug
			}
			logger.Log(ctx, level, "heartbeat sweep did not finish", "err", err)
		}
	}
}
