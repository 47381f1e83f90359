// Package sim simulates a fleet of hosts running the agent, for
// `fleetstream dev --simulate N` and the benchmarks. Each simulated host has
// a stable agent id and realistic SLES for SAP payloads; it sends its
// discoveries and its heartbeat on a real agent's intervals, through the
// agent's own Publisher, and a configurable fraction of its discoveries
// carry a change (memory resized, virtual IP moved, reboot, service pack
// upgrade, instance resized, module activated, tuning drifted). A fixed
// number of workers bounds the requests in flight.
//
// The discovery types simulated are host_discovery, cloud_discovery,
// subscription_discovery and saptune_discovery (AgentDiscoveryTypes);
// clusters and SAP systems are not.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/fleetstream/fleetstream/connectors/agent"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// namespace derives simulated agent ids: UUIDv5(namespace, "<seed>/<index>").
// It differs from the real agent's namespace, so a simulated id never
// collides with a real machine's.
var namespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/fleetstream/fleetstream/connectors/agent/sim"))

// Config of a simulated fleet.
type Config struct {
	// N is the number of hosts (required).
	N int
	// Seed names the fleet: the same seed gives the same agent ids, payloads
	// and changes. Default "fleetstream".
	Seed string
	// Server is the ingest's base URL. Run needs it; a fleet used only for
	// its payloads (benchmarks) may leave it empty.
	Server string
	// APIKey is sent by every host, unless KeyFor is set.
	APIKey string
	// KeyFor returns the key of one agent (per-agent keys); it overrides
	// APIKey and is called once per host by New.
	KeyFor func(agentID string) string
	// ChangeRate is the fraction of discoveries, 0 to 1, that change
	// something about their host.
	ChangeRate float64
	// DiscoveryTypes are the discovery types each host sends every
	// DiscoveryInterval, from AgentDiscoveryTypes. Default: host_discovery
	// only; a real agent sends all of AgentDiscoveryTypes.
	DiscoveryTypes []string
	// DiscoveryInterval and HeartbeatInterval are the agent's defaults
	// (10 s and 5 s) when zero.
	DiscoveryInterval time.Duration
	HeartbeatInterval time.Duration
	// Concurrency bounds the requests in flight. Default 64.
	Concurrency int
	// ReportInterval is the period of the log line with the rates.
	// Default 10 s.
	ReportInterval time.Duration
	// Logger receives the rate lines. Default slog.Default().
	Logger *slog.Logger
}

// Stats counts what the fleet did since it was created.
type Stats struct {
	DiscoveriesSent, DiscoveriesFailed uint64
	HeartbeatsSent, HeartbeatsFailed   uint64
	// Changes is the number of discoveries that changed their host.
	Changes uint64
}

// Pace is how often a run sends each host's calls.
type Pace struct {
	DiscoveryInterval, HeartbeatInterval time.Duration
}

// Fleet is a simulated fleet.
type Fleet struct {
	cfg    Config
	types  []int // docs indexes of cfg.DiscoveryTypes
	hosts  []*host
	pub    *agent.Publisher
	client *http.Client

	discoveriesSent, discoveriesFailed atomic.Uint64
	heartbeatsSent, heartbeatsFailed   atomic.Uint64
	changes                            atomic.Uint64
	maxLag                             atomic.Int64 // ns, since the last report

	errMu   sync.Mutex
	lastErr error // since the last report
}

