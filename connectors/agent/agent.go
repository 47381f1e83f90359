package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of Config, the Trento agent's periods.
const (
	DefaultDiscoveryInterval = 10 * time.Second
	DefaultHeartbeatInterval = 5 * time.Second
)

// Config of an Agent. Server and APIKey are required.
type Config struct {
	// Server is the ingest's base URL, e.g. "http://localhost:8080".
	Server string
	// APIKey is the agent's key: its own per-agent key, or the
	// installation's enrollment key.
	APIKey string
	// AgentID identifies the agent. Default: the UUIDv5 of the machine's
	// /etc/machine-id (MachineAgentID), the id the Trento agent would use.
	AgentID string
	// DiscoveryInterval is the period of every discovery. Default 10 s.
	DiscoveryInterval time.Duration
	// HeartbeatInterval is the period of the heartbeat. Default 5 s.
	HeartbeatInterval time.Duration
	// Root is the machine's file system root. Default "/".
	Root string
	// Logger receives failures (with the server's status and message) and
	// start/stop lines. Default slog.Default().
	Logger *slog.Logger
	// TrentoAPIKeyHeader also sends the key as X-Trento-Apikey.
	TrentoAPIKeyHeader bool
}

// Agent publishes the discoveries of one machine and its heartbeats.
type Agent struct {
	cfg         Config
	publisher   *Publisher
	discoverers []Discoverer
	log         *slog.Logger
}

// New checks cfg, applies its defaults and builds every registered
// discoverer.
func New(cfg Config) (*Agent, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("agent: no API key: give the key the ingest issued for this agent (or the installation's enrollment key)")
	}
	if cfg.DiscoveryInterval < 0 || cfg.HeartbeatInterval < 0 {
		return nil, errors.New("agent: discovery and heartbeat intervals must be positive (or zero for the defaults)")
	}
	cfg.DiscoveryInterval = defaultDuration(cfg.DiscoveryInterval, DefaultDiscoveryInterval)
	cfg.HeartbeatInterval = defaultDuration(cfg.HeartbeatInterval, DefaultHeartbeatInterval)
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	pub, err := NewPublisher(PublisherConfig{Server: cfg.Server, TrentoAPIKeyHeader: cfg.TrentoAPIKeyHeader})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.AgentID == "" {
		if cfg.AgentID, err = MachineAgentID(cfg.Root); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	ds, err := NewDiscoverers(Env{Root: cfg.Root, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return &Agent{cfg: cfg, publisher: pub, discoverers: ds, log: cfg.Logger.With("agent_id", cfg.AgentID)}, nil
}

func defaultDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// ID returns the agent id the agent publishes for.
func (a *Agent) ID() string { return a.cfg.AgentID }

// Run publishes every discovery each DiscoveryInterval and a heartbeat each
// HeartbeatInterval, both at once on start, until ctx is cancelled; then it
// returns nil. A call the server refuses is logged and retried sooner than
// the interval, then later and later while it keeps failing (RetryDelay).
func (a *Agent) Run(ctx context.Context) error {
	types := make([]string, len(a.discoverers))
	for i, d := range a.discoverers {
		types[i] = d.Type()
	}
	a.log.Info("agent started", "server", a.cfg.Server, "discoveries", types,
		"discovery_interval", a.cfg.DiscoveryInterval, "heartbeat_interval", a.cfg.HeartbeatInterval)
	var wg sync.WaitGroup
	wg.Go(func() {
		repeat(ctx, a.cfg.DiscoveryInterval, RetryDelay, func(ctx context.Context) error {
			sendErr, _ := a.publishDiscoveries(ctx)
			return sendErr
		})
	})
	wg.Go(func() { repeat(ctx, a.cfg.HeartbeatInterval, RetryDelay, a.heartbeat) })
	wg.Wait()
	a.log.Info("agent stopped")
	return nil
}

// PublishOnce runs every discovery, publishes what it found, and sends one
// heartbeat. The error joins every failure, local or server-side.
func (a *Agent) PublishOnce(ctx context.Context) error {
	sendErr, discoverErr := a.publishDiscoveries(ctx)
	return errors.Join(discoverErr, sendErr, a.heartbeat(ctx))
}

// repeat calls round now and then after delay(interval, consecutive
// failures) (RetryDelay in production), until ctx is cancelled.
func repeat(ctx context.Context, interval time.Duration, delay func(time.Duration, int) time.Duration, round func(context.Context) error) {
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if ctx.Err() != nil { // both were ready: stopping wins
			return
		}
		if err := round(ctx); err != nil && ctx.Err() == nil {
			failures++
		} else {
			failures = 0
		}
		timer.Reset(delay(interval, failures))
	}
}

// publishDiscoveries runs each discoverer and publishes its payload. A
// discovery that fails on the machine is skipped (discoverErr) and does not
// make the agent retry sooner: only the server's refusals do (sendErr).
func (a *Agent) publishDiscoveries(ctx context.Context) (sendErr, discoverErr error) {
	var sendErrs, discoverErrs []error
	for _, d := range a.discoverers {
		payload, err := d.Discover(ctx)
		if err != nil {
			err = fmt.Errorf("discover %s: %w", d.Type(), err)
			a.logFailure(ctx, "discovery failed on this machine; not sent", err, "type", d.Type())
			discoverErrs = append(discoverErrs, err)
			continue
		}
		if err := a.publisher.Publish(ctx, a.cfg.AgentID, a.cfg.APIKey, d.Type(), payload); err != nil {
			a.logFailure(ctx, "publish discovery", err, "type", d.Type())
			sendErrs = append(sendErrs, err)
			continue
		}
		a.log.Debug("discovery sent", "type", d.Type())
	}
	return errors.Join(sendErrs...), errors.Join(discoverErrs...)
}

func (a *Agent) heartbeat(ctx context.Context) error {
	err := a.publisher.Heartbeat(ctx, a.cfg.AgentID, a.cfg.APIKey)
	if err != nil {
		a.logFailure(ctx, "heartbeat", err)
	}
	return err
}

// logFailure logs err with the server's status, code and message when it
// answered; a failure caused by stopping is not one.
func (a *Agent) logFailure(ctx context.Context, msg string, err error, attrs ...any) {
	if ctx.Err() != nil {
		return
	}
	var se *StatusError
	if errors.As(err, &se) {
		attrs = append(attrs, "status", se.StatusCode, "server_error", se.Code, "server_message", se.Message)
	}
	a.log.Error(msg, append(attrs, "err", err)...)
}
