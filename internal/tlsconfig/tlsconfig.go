// Package tlsconfig turns the PEM files a deployment mounts (a CA bundle, a
// client certificate and its key) into the *tls.Config of a client: the
// Kafka and ClickHouse connections of every role are configured the same way.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files configures a TLS client. The zero value is plain TCP.
type Files struct {
	// Enable turns TLS on with the system's CA pool; any of the fields
	// below turns it on too.
	Enable bool
	// CA is a PEM bundle of the CAs that sign the server certificates;
	// empty trusts the system pool.
	CA string
	// Cert and Key are the PEM client certificate and its key, for servers
	// that authenticate clients by certificate (mTLS). Both or neither.
	Cert, Key string
	// ServerName overrides the name verified in the server certificate;
	// empty uses the host dialed.
	ServerName string
	// InsecureSkipVerify accepts any server certificate: encryption without
	// authentication, for tests only. Off by default.
	InsecureSkipVerify bool
}

// Enabled tells whether f asks for TLS.
func (f Files) Enabled() bool {
	return f.Enable || f.CA != "" || f.Cert != "" || f.Key != "" || f.ServerName != "" || f.InsecureSkipVerify
}

// Config loads the files; it returns nil (plain TCP) when f asks for no TLS.
// The result holds the loaded material, so a rotated file takes effect at
// the next start.
func (f Files) Config() (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify,
	}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", f.CA)
		}
		c.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("a client certificate needs both the certificate and the key file")
	}
	if f.Cert != "" {
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s / key %s: %w", f.Cert, f.Key, err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}