// New checks cfg, applies its defaults and creates the hosts.
func New(cfg Config) (*Fleet, error) {
	switch {
	case cfg.N <= 0:
		return nil, fmt.Errorf("sim: %d hosts: simulate at least one", cfg.N)
	case cfg.ChangeRate < 0 || cfg.ChangeRate > 1:
		return nil, fmt.Errorf("sim: change rate %v: give a fraction between 0 and 1", cfg.ChangeRate)
	case cfg.DiscoveryInterval < 0 || cfg.HeartbeatInterval < 0 || cfg.ReportInterval < 0 || cfg.Concurrency < 0:
		return nil, errors.New("sim: intervals and concurrency must be positive (or zero for the defaults)")
	case cfg.Server != "" && cfg.KeyFor == nil && cfg.APIKey == "":
		return nil, errors.New("sim: no agent keys: set KeyFor (per-agent keys) or APIKey (the enrollment key)")
	}
	if len(cfg.DiscoveryTypes) == 0 {
		cfg.DiscoveryTypes = []string{payload.HostDiscovery}
	}
	var types []int
	for _, t := range cfg.DiscoveryTypes {
		k := docIndex(t)
		if k < 0 {
			return nil, fmt.Errorf("sim: cannot simulate discovery type %q: choose from %v", t, AgentDiscoveryTypes())
		}
		if slices.Contains(types, k) {
			return nil, fmt.Errorf("sim: discovery type %q listed twice", t)
		}
		types = append(types, k)
	}
	slices.Sort(types) // host_discovery first, whatever the order given
	if cfg.Seed == "" {
		cfg.Seed = "fleetstream"
	}
	cfg.DiscoveryInterval = orDefault(cfg.DiscoveryInterval, agent.DefaultDiscoveryInterval)
	cfg.HeartbeatInterval = orDefault(cfg.HeartbeatInterval, agent.DefaultHeartbeatInterval)
	cfg.ReportInterval = orDefault(cfg.ReportInterval, 10*time.Second)
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	f := &Fleet{cfg: cfg, types: types, hosts: make([]*host, cfg.N)}
	if cfg.Server != "" {
		// As many idle connections as requests in flight, or every request
		// beyond the default two per host would open a new connection.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = cfg.Concurrency, cfg.Concurrency
		f.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
		pub, err := agent.NewPublisher(agent.PublisherConfig{Server: cfg.Server, HTTPClient: f.client})
		if err != nil {
			return nil, fmt.Errorf("sim: %w", err)
		}
		f.pub = pub
	}
	for i := range f.hosts {
		id := uuid.NewSHA1(namespace, fmt.Appendf(nil, "%s/%d", cfg.Seed, i))
		key := cfg.APIKey
		if cfg.KeyFor != nil {
			key = cfg.KeyFor(id.String())
		}
		f.hosts[i] = newHost(i, id, key)
	}
	return f, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Len is the number of hosts.
func (f *Fleet) Len() int { return len(f.hosts) }

// AgentID is the agent id of host i (0 ≤ i < Len()).
func (f *Fleet) AgentID(i int) string { return f.hosts[i].id }

// Payload is host i's current host_discovery payload, without advancing it.
// Host i is named sim-<i+1>, zero-padded to four digits.
func (f *Fleet) Payload(i int) agent.HostPayload { return f.hosts[i].payload() }

// Next makes one discovery of host i, as Run does before sending it: with
// probability ChangeRate the host changes first. It reports whether it did.
func (f *Fleet) Next(i int) (agent.HostPayload, bool) {
	p, changed := f.discover(f.hosts[i])
	return clonePayload(p), changed
}

func (f *Fleet) discover(h *host) (agent.HostPayload, bool) {
	p, changed := h.discover(f.cfg.ChangeRate)
	if changed {
		f.changes.Add(1)
	}
	return p, changed
}

// DiscoveryTypes are the types each host sends, host_discovery first.
func (f *Fleet) DiscoveryTypes() []string {
	out := make([]string, len(f.types))
	for i, k := range f.types {
		out[i] = agentDiscoveryTypes[k]
	}
	return out
}

// PayloadJSON is host i's current payload of discovery type t, as its agent
// sends it, without advancing it; nil if t is not in AgentDiscoveryTypes.
// The caller must not modify it.
func (f *Fleet) PayloadJSON(i int, t string) json.RawMessage {
	k := docIndex(t)
	if k < 0 {
		return nil
	}
	return f.hosts[i].docJSON(k)
}

// NextJSON makes one discovery of type t of host i, as Run does before
// sending it: with probability ChangeRate the host changes first. It
// reports whether the payload changed; a hypervisor's cloud_discovery has
// nothing that can change. The payload is nil if t is not in
// AgentDiscoveryTypes.
func (f *Fleet) NextJSON(i int, t string) (json.RawMessage, bool) {
	k := docIndex(t)
	if k < 0 {
		return nil, false
	}
	return f.discoverDoc(f.hosts[i], k)
}

func (f *Fleet) discoverDoc(h *host, k int) (json.RawMessage, bool) {
	p, changed := h.discoverDoc(k, f.cfg.ChangeRate)
	if changed {
		f.changes.Add(1)
	}
	return p, changed
}

// Stats returns the counters.
func (f *Fleet) Stats() Stats {
	return Stats{
		DiscoveriesSent:   f.discoveriesSent.Load(),
		DiscoveriesFailed: f.discoveriesFailed.Load(),
		HeartbeatsSent:    f.heartbeatsSent.Load(),
		HeartbeatsFailed:  f.heartbeatsFailed.Load(),
		Changes:           f.changes.Load(),
	}
}

// Run sends every host's discoveries and heartbeats until ctx is cancelled,
// then logs the totals and returns nil. First calls are spread evenly over
// one interval, so the fleet does not start as one burst. A refused call is
// counted, retried after agent.RetryDelay, and reported in the periodic log
// line rather than one line per failure.
func (f *Fleet) Run(ctx context.Context) error {
	return f.RunAt(ctx, Pace{DiscoveryInterval: f.cfg.DiscoveryInterval, HeartbeatInterval: f.cfg.HeartbeatInterval})
}

// RunAt is Run at another pace than Config's intervals: a benchmark runs
// one fleet at an agent's pace, then as fast as the workers go (tiny
// intervals). Runs follow each other, never overlap; hosts keep their
// state from one run to the next, so a later run repeats what the pipeline
// already knows instead of starting a new fleet.
func (f *Fleet) RunAt(ctx context.Context, p Pace) error {
	if f.pub == nil {
		return errors.New("sim: no server: set Config.Server to the ingest's base URL")
	}
	if p.DiscoveryInterval <= 0 || p.HeartbeatInterval <= 0 {
		return fmt.Errorf("sim: pace %+v: intervals must be positive", p)
	}
	defer f.client.CloseIdleConnections()
	start, before := time.Now(), f.Stats()
	q := newQueue((len(f.types) + 1) * len(f.hosts))
	for i := range f.hosts {
		for _, k := range f.types {
			q.push(call{due: start.Add(spread(p.DiscoveryInterval, i, len(f.hosts))), host: i, kind: kind(k)})
		}
		q.push(call{due: start.Add(spread(p.HeartbeatInterval, i, len(f.hosts))), host: i, kind: heartbeat})
	}
	f.cfg.Logger.Info("simulated fleet started", "hosts", len(f.hosts), "server", f.cfg.Server,
		"types", f.DiscoveryTypes(), "change_rate", f.cfg.ChangeRate, "concurrency", f.cfg.Concurrency,
		"discovery_interval", p.DiscoveryInterval, "heartbeat_interval", p.HeartbeatInterval)

	work := make(chan call)
	var wg sync.WaitGroup
	for range f.cfg.Concurrency {
		wg.Go(func() {
			for c := range work {
				f.do(ctx, q, p, c)
			}
		})
	}
	wg.Go(func() { f.reportEvery(ctx) })
	f.schedule(ctx, q, work)
	close(work)
	wg.Wait()
	f.report("simulated fleet stopped", f.Stats(), before, time.Since(start))
	return nil
}

// Round sends one discovery of each type of every host, then one heartbeat
// of every host, Concurrency calls at a time, and returns the first
// failure: how a benchmark registers its fleet before measuring it.
func (f *Fleet) Round(ctx context.Context) error {
	if f.pub == nil {
		return errors.New("sim: no server: set Config.Server to the ingest's base URL")
	}
	for _, kinds := range [][]int{f.types, {int(heartbeat)}} {
		g, ctx := errgroup.WithContext(ctx)
		g.SetLimit(f.cfg.Concurrency)
		for _, h := range f.hosts {
			for _, k := range kinds {
				g.Go(func() error {
					if k == int(heartbeat) {
						err := f.pub.Heartbeat(ctx, h.id, h.key)
						count(err, &f.heartbeatsSent, &f.heartbeatsFailed)
						return err
					}
					p, _ := f.discoverDoc(h, k)
					err := f.pub.Publish(ctx, h.id, h.key, agentDiscoveryTypes[k], p)
					count(err, &f.discoveriesSent, &f.discoveriesFailed)
					return err
				})
			}
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("sim: round: %w", err)
		}
	}
	return nil
}

func count(err error, sent, failed *atomic.Uint64) {
	if err != nil {
		failed.Add(1)
		return
	}
	sent.Add(1)
}

// spread is host i's offset within one interval.
func spread(interval time.Duration, i, n int) time.Duration {
	return time.Duration(int64(interval) * int64(i) / int64(n))
}

// schedule hands due calls to the workers until ctx is cancelled.
func (f *Fleet) schedule(ctx context.Context, q *queue, work chan<- call) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c, wait, ok := q.popDue(time.Now())
		if ok {
			select {
			case work <- c:
				continue
			case <-ctx.Done():
				return
			}
		}
		if wait < 0 { // every call is with a worker
			wait = time.Hour
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-q.wake:
		}
	}
}

