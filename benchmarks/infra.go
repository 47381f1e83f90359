package benchmarks

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/fleetstream/fleetstream/internal/chlocal"
)

// broker is the Kafka the benchmark measures against.
type broker struct {
	seeds []string
	pid   int    // 0 when not on this machine
	kind  string // for the report: "Apache Kafka 4.1.0 (KRaft, one node)", "kfake (in process)"
	stop  func() error
}

// startBroker starts the benchmark's own broker (the Kafka script, or
// kfake), or looks up the one cfg names.
func startBroker(ctx context.Context, cfg Config) (*broker, error) {
	switch {
	case cfg.KFake:
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("start kfake: %w", err)
		}
		return &broker{seeds: c.ListenAddrs(), pid: os.Getpid(), kind: "kfake (in the benchmark's process)", stop: func() error { c.Close(); return nil }}, nil
	case len(cfg.Brokers) > 0:
		b := &broker{seeds: cfg.Brokers, kind: "Kafka at " + strings.Join(cfg.Brokers, ","), stop: func() error { return nil }}
		b.pid = localPID(cfg.Brokers[0])
		return b, nil
	}
	// Another process may take the free port picked before the broker
	// binds it: try again on another.
	var err error
	for range 3 {
		var b *broker
		if b, err = startScriptBroker(ctx, cfg); err == nil || ctx.Err() != nil {
			return b, err
		}
		cfg.Logger.Warn("the Kafka broker did not start; trying again on another port", "err", err)
	}
	return nil, err
}

// startScriptBroker runs `kafka.sh clean` then `kafka.sh start` with a data
// directory and port of its own, so the benchmark never shares a broker
// (or its topics) with tests or a developer's session.
func startScriptBroker(ctx context.Context, cfg Config) (*broker, error) {
	script, err := filepath.Abs(cfg.KafkaScript)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("kafka script %s: %w (run from the repository root, pass --brokers, or --kfake)", cfg.KafkaScript, err)
	}
	dir, err := filepath.Abs(filepath.Join(cfg.WorkDir, "kafka"))
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	env := append(os.Environ(), "KAFKA_DIR="+dir, "KAFKA_PORT="+strconv.Itoa(port))
	if os.Getenv("KAFKA_HEAP_OPTS") == "" {
		env = append(env, "KAFKA_HEAP_OPTS=-Xms512m -Xmx1g")
	}
	run := func(ctx context.Context, arg string) (string, error) {
		cmd := exec.CommandContext(ctx, script, arg)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("%s %s: %w: %s", cfg.KafkaScript, arg, err, strings.TrimSpace(errOut.String()))
		}
		return strings.TrimSpace(out.String()), nil
	}
	if _, err := run(ctx, "clean"); err != nil {
		return nil, err
	}
	cfg.Logger.Info("starting the benchmark's Kafka broker", "script", cfg.KafkaScript, "dir", dir, "port", port)
	began := time.Now()
	out, err := run(ctx, "start")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(out, "\n")
	seed := strings.TrimSpace(lines[len(lines)-1])
	b := &broker{
		seeds: []string{seed},
		kind:  "Apache Kafka " + kafkaVersion(cfg.KafkaScript) + " (KRaft, broker and controller in one JVM)",
		stop: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err := run(ctx, "clean")
			return err
		},
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "broker.pid")); err == nil {
		b.pid, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
	}
	if b.pid == 0 {
		b.pid = localPID(seed)
	}
	cfg.Logger.Info("Kafka broker started", "bootstrap", seed, "pid", b.pid, "took", time.Since(began).Round(time.Millisecond))
	return b, nil
}

var kafkaJar = regexp.MustCompile(`^kafka_2\.\d+-(\d+\.\d+\.\d+)\.jar$`)

// kafkaVersion reads the broker's version from the jar the script
// installed (KAFKA_LIB, by default .data/kafka-lib next to deploy/).
func kafkaVersion(script string) string {
	lib := os.Getenv("KAFKA_LIB")
	if lib == "" {
		lib = filepath.Join(filepath.Dir(script), "..", "..", ".data", "kafka-lib")
	}
	entries, _ := os.ReadDir(lib)
	for _, e := range entries {
		if m := kafkaJar.FindStringSubmatch(e.Name()); m != nil {
			return m[1]
		}
	}
	return "(version unknown)"
}

// localPID is the process listening at addr when addr is on this machine.
func localPID(addr string) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return 0
	}
	p, _ := strconv.Atoi(port)
	pid, err := ListeningPID("/proc", p)
	if err != nil {
		return 0
	}
	return pid
}

// clickhouseServer is the ClickHouse the sink writes to.
type clickhouseServer struct {
	addr string
	pid  int
	stop func() error
}

func startClickHouse(ctx context.Context, cfg Config) (*clickhouseServer, error) {
	if cfg.ClickHouse != "" {
		return &clickhouseServer{addr: cfg.ClickHouse, pid: localPID(cfg.ClickHouse), stop: func() error { return nil }}, nil
	}
	bin, err := chlocal.EnsureInstalled(ctx, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("%w (or pass --clickhouse host:9000)", err)
	}
	dir := filepath.Join(cfg.WorkDir, "clickhouse")
	srv, err := chlocal.Start(ctx, chlocal.Options{Dir: dir, Binary: bin, Logger: cfg.Logger.With("component", "clickhouse")})
	if err != nil {
		return nil, fmt.Errorf("start ClickHouse in %s: %w", dir, err)
	}
	return &clickhouseServer{addr: srv.Addr(), pid: localPID(srv.Addr()), stop: srv.Stop}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// discard is a logger for chatty parts (goka, in-process roles).
var discard = slog.New(slog.DiscardHandler)
