package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/system"
	"github.com/fleetstream/fleetstream/internal/tlsconfig"
	"github.com/fleetstream/fleetstream/processors/host"
)

// settings are the flags shared by the roles; each is also read from
// FLEETSTREAM_<FLAG> (see flagsFromEnv).
type settings struct {
	brokers       []string
	partitions    int32
	replication   int16
	chAddr        string
	chDatabase    string
	chUser        string
	chPassword    string
	chTLS         tlsconfig.Files
	kafkaTLS      tlsconfig.Files
	kafkaSASL     kafka.SASL
	agentSecret   string
	enrollmentKey string
	apiKeys       []string
	listen        string
	stateDir      string
	maxBody       int64
	heartbeat     host.HeartbeatConfig
}

func (s *settings) kafkaFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&s.brokers, "brokers", nil, "Kafka seed brokers, host:port, comma separated")
	fs.Int32Var(&s.partitions, "partitions", kafka.DefaultTopics().Partitions, "partitions of every fleetstream topic (co-partitioned: all equal)")
	fs.Int16Var(&s.replication, "replication", 1, "replication factor of topics created by fleetstream")
	s.kafkaSecurityFlags(fs)
}

func (s *settings) clickhouseFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.chAddr, "clickhouse", "", "ClickHouse native-protocol address, host:9000")
	fs.StringVar(&s.chDatabase, "clickhouse-database", "fleetstream", "ClickHouse database of the read models")
	fs.StringVar(&s.chUser, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&s.chPassword, "clickhouse-password", "", "ClickHouse password")
	tlsFlags(fs, "clickhouse", "ClickHouse", &s.chTLS)
}

func (s *settings) ingestFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.agentSecret, "agent-key-secret", "", "secret from which per-agent keys are derived (fleetstream agent-key)")
	fs.StringVar(&s.enrollmentKey, "enrollment-key", "", "shared key that may publish for any agent id (the Trento agent's --api-key); empty turns it off")
	fs.Int64Var(&s.maxBody, "max-body-bytes", 1<<20, "largest accepted ingest request; larger ones get 413")
}

func (s *settings) apiFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&s.apiKeys, "api-keys", nil, "user API key as name:secret:scopes (scopes: read,write); repeat the flag, or separate keys with ';'")
}

func (s *settings) serverFlags(fs *pflag.FlagSet, listen string) {
	fs.StringVar(&s.listen, "listen", listen, "HTTP/gRPC listen address")
	fs.StringVar(&s.stateDir, "state-dir", "", "directory of the processors' local table storage; empty keeps it in memory and rebuilds it from Kafka at start")
}

// config turns the settings into the roles' configuration.
func (s *settings) config(reg *prometheus.Registry) (system.Config, error) {
	topics := kafka.DefaultTopics()
	topics.Partitions = s.partitions
	kafkaSec, chTLS, err := s.security()
	if err != nil {
		return system.Config{}, err
	}
	if err := checkHeartbeat(s.heartbeat); s.heartbeat != (host.HeartbeatConfig{}) && err != nil { // set only with the process role
		return system.Config{}, err
	}
	cfg := system.Config{
		Brokers:      s.brokers,
		Kafka:        kafkaSec,
		Topics:       topics,
		Replication:  s.replication,
		ClickHouse:   clickhouse.Options{Addr: s.chAddr, Username: s.chUser, Password: s.chPassword, TLS: chTLS},
		Database:     s.chDatabase,
		AgentKeys:    ingest.AgentKeys{Secret: []byte(s.agentSecret), Enrollment: s.enrollmentKey},
		MaxBodyBytes: s.maxBody,
		StateDir:     s.stateDir,
		Heartbeat:    s.heartbeat,
		Logger:       slog.Default(),
		Registry:     reg,
	}
	var specs []string
	for _, k := range s.apiKeys {
		specs = append(specs, strings.Split(k, ";")...)
	}
	if len(specs) > 0 {
		keys, err := api.ParseKeys(specs)
		if err != nil {
			return cfg, fmt.Errorf("--api-keys: %w", err)
		}
		cfg.UserKeys = keys
	}
	return cfg, nil
}

func requireBrokers(s *settings) error {
	if len(s.brokers) == 0 {
		return fmt.Errorf("no Kafka brokers: pass --brokers host:9092 (or FLEETSTREAM_BROKERS)")
	}
	return nil
}

func requireClickHouse(s *settings) error {
	if s.chAddr == "" {
		return fmt.Errorf("no ClickHouse: pass --clickhouse host:9000 (or FLEETSTREAM_CLICKHOUSE)")
	}
	return nil
}
