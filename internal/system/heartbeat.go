package system

import (
	"context"
	"log/slog"
	"time"

	"github.com/lovoo/goka"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/processors/host"
)

// runHeartbeatSweeps sweeps the host partitions this instance owns for
// lost heartbeats, every heartbeat interval, while hp runs.
func runHeartbeatSweeps(ctx context.Context, g *errgroup.Group, cfg Config, hp *goka.Processor, log *slog.Logger) {
	g.Go(func() error {
		return host.RunSweeps(ctx, hp, cfg.Heartbeat, time.Now, log.With("processor", "host", "task", "heartbeat sweep"))
	})
}
