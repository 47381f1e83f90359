package main

import (
	"crypto/tls"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/tlsconfig"
)

// kafkaSecurityFlags are how the roles reach a secured Kafka: TLS (server
// verification, optional client certificate) and SASL.
func (s *settings) kafkaSecurityFlags(fs *pflag.FlagSet) {
	tlsFlags(fs, "kafka", "the Kafka brokers", &s.kafkaTLS)
	fs.StringVar(&s.kafkaSASL.Mechanism, "kafka-sasl-mechanism", "", "SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (PLAIN only over TLS); empty: no SASL")
	fs.StringVar(&s.kafkaSASL.User, "kafka-sasl-user", "", "SASL user")
	fs.StringVar(&s.kafkaSASL.Password, "kafka-sasl-password", "", "SASL password; prefer FLEETSTREAM_KAFKA_SASL_PASSWORD to the command line")
}

// tlsFlags adds --<name>-tls and --<name>-tls-* for a TLS client of what.
func tlsFlags(fs *pflag.FlagSet, name, what string, f *tlsconfig.Files) {
	fs.BoolVar(&f.Enable, name+"-tls", false, "connect to "+what+" over TLS (implied by any --"+name+"-tls-* flag)")
	fs.StringVar(&f.CA, name+"-tls-ca", "", "PEM bundle of the CAs that sign the certificates of "+what+"; empty: the system's CAs")
	fs.StringVar(&f.Cert, name+"-tls-cert", "", "PEM client certificate for "+what+" (mutual TLS), with --"+name+"-tls-key")
	fs.StringVar(&f.Key, name+"-tls-key", "", "PEM key of --"+name+"-tls-cert")
	fs.StringVar(&f.ServerName, name+"-tls-server-name", "", "name verified in the certificate of "+what+"; empty: the host dialed")
	fs.BoolVar(&f.InsecureSkipVerify, name+"-tls-insecure-skip-verify", false, "accept any certificate from "+what+": encryption without authentication, for tests only")
}

// security loads the TLS files of Kafka and ClickHouse and checks the SASL
// settings, so a role with a wrong path or mechanism stops before it starts.
func (s *settings) security() (kafka.Security, *tls.Config, error) {
	kafkaTLS, err := s.kafkaTLS.Config()
	if err != nil {
		return kafka.Security{}, nil, fmt.Errorf("--kafka-tls-*: %w", err)
	}
	sasl := s.kafkaSASL
	sasl.Mechanism = kafka.ParseMechanism(sasl.Mechanism)
	sec := kafka.Security{TLS: kafkaTLS, SASL: sasl}
	if err := sec.Validate(); err != nil {
		return sec, nil, fmt.Errorf("--kafka-sasl-*: %w", err)
	}
	chTLS, err := s.chTLS.Config()
	if err != nil {
		return sec, nil, fmt.Errorf("--clickhouse-tls-*: %w", err)
	}
	return sec, chTLS, nil
}