// do makes one call and queues the host's next one of the same kind.
func (f *Fleet) do(ctx context.Context, q *queue, pace Pace, c call) {
	storeMax(&f.maxLag, int64(time.Since(c.due)))
	h := f.hosts[c.host]
	var (
		err      error
		interval time.Duration
		failures *int
		sent     *atomic.Uint64
		failed   *atomic.Uint64
	)
	if c.kind == heartbeat {
		err = f.pub.Heartbeat(ctx, h.id, h.key)
		interval, failures, sent, failed = pace.HeartbeatInterval, &h.heartbeatFailures, &f.heartbeatsSent, &f.heartbeatsFailed
	} else {
		k := int(c.kind)
		p, _ := f.discoverDoc(h, k)
		err = f.pub.Publish(ctx, h.id, h.key, agentDiscoveryTypes[k], p)
		interval, failures, sent, failed = pace.DiscoveryInterval, &h.discoveryFailures[k], &f.discoveriesSent, &f.discoveriesFailed
	}
	if err != nil && ctx.Err() != nil {
		return // stopping: the call was cut short, not refused
	}
	next := c.due.Add(interval)
	if err != nil {
		*failures++
		failed.Add(1)
		f.errMu.Lock()
		f.lastErr = err
		f.errMu.Unlock()
		next = time.Now().Add(agent.RetryDelay(interval, *failures))
	} else {
		*failures = 0
		sent.Add(1)
		// Like a ticker, a call that ran more than an interval late is not
		// followed by a burst of catch-up calls.
		if now := time.Now(); next.Before(now) {
			next = now
		}
	}
	q.push(call{due: next, host: c.host, kind: c.kind})
}

