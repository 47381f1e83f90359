package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/connectors/clickhouse"
	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/internal/kafka"
	"github.com/fleetstream/fleetstream/internal/system"
)

// Component names, as the report shows them.
const (
	compIngest     = "ingest"
	compProcess    = "process"
	compSink       = "sink"
	compAPI        = "api"
	compKafka      = "kafka"
	compClickHouse = "clickhouse"
	compBench      = "load generator"
	compOther      = "other processes on the machine"
)

// roleNames are the fleetstream roles, each its own process.
var roleNames = []string{compIngest, compProcess, compSink, compAPI}

// role is one running fleetstream role.
type role struct {
	name string
	base string // http://127.0.0.1:port
	pid  int
	stop func() error
}

// pipelineSettings are what every role is given.
type pipelineSettings struct {
	brokers    []string
	partitions int32
	chAddr     string
	database   string
	agentKeys  ingest.AgentKeys
	userKey    api.Key
}

func (s pipelineSettings) args(name, listen string) []string {
	args := []string{name, "--log-level", "warn", "--brokers", strings.Join(s.brokers, ","),
		"--partitions", strconv.Itoa(int(s.partitions)), "--listen", listen}
	switch name {
	case compIngest:
		args = append(args, "--agent-key-secret", string(s.agentKeys.Secret))
	case compSink:
		args = append(args, "--clickhouse", s.chAddr, "--clickhouse-database", s.database)
	case compAPI:
		args = append(args, "--clickhouse", s.chAddr, "--clickhouse-database", s.database, "--api-keys", s.userKey.Spec())
	}
	return args
}

// startRole runs one role as `binary <role>`, its output in logDir.
func startRole(binary, logDir, name string, s pipelineSettings) (*role, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(binary, s.args(name, listen)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The roles must not outlive the benchmark, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", binary, name, err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	r := &role{name: name, base: "http://" + listen, pid: cmd.Process.Pid}
	r.stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return nil
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not stop within 20s of SIGTERM and was killed (see %s)", name, logPath)
		}
	}
	if err := waitHTTP(exited, func() error { return exitErr }, r.base+readyPath(name), 2*time.Minute); err != nil {
		_ = r.stop()
		return nil, fmt.Errorf("%s: %w (see %s)", name, err, logPath)
	}
	return r, nil
}

// startInProcess runs every role inside this process (Config.Binary
// empty), as `fleetstream dev` does: one system.Run, since goka's
// configuration is global, on one listener serving all the roles' routes
// and metrics.
func startInProcess(s pipelineSettings) (*role, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	keys, err := api.NewKeys(s.userKey)
	if err != nil {
		return nil, err
	}
	topics := kafka.DefaultTopics()
	topics.Partitions = s.partitions
	cfg := system.Config{
		Brokers:     s.brokers,
		Topics:      topics,
		Replication: 1,
		ClickHouse:  clickhouse.Options{Addr: s.chAddr},
		Database:    s.database,
		AgentKeys:   s.agentKeys,
		UserKeys:    keys,
		Logger:      discard,
		Registry:    prometheus.NewRegistry(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan struct{})
	var runErr error
	go func() { runErr = system.Run(ctx, cfg, system.All(), lis); close(exited) }()
	r := &role{name: "all roles", base: "http://" + lis.Addr().String(), pid: os.Getpid()}
	var once sync.Once
	r.stop = func() error {
		once.Do(func() { cancel(); <-exited })
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			return fmt.Errorf("roles in process: %w", runErr)
		}
		return nil
	}
	if err := waitHTTP(exited, func() error { return runErr }, r.base+readyPath(compAPI), 2*time.Minute); err != nil {
		_ = r.stop()
		return nil, fmt.Errorf("roles in process: %w", err)
	}
	return r, nil
}

func readyPath(name string) string {
	if name == compAPI {
		return "/readyz" // the view has recovered and ClickHouse answers
	}
	return "/healthz"
}

// waitHTTP polls url until it answers 200, the role exits (exitErr then
// says why), or limit passes.
func waitHTTP(exited <-chan struct{}, exitErr func() error, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready: %v", exitErr())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", limit, last)
}
