package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/tlsconfig/tlstest"
)

// roleSettings parses env into the flags of a role using Kafka and
// ClickHouse, as a deployment configures it.
func roleSettings(t *testing.T, env map[string]string) *settings {
	t.Helper()
	s := &settings{}
	fs := pflag.NewFlagSet("sink", pflag.ContinueOnError)
	s.kafkaFlags(fs)
	s.clickhouseFlags(fs)
	for k, v := range env {
		t.Setenv(k, v)
	}
	if err := flagsFromEnv(fs); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecurityFromEnvironment(t *testing.T) {
	pki := tlstest.New(t)
	s := roleSettings(t, map[string]string{
		"FLEETSTREAM_KAFKA_TLS_CA":               pki.CAFile,
		"FLEETSTREAM_KAFKA_TLS_CERT":             pki.CertFile,
		"FLEETSTREAM_KAFKA_TLS_KEY":              pki.KeyFile,
		"FLEETSTREAM_KAFKA_SASL_MECHANISM":       "scram-sha-512",
		"FLEETSTREAM_KAFKA_SASL_USER":            "fleetstream",
		"FLEETSTREAM_KAFKA_SASL_PASSWORD":        "pw",
		"FLEETSTREAM_CLICKHOUSE_TLS":             "true",
		"FLEETSTREAM_CLICKHOUSE_TLS_CA":          pki.CAFile,
		"FLEETSTREAM_CLICKHOUSE_TLS_SERVER_NAME": "clickhouse.internal",
	})
	cfg, err := s.config(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	k := cfg.Kafka
	if k.TLS == nil || k.TLS.RootCAs == nil || len(k.TLS.Certificates) != 1 || k.TLS.InsecureSkipVerify {
		t.Errorf("Kafka TLS: got %+v, want the CA and the client certificate, verification on", k.TLS)
	}
	if k.SASL != (kafka.SASL{Mechanism: kafka.SASLScramSHA512, User: "fleetstream", Password: "pw"}) {
		t.Errorf("Kafka SASL: got %+v", k.SASL)
	}
	ch := cfg.ClickHouse.TLS
	if ch == nil || ch.RootCAs == nil || ch.ServerName != "clickhouse.internal" || len(ch.Certificates) != 0 {
		t.Errorf("ClickHouse TLS: got %+v", ch)
	}
}

func TestSecurityDefaultsArePlaintext(t *testing.T) {
	cfg, err := roleSettings(t, nil).config(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.TLS != nil || cfg.Kafka.SASL != (kafka.SASL{}) || cfg.ClickHouse.TLS != nil {
		t.Fatalf("no flags: got Kafka %v, ClickHouse TLS %v; want plaintext", cfg.Kafka, cfg.ClickHouse.TLS)
	}
}

func TestSecurityErrorsNameTheFlag(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"missing CA":     {map[string]string{"FLEETSTREAM_KAFKA_TLS_CA": "/nonexistent/ca.crt"}, "--kafka-tls-*: read CA bundle"},
		"no password":    {map[string]string{"FLEETSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "FLEETSTREAM_KAFKA_SASL_USER": "u"}, "--kafka-sasl-*"},
		"mechanism":      {map[string]string{"FLEETSTREAM_KAFKA_SASL_MECHANISM": "GSSAPI"}, "unknown SASL mechanism"},
		"clickhouse key": {map[string]string{"FLEETSTREAM_CLICKHOUSE_TLS_CERT": "/x.crt"}, "--clickhouse-tls-*"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := roleSettings(t, tc.env).config(prometheus.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
