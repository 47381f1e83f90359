package clickhouse

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/internal/chlocal"
	"github.com/fleetstream/fleetstream/internal/tlsconfig"
	"github.com/fleetstream/fleetstream/internal/tlsconfig/tlstest"
)

// tlsFront serves the native protocol of the server at backend over mutual
// TLS, as ClickHouse's tcp_port_secure does (the local 18.16 server is
// started without one), and returns its address.
func tlsFront(t *testing.T, pki *tlstest.PKI, backend string) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", pki.ServerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			front, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer front.Close()
				back, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer back.Close()
				go func() { _, _ = io.Copy(back, front); back.Close() }()
				_, _ = io.Copy(front, back)
			})
		}
	})
	return lis.Addr().String()
}

func TestOpenOverTLS(t *testing.T) {
	addr, _ := chlocal.ForTest(t)
	pki := tlstest.New(t)
	secure := tlsFront(t, pki, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	good, err := tlsconfig.Files{CA: pki.CAFile, Cert: pki.CertFile, Key: pki.KeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := Open(ctx, Options{Addr: secure, TLS: good})
	if err != nil {
		t.Fatalf("open over mutual TLS: %v", err)
	}
	var one uint8
	if err := conn.QueryRow(ctx, "SELECT toUInt8(1)").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query over TLS: got %d, %v", one, err)
	}
	conn.Close()

	otherCA, err := tlsconfig.Files{CA: tlstest.New(t).CAFile, Cert: pki.CertFile, Key: pki.KeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Addr: secure, TLS: otherCA}); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("open with another CA: got %v, want an unknown authority error", err)
	}
	if _, err := Open(ctx, Options{Addr: secure}); err == nil {
		t.Fatal("a plaintext client talked to the TLS port")
	}
}
