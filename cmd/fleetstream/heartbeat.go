package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/fleetstream/fleetstream/processors/host"
)

// heartbeatFlags are the process role's heartbeat settings: a host whose
// last heartbeat is older than interval·(missed+1) has lost it.
func heartbeatFlags(fs *pflag.FlagSet, c *host.HeartbeatConfig) {
	fs.DurationVar(&c.Interval, "heartbeat-interval", host.DefaultHeartbeatInterval, "how often agents heartbeat (the Trento agent: 5s); also how often hosts are swept for lost heartbeats")
	fs.IntVar(&c.Missed, "heartbeat-missed", host.DefaultHeartbeatMissed, "heartbeats a host may miss before its heartbeat is lost (at least 1)")
}

// checkHeartbeat refuses settings that would lose every heartbeat.
func checkHeartbeat(c host.HeartbeatConfig) error {
	if c.Interval <= 0 {
		return fmt.Errorf("--heartbeat-interval %v: must be positive", c.Interval)
	}
	if c.Missed < 1 {
		return fmt.Errorf("--heartbeat-missed %d: must be at least 1", c.Missed)
	}
	return nil
}
