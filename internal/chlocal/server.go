// Package chlocal runs a private clickhouse-server for development and
// tests: its own generated configuration and data directory, listening only
// on 127.0.0.1 with the native protocol, tied to the lifetime of the calling
// process. It is never a system service and never touches
// /etc/clickhouse-server or /var/lib/clickhouse.
//
// It targets Debian's clickhouse-server 18.16 (what installs here) and keeps
// to configuration keys that current ClickHouse still accepts.
package chlocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

const (
	// startTimeout bounds how long Start waits for the first successful
	// ping; 18.16 is ready in well under a second on an empty directory.
	startTimeout = 60 * time.Second
	// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	stopTimeout = 30 * time.Second
	// portAttempts is how many free ports Start tries when it picks the
	// port itself: another process may grab a free port between our probe
	// and the server's bind.
	portAttempts = 3
)

// Options configures Start.
type Options struct {
	// Dir holds config.xml, users.xml, data/ and log/. It is created when
	// missing; data survives restarts. Required.
	Dir string
	// TCPPort is the native protocol port on 127.0.0.1; 0 picks a free one.
	TCPPort int
	// Binary is the clickhouse-server executable; empty looks it up with
	// FindBinary (it never installs: see EnsureInstalled).
	Binary string
	// Logger receives lifecycle messages; nil discards them. The server's
	// own log is in Dir/log/.
	Logger *slog.Logger
}

// Server is a running clickhouse-server started by Start.
type Server struct {
	addr   string
	dir    string
	cmd    *exec.Cmd
	logger *slog.Logger

	done    chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result, set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start writes the configuration into opts.Dir, starts clickhouse-server and
// returns once it answers a native-protocol ping (at most 60s; the error
// then quotes the server's log). ctx bounds only that wait: the server runs
// until Stop, and is killed if this process dies.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("chlocal: Options.Dir is required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	binary := opts.Binary
	if binary == "" {
		var err error
		if binary, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("chlocal: data directory %s: %w", opts.Dir, err)
	}

	attempts := 1
	if opts.TCPPort == 0 {
		attempts = portAttempts
	}
	for attempt := 1; ; attempt++ {
		port := opts.TCPPort
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, fmt.Errorf("chlocal: pick a free port: %w", err)
			}
		}
		s, err := start(ctx, binary, dir, port, logger)
		if err == nil {
			return s, nil
		}
		if attempt >= attempts || !errors.Is(err, errPortInUse) {
			return nil, err
		}
		logger.Warn("clickhouse port taken before the server could bind it; trying another", "port", port)
	}
}

var errPortInUse = errors.New("port already in use")

func start(ctx context.Context, binary, dir string, port int, logger *slog.Logger) (*Server, error) {
	configPath, err := writeConfig(dir, port)
	if err != nil {
		return nil, err
	}
	console, err := os.OpenFile(filepath.Join(dir, "log", "console.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chlocal: console log: %w", err)
	}
	defer console.Close() // the child holds its own descriptor

	s := &Server{
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		dir:    dir,
		logger: logger,
		done:   make(chan struct{}),
	}
	// Not exec.CommandContext: the server must outlive Start's context.
	s.cmd = exec.Command(binary, "--config-file="+configPath)
	s.cmd.Dir = dir
	s.cmd.Stdout = console
	s.cmd.Stderr = console
	s.cmd.SysProcAttr = sysProcAttr()

	logger.Info("starting clickhouse-server", "binary", binary, "addr", s.addr, "dir", dir)
	began := time.Now()
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that forked the child exits, not
		// only when the process does. Keep this goroutine locked to its
		// thread until the child is gone so the runtime never retires that
		// thread under a live server.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("chlocal: start %s: %w", binary, err)
	}

	if err := s.waitReady(ctx); err != nil {
		select {
		case <-s.done:
		default:
			if stopErr := s.Stop(); stopErr != nil {
				logger.Warn("stop clickhouse-server after failed start", "err", stopErr)
			}
		}
		tail := s.logTail()
		if strings.Contains(tail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return nil, fmt.Errorf("chlocal: clickhouse-server on %s did not start: %w\n%s", s.addr, err, tail)
	}
	logger.Info("clickhouse-server ready", "addr", s.addr, "pid", s.cmd.Process.Pid, "took", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// waitReady pings until the server answers, it exits, or startTimeout.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{s.addr},
		Protocol:    clickhouse.Native,
		DialTimeout: time.Second,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		pingCtx, pingCancel := context.WithTimeout(ctx, 2*time.Second)
		err := conn.Ping(pingCtx)
		pingCancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("process exited: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("no answer to ping within %s: %w (last ping: %v)", startTimeout, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// Addr is the native protocol address, host:port.
func (s *Server) Addr() string { return s.addr }

// Dir is the server's directory (configuration, data, logs).
func (s *Server) Dir() string { return s.dir }

// Done is closed when the server process has exited, whether stopped or
// crashed.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM, waits for a clean shutdown and kills the server if it
// is still running after 30s. It returns an error when the server had to be
// killed or had already died on its own. Safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	select {
	case <-s.done:
		return fmt.Errorf("chlocal: clickhouse-server had already exited: %v\n%s", s.waitErr, s.logTail())
	default:
	}
	s.logger.Info("stopping clickhouse-server", "addr", s.addr)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.logger.Warn("signal clickhouse-server", "err", err)
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := s.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("chlocal: kill clickhouse-server: %w", err)
	}
	<-s.done
	return fmt.Errorf("chlocal: clickhouse-server did not stop within %s after SIGTERM and was killed", stopTimeout)
}

// logTail returns the last lines of what the server printed and logged, for
// error messages: a failed start is usually explained there.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"console.log", "server.err.log"} {
		path := filepath.Join(s.dir, "log", name)
		if tail := tailLines(path, 20); tail != "" {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", path, tail)
		}
	}
	if b.Len() == 0 {
		return "(clickhouse-server logged nothing; see " + filepath.Join(s.dir, "log") + ")"
	}
	return b.String()
}

func tailLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
