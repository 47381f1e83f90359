// Package mototest runs moto (the AWS API emulator from PyPI) in server
// mode on a loopback port for tests, and seeds it with resources through
// the AWS SDK.
//
// moto_server is looked up in FLEETSTREAM_MOTO_SERVER, then in the
// repository's .bin/moto virtualenv (what `make test-deps` installs), then
// on PATH. Without it a test is skipped, unless FLEETSTREAM_REQUIRE_MOTO=1
// (set by `make test`), where it fails.
package mototest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Version is the moto release `make test-deps` installs.
const Version = "5.2.5"

// Account is the account id moto reports for any credentials.
const Account = "123456789012"

// Server is a running moto server.
type Server struct {
	// URL is the endpoint, e.g. http://127.0.0.1:40123.
	URL string

	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// Options configure a server.
type Options struct {
	// Env is added to the server's environment, e.g.
	// INITIAL_NO_AUTH_ACTION_COUNT=0 to make moto check credentials.
	Env []string
}

// Start starts a moto server for the test and stops it when the test ends.
func Start(tb testing.TB) *Server { return StartWith(tb, Options{}) }

// StartWith starts a moto server with options.
func StartWith(tb testing.TB, opts Options) *Server {
	tb.Helper()
	bin, err := findServer()
	if err != nil {
		if os.Getenv("FLEETSTREAM_REQUIRE_MOTO") == "1" {
			tb.Fatalf("moto is required (FLEETSTREAM_REQUIRE_MOTO=1) but %v", err)
		}
		tb.Skipf("skipping the moto tests: %v", err)
	}
	var lastErr error
	// The free port is found by binding and releasing it, so another
	// process can take it in between: try a few.
	for range 3 {
		s, err := start(bin, opts)
		if err == nil {
			tb.Cleanup(s.stop)
			return s
		}
		lastErr = err
	}
	tb.Fatalf("start moto: %v", lastErr)
	return nil
}

func findServer() (string, error) {
	if p := os.Getenv("FLEETSTREAM_MOTO_SERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("FLEETSTREAM_MOTO_SERVER=%s: %w", p, err)
		}
		return p, nil
	}
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, ".bin", "moto", "bin", "moto_server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("moto_server"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("moto_server was not found: run `make test-deps` (installs moto[server]==%s into .bin/moto) or set FLEETSTREAM_MOTO_SERVER", Version)
}

// repoRoot is the nearest directory above the working directory with a
// go.mod: tests run in their package's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func start(bin string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), opts.Env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so stopping it reaches anything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(90 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("moto_server exited at start: %s", out.String())
		default:
		}
		resp, err := client.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("moto_server did not answer on %s within 90s: %s", s.URL, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Reset empties every moto backend.
func (s *Server) Reset(tb testing.TB) {
	tb.Helper()
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		tb.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("reset moto: %s", resp.Status)
	}
}

// Credentials are the static credentials tests use; moto accepts any.
func Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("testing", "testing", "")
}

// Config is an SDK configuration for the server in a region.
func (s *Server) Config(region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  Credentials(),
		BaseEndpoint: aws.String(s.URL),
	}
}

// Log is what the server printed, for failure messages.
func (s *Server) Log() string { return s.out.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
