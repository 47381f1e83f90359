package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/fleetstream/fleetstream/connectors/agent"
	"github.com/fleetstream/fleetstream/connectors/agent/sim"
	"github.com/fleetstream/fleetstream/connectors/ingest"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// probeMemoryBase is added to a probe's sequence number to make the memory
// size it reports: far above any simulated machine's, so a probe's value
// is never mistaken for a real one.
const probeMemoryBase = 1 << 40

// probeTimeout is how long a probe may take before it counts as lost.
const probeTimeout = 30 * time.Second

// prober measures the latency from a discovery's ingestion to its change
// being visible in ClickHouse and through the API. Each probe sends one
// probe host's host_discovery with a memory size no machine has, noting
// the time just before the request, then polls the hosts table and GET
// /api/v1/hosts/{id} until they show that size. Probe hosts are fleet
// members of their own that send nothing else, so no regular discovery
// undoes a probe's change.
type prober struct {
	hosts *sim.Fleet
	pub   *agent.Publisher
	keys  ingest.AgentKeys
	ch    driver.Conn
	db    string
	api   *apiClient
	every time.Duration
	poll  time.Duration
	seq   int64
}

type probe struct {
	host            int
	id              string
	memory          int64
	sent            time.Time
	seenCH, seenAPI bool
}

// probeResult is one phase's probes.
type probeResult struct {
	ToClickHouse, ToAPI Latencies
	// Lost probes were not visible everywhere within probeTimeout, or the
	// phase ended before; Failed ones were refused by ingest.
	Lost, Failed int
}

// run probes until ctx ends, then waits for the probes in flight.
func (p *prober) run(ctx context.Context) probeResult {
	var (
		mu      sync.Mutex
		res     probeResult
		pending = map[string]*probe{}
		free    = make([]int, p.hosts.Len())
	)
	for i := range free {
		free[i] = i
	}
	// settle records what a poll saw and frees finished probes.
	settle := func(pr *probe, now time.Time, ch, api bool) {
		if ch && !pr.seenCH {
			pr.seenCH = true
			res.ToClickHouse.add(now.Sub(pr.sent))
		}
		if api && !pr.seenAPI {
			pr.seenAPI = true
			res.ToAPI.add(now.Sub(pr.sent))
		}
		if (pr.seenCH && pr.seenAPI) || now.Sub(pr.sent) > probeTimeout {
			if !pr.seenCH || !pr.seenAPI {
				res.Lost++
			}
			delete(pending, pr.id)
			free = append(free, pr.host)
		}
	}
	snapshot := func() []probe {
		mu.Lock()
		defer mu.Unlock()
		out := make([]probe, 0, len(pending))
		for _, pr := range pending {
			out = append(out, *pr)
		}
		return out
	}

	pollCtx, stopPolling := context.WithCancel(context.Background())
	defer stopPolling()
	var wg sync.WaitGroup
	wg.Go(func() {
		p.pollEvery(pollCtx, func(ctx context.Context) {
			probes := snapshot()
			seen := p.visibleInClickHouse(ctx, probes)
			now := time.Now()
			mu.Lock()
			for _, pr := range probes {
				if cur := pending[pr.id]; cur != nil && cur.memory == pr.memory {
					settle(cur, now, seen[pr.id] == pr.memory, false)
				}
			}
			mu.Unlock()
		})
	})
	wg.Go(func() {
		p.pollEvery(pollCtx, func(ctx context.Context) {
			for _, pr := range snapshot() {
				if pr.seenAPI {
					continue
				}
				mem, err := p.api.hostMemory(ctx, pr.id)
				now := time.Now()
				mu.Lock()
				if cur := pending[pr.id]; cur != nil && cur.memory == pr.memory {
					settle(cur, now, false, err == nil && mem == pr.memory)
				}
				mu.Unlock()
			}
		})
	})

	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			mu.Lock()
			if len(free) == 0 {
				mu.Unlock()
				continue
			}
			i := free[0]
			free = free[1:]
			mu.Unlock()
			p.seq++
			pr := &probe{host: i, id: p.hosts.AgentID(i), memory: probeMemoryBase + p.seq}
			body := p.hosts.Payload(i)
			body.TotalMemoryMB = pr.memory
			pr.sent = time.Now()
			err := p.pub.Publish(ctx, pr.id, p.keys.KeyFor(pr.id), payload.HostDiscovery, body)
			mu.Lock()
			if err != nil {
				if ctx.Err() == nil {
					res.Failed++
				}
				free = append(free, i)
			} else {
				pending[pr.id] = pr
			}
			mu.Unlock()
		}
	}
	// Probes sent before the end belong to the phase: wait for them.
	deadline := time.Now().Add(probeTimeout)
	for len(snapshot()) > 0 && time.Now().Before(deadline) {
		time.Sleep(p.poll)
	}
	stopPolling()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	res.Lost += len(pending)
	return res
}

func (p *prober) pollEvery(ctx context.Context, f func(context.Context)) {
	t := time.NewTicker(p.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}

// visibleInClickHouse returns the probe memory sizes the hosts table
// holds for the probes' hosts (any row: the newest version need not be
// merged yet for the change to be visible to a FINAL query).
func (p *prober) visibleInClickHouse(ctx context.Context, probes []probe) map[string]int64 {
	out := map[string]int64{}
	var ids []string
	for _, pr := range probes {
		if !pr.seenCH {
			ids = append(ids, "'"+pr.id+"'") // agent ids of sim hosts: UUIDs
		}
	}
	if len(ids) == 0 {
		return out
	}
	q := fmt.Sprintf("SELECT id, total_memory_mb FROM %s.hosts WHERE id IN (%s) AND total_memory_mb >= %d",
		p.db, strings.Join(ids, ","), probeMemoryBase)
	rows, err := p.ch.Query(ctx, q)
	if err != nil {
		return out
	}
	defer rows.Close()
	want := map[string]int64{}
	for _, pr := range probes {
		want[pr.id] = pr.memory
	}
	for rows.Next() {
		var id string
		var mem uint64
		if rows.Scan(&id, &mem) == nil && int64(mem) == want[id] {
			out[id] = int64(mem)
		}
	}
	return out
}

// apiClient calls the REST API with a user key.
type apiClient struct {
	base, key string
	http      *http.Client
}

func newAPIClient(base, key string, conns int) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns, conns
	return &apiClient{base: base, key: key, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// get calls path and returns the status and body.
func (a *apiClient) get(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body json.RawMessage
	err = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, err
}

// hostMemory is the total_memory_mb GET /api/v1/hosts/{id} shows.
func (a *apiClient) hostMemory(ctx context.Context, id string) (int64, error) {
	code, body, err := a.get(ctx, "/api/v1/hosts/"+id)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("GET host %s: %d %s", id, code, body)
	}
	var h struct {
		Details struct {
			// protojson writes int64 as a string.
			TotalMemoryMB json.Number `json:"total_memory_mb"`
		} `json:"details"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return 0, err
	}
	return strconv.ParseInt(h.Details.TotalMemoryMB.String(), 10, 64)
}
