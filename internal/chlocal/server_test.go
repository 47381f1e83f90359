package chlocal

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

func TestMain(m *testing.M) { Main(m) }

func open(t *testing.T, addr string) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Protocol: clickhouse.Native, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestStartRestartKeepsDataAndStop(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "clickhouse")
	srv, err := Start(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(srv.Addr())
	if host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %s, want 127.0.0.1:<picked port>", srv.Addr())
	}
	conn := open(t, srv.Addr())
	for _, q := range []string{
		"CREATE DATABASE keep",
		"CREATE TABLE keep.t (n UInt32) ENGINE = MergeTree ORDER BY n",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// 18.16 never answers an INSERT ... VALUES sent as a query: insert a block.
	b, err := conn.PrepareBatch(ctx, "INSERT INTO keep.t (n)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(7)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if c, err := net.DialTimeout("tcp", srv.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", srv.Addr())
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Same directory, port chosen by the caller: the data is still there.
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	srv2, err := Start(ctx, Options{Dir: dir, TCPPort: p})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Stop()
	if want := "127.0.0.1:" + strconv.Itoa(p); srv2.Addr() != want {
		t.Fatalf("Addr() = %s, want %s", srv2.Addr(), want)
	}
	var n uint32
	if err := open(t, srv2.Addr()).QueryRow(ctx, "SELECT n FROM keep.t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Fatalf("after restart n = %d, want 7", n)
	}
}

// The generated configuration must open the native port only: no HTTP or
// interserver listener on any address.
func TestListensOnlyOnNativePort(t *testing.T) {
	srv, err := Start(context.Background(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	ports := listeningPorts(t, srv.cmd.Process.Pid)
	_, want, _ := net.SplitHostPort(srv.Addr())
	if len(ports) != 1 || ports[0] != "127.0.0.1:"+want {
		t.Fatalf("server listens on %v, want only 127.0.0.1:%s", ports, want)
	}
}

// listeningPorts lists the TCP sockets pid listens on, from /proc.
func listeningPorts(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// local_address is field 1, st is field 3 (0A = LISTEN), inode field 9.
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			out = append(out, decodeProcAddr(fields[1]))
		}
		f.Close()
	}
	return out
}

func decodeProcAddr(s string) string {
	hostHex, portHex, _ := strings.Cut(s, ":")
	port, _ := strconv.ParseUint(portHex, 16, 16)
	if len(hostHex) != 8 {
		return "[v6]:" + strconv.FormatUint(port, 10)
	}
	v, _ := strconv.ParseUint(hostHex, 16, 32)
	ip := net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) // little-endian
	return ip.String() + ":" + strconv.FormatUint(port, 10)
}

func TestStartFailureShowsServerLog(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), Options{Dir: t.TempDir(), TCPPort: port})
	if err == nil {
		t.Fatal("Start succeeded on a port that is taken")
	}
	if !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("error does not quote the server's log: %v", err)
	}
}

func TestStartRequiresDir(t *testing.T) {
	if _, err := Start(context.Background(), Options{}); err == nil {
		t.Fatal("Start without Dir succeeded")
	}
}

const helperEnv = "CHLOCAL_TEST_ORPHAN_DIR"

// TestServerDiesWithParent starts a server from a child process, kills
// that child with SIGKILL (no chance to clean up) and expects the server to
// go with it.
func TestServerDiesWithParent(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "server-pid="); ok {
			pid, _ = strconv.Atoi(v)
			break
		}
	}
	if pid == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("helper did not report a server pid")
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("server %d not running before the parent died: %v", pid, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("clickhouse-server %d survived its parent", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOrphanHelper(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for TestServerDiesWithParent")
	}
	srv, err := Start(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("server-pid=%d\n", srv.cmd.Process.Pid)
	time.Sleep(time.Minute) // killed by the parent test long before
}

func TestForTestGivesIsolatedDatabases(t *testing.T) {
	ctx := context.Background()
	var addr, first string
	t.Run("first", func(t *testing.T) {
		var second string
		addr, first = ForTest(t)
		_, second = ForTest(t)
		if first == second {
			t.Fatalf("two calls returned the same database %s", first)
		}
		conn := open(t, addr)
		for _, db := range []string{first, second} {
			if n := countDatabases(t, conn, db); n != 1 {
				t.Fatalf("database %s does not exist", db)
			}
		}
		if err := conn.Exec(ctx, "CREATE TABLE "+first+".t (n UInt8) ENGINE = Memory"); err != nil {
			t.Fatal(err)
		}
	})
	if n := countDatabases(t, open(t, addr), first); n != 0 {
		t.Fatalf("database %s still exists after its test ended", first)
	}
}

func countDatabases(t *testing.T, conn driver.Conn, name string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.databases WHERE name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTestDatabaseName(t *testing.T) {
	got := testDatabaseName("TestX/sub case-1")
	if !strings.HasPrefix(got, "test_testx_sub_case_1_") || len(got) != len("test_testx_sub_case_1_")+8 {
		t.Fatalf("testDatabaseName = %q", got)
	}
	long := testDatabaseName(strings.Repeat("a", 200))
	if len(long) > 50 {
		t.Fatalf("name of a long test is %d characters: %q", len(long), long)
	}
}

func TestFindBinary(t *testing.T) {
	p, err := FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "clickhouse-server" {
		t.Fatalf("FindBinary = %s", p)
	}
	if !slices.Contains(binaryCandidates, p) {
		return // found only on PATH: the fallback below does not apply
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := EnsureInstalled(context.Background(), nil); err != nil {
		t.Fatalf("EnsureInstalled with the server in /usr/sbin but not on PATH: %v", err)
	}
}
