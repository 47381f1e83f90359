package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/fleetstream/fleetstream/internal/system"
)

// roleCmd is a subcommand that runs some of the roles against an existing
// Kafka and ClickHouse: one scalable deployment per role in production.
func roleCmd(use, short string, roles system.Roles) *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireBrokers(s); err != nil {
				return err
			}
			if (roles.Sink || roles.API) && s.chAddr == "" {
				return requireClickHouse(s)
			}
			if roles.Ingest && s.agentSecret == "" && s.enrollmentKey == "" {
				return fmt.Errorf("no agent keys: set --agent-key-secret (per-agent keys) and/or --enrollment-key")
			}
			if roles.API && len(s.apiKeys) == 0 {
				return fmt.Errorf("no API keys: pass --api-keys name:secret:read,write")
			}
			cfg, err := s.config(system.NewRegistry())
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", s.listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w (choose another with --listen)", s.listen, err)
			}
			cfg.Logger.Info("starting", "roles", use, "listen", lis.Addr().String(), "brokers", s.brokers)
			return system.Run(cmd.Context(), cfg, roles, lis)
		},
	}
	fs := cmd.Flags()
	s.kafkaFlags(fs)
	s.serverFlags(fs, ":8080")
	if roles.Sink || roles.API {
		s.clickhouseFlags(fs)
	}
	if roles.Ingest {
		s.ingestFlags(fs)
	}
	if roles.API {
		s.apiFlags(fs)
	}
	if roles.Process {
		heartbeatFlags(fs, &s.heartbeat)
	}
	return cmd
}

func ingestCmd() *cobra.Command {
	return roleCmd("ingest", "Serve the agents' ingest endpoint (POST /api/v1/collect, heartbeats)", system.Roles{Ingest: true})
}

func processCmd() *cobra.Command {
	return roleCmd("process", "Run the stream processors (scenario detection, aggregates)", system.Roles{Process: true})
}

func sinkCmd() *cobra.Command {
	return roleCmd("sink", "Write the event store into the ClickHouse read models", system.Roles{Sink: true})
}

func apiCmd() *cobra.Command {
	return roleCmd("api", "Serve the gRPC + REST API", system.Roles{API: true})
}

func migrateCmd() *cobra.Command {
	s := &settings{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or verify the Kafka topics and apply the ClickHouse migrations (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(s.brokers) == 0 && s.chAddr == "" {
				return fmt.Errorf("nothing to migrate: pass --brokers and/or --clickhouse")
			}
			cfg, err := s.config(system.NewRegistry())
			if err != nil {
				return err
			}
			if err := system.Prepare(cmd.Context(), cfg, len(s.brokers) > 0, s.chAddr != ""); err != nil {
				return err
			}
			cfg.Logger.Info("migrated", "kafka", s.brokers, "clickhouse", s.chAddr, "database", s.chDatabase)
			return nil
		},
	}
	s.kafkaFlags(cmd.Flags())
	s.clickhouseFlags(cmd.Flags())
	return cmd
}