func storeMax(v *atomic.Int64, x int64) {
	for old := v.Load(); x > old; old = v.Load() {
		if v.CompareAndSwap(old, x) {
			return
		}
	}
}

func (f *Fleet) reportEvery(ctx context.Context) {
	t := time.NewTicker(f.cfg.ReportInterval)
	defer t.Stop()
	prev, prevAt := f.Stats(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cur := f.Stats()
			f.report("simulated fleet", cur, prev, now.Sub(prevAt))
			prev, prevAt = cur, now
		}
	}
}

// report logs the totals and the rates since prev, elapsed ago (the last
// report, or the start of the run), with the latest failure and the worst
// lag since the last report.
func (f *Fleet) report(msg string, cur, prev Stats, elapsed time.Duration) {
	f.errMu.Lock()
	lastErr := f.lastErr
	f.lastErr = nil
	f.errMu.Unlock()
	perSec := func(a, b uint64) float64 { return float64(a-b) / max(elapsed.Seconds(), 1e-9) }
	attrs := []any{
		"hosts", len(f.hosts),
		"discoveries_sent", cur.DiscoveriesSent, "discoveries_failed", cur.DiscoveriesFailed,
		"heartbeats_sent", cur.HeartbeatsSent, "heartbeats_failed", cur.HeartbeatsFailed,
		"changes", cur.Changes,
		"discoveries_per_sec", perSec(cur.DiscoveriesSent, prev.DiscoveriesSent),
		"heartbeats_per_sec", perSec(cur.HeartbeatsSent, prev.HeartbeatsSent),
		"max_lag", time.Duration(f.maxLag.Swap(0)),
	}
	if lastErr == nil {
		f.cfg.Logger.Info(msg, attrs...)
		return
	}
	f.cfg.Logger.Warn(msg, append(attrs, "last_error", lastErr.Error())...)
}
