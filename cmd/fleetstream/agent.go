package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/fleetstream/fleetstream/connectors/agent"
	"github.com/fleetstream/fleetstream/connectors/ingest"
)

func agentCmd() *cobra.Command {
	var cfg agent.Config
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Discover this machine and publish it to a fleetstream ingest endpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Server == "" || cfg.APIKey == "" {
				return fmt.Errorf("pass --server http://ingest:8080 and --api-key (this agent's key: fleetstream agent-key <agent id>)")
			}
			cfg.Logger = slog.Default()
			a, err := agent.New(cfg)
			if err != nil {
				return err
			}
			cfg.Logger.Info("agent starting", "agent_id", a.ID(), "server", cfg.Server)
			return a.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cfg.Server, "server", "", "base URL of the ingest endpoint")
	fs.StringVar(&cfg.APIKey, "api-key", "", "this agent's key (or the installation's enrollment key)")
	fs.StringVar(&cfg.AgentID, "agent-id", "", "agent id; default: UUIDv5 of /etc/machine-id, as the Trento agent")
	fs.DurationVar(&cfg.DiscoveryInterval, "discovery-interval", agent.DefaultDiscoveryInterval, "period of discoveries")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", agent.DefaultHeartbeatInterval, "period of heartbeats")
	fs.BoolVar(&cfg.TrentoAPIKeyHeader, "trento-header", false, "also send the key as X-Trento-Apikey")
	return cmd
}

func agentKeyCmd() *cobra.Command {
	var secret string
	cmd := &cobra.Command{
		Use:   "agent-key AGENT_ID",
		Short: "Print the ingest key of one agent, derived from --agent-key-secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if secret == "" {
				return fmt.Errorf("pass --agent-key-secret (or FLEETSTREAM_AGENT_KEY_SECRET), the ingest's secret")
			}
			fmt.Fprintln(cmd.OutOrStdout(), ingest.AgentKeys{Secret: []byte(secret)}.KeyFor(args[0]))
			return nil
		},
	}
	cmd.Flags().StringVar(&secret, "agent-key-secret", "", "the ingest's agent key secret")
	return cmd
}
