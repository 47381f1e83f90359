package tlsconfig_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetstream/fleetstream/internal/tlsconfig"
	"github.com/fleetstream/fleetstream/internal/tlsconfig/tlstest"
)

// handshake dials a TLS server that demands a client certificate and
// reports the client's handshake error.
func handshake(t *testing.T, pki *tlstest.PKI, client *tls.Config) error {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", pki.ServerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
		_, _ = c.Read(make([]byte, 1))
	}()
	conn, err := tls.Dial("tcp", lis.Addr().String(), client)
	if err != nil {
		return err
	}
	defer conn.Close()
	// TLS 1.3 reports a rejected client certificate at the first read.
	if _, err := conn.Write([]byte("x")); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	if err != nil && !strings.Contains(err.Error(), "EOF") {
		return err
	}
	return nil
}

func TestConfigConnectsWithCAAndClientCertificate(t *testing.T) {
	pki := tlstest.New(t)
	c, err := tlsconfig.Files{CA: pki.CAFile, Cert: pki.CertFile, Key: pki.KeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, pki, c); err != nil {
		t.Fatalf("handshake with the right CA and client certificate: %v", err)
	}
}

func TestConfigRejectsServerOfAnotherCA(t *testing.T) {
	pki, other := tlstest.New(t), tlstest.New(t)
	c, err := tlsconfig.Files{CA: other.CAFile, Cert: pki.CertFile, Key: pki.KeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	err = handshake(t, pki, c)
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("handshake with another CA: got %v, want an unknown authority error", err)
	}
	c.InsecureSkipVerify = true
	if err := handshake(t, pki, c); err != nil {
		t.Fatalf("InsecureSkipVerify should accept the server: %v", err)
	}
}

func TestConfigWithoutClientCertificateIsRefusedByMTLSServer(t *testing.T) {
	pki := tlstest.New(t)
	c, err := tlsconfig.Files{CA: pki.CAFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, pki, c); err == nil {
		t.Fatal("a server demanding a client certificate accepted a client without one")
	}
}

func TestConfigOff(t *testing.T) {
	c, err := tlsconfig.Files{}.Config()
	if c != nil || err != nil {
		t.Fatalf("zero Files: got %v, %v; want plain TCP (nil, nil)", c, err)
	}
	c, err = tlsconfig.Files{Enable: true}.Config()
	if err != nil || c == nil || c.RootCAs != nil || c.InsecureSkipVerify {
		t.Fatalf("Enable alone: got %+v, %v; want TLS verified against the system pool", c, err)
	}
}

func TestConfigErrorsNameTheProblem(t *testing.T) {
	pki := tlstest.New(t)
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		files tlsconfig.Files
		want  string
	}{
		"missing CA":   {tlsconfig.Files{CA: filepath.Join(t.TempDir(), "nope.crt")}, "read CA bundle"},
		"CA not PEM":   {tlsconfig.Files{CA: notPEM}, "holds no PEM certificate"},
		"cert no key":  {tlsconfig.Files{Cert: pki.CertFile}, "both the certificate and the key"},
		"key mismatch": {tlsconfig.Files{Cert: pki.CertFile, Key: tlstest.New(t).KeyFile}, "load client certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.files.Config()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
