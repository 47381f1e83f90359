package chlocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// TestAddrEnv names a running ClickHouse server (host:port, native
// protocol) for tests to use instead of starting their own.
const TestAddrEnv = "FLEETSTREAM_TEST_CLICKHOUSE"

// shared is the one server of a test binary, started by the first ForTest.
var shared struct {
	once sync.Once
	addr string
	srv  *Server
	dir  string
	err  error
}

// ForTest returns the address of a ClickHouse server and the name of a new,
// empty database on it that is dropped when t ends. The server is the one
// named by $FLEETSTREAM_TEST_CLICKHOUSE, or else one private server per
// test binary, started on first use. A package that uses ForTest must stop
// that server from its TestMain:
//
//	func TestMain(m *testing.M) { chlocal.Main(m) }
func ForTest(t testing.TB) (addr, database string) {
	t.Helper()
	shared.once.Do(startShared)
	if shared.err != nil {
		t.Fatalf("clickhouse for tests: %v", shared.err)
	}
	database = testDatabaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := execOn(ctx, shared.addr, "CREATE DATABASE "+database); err != nil {
		t.Fatalf("clickhouse for tests: create database %s on %s: %v", database, shared.addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execOn(ctx, shared.addr, "DROP DATABASE IF EXISTS "+database); err != nil {
			t.Errorf("clickhouse for tests: drop database %s: %v", database, err)
		}
	})
	return shared.addr, database
}

// Main runs the tests of a package that uses ForTest, then stops the
// server ForTest started (if any) and removes its directory. It does not
// return.
func Main(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		if err := shared.srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "chlocal: stop test server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		if err := os.RemoveAll(shared.dir); err != nil {
			fmt.Fprintf(os.Stderr, "chlocal: remove %s: %v\n", shared.dir, err)
		}
	}
	os.Exit(code)
}

func startShared() {
	if addr := os.Getenv(TestAddrEnv); addr != "" {
		shared.addr = addr
		return
	}
	dir, err := os.MkdirTemp("", "fleetstream-clickhouse-test-")
	if err != nil {
		shared.err = err
		return
	}
	srv, err := Start(context.Background(), Options{Dir: dir})
	if err != nil {
		_ = os.RemoveAll(dir)
		shared.err = fmt.Errorf("%w (or set %s to the address of a running server)", err, TestAddrEnv)
		return
	}
	shared.srv, shared.dir, shared.addr = srv, dir, srv.Addr()
}

// testDatabaseName derives a unique, valid database name from a test name,
// readable enough to find a leftover database's test.
func testDatabaseName(testName string) string {
	var b strings.Builder
	b.WriteString("test_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:]) // crypto/rand.Read never fails
	return b.String() + "_" + hex.EncodeToString(suffix[:])
}

func execOn(ctx context.Context, addr, query string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.Native, DialTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Exec(ctx, query)
}
