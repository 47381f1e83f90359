package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/connectors/agent"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// ingest is a stand-in for the ingest endpoint that checks each request
// against the contract and counts them per agent.
type ingest struct {
	t                     *testing.T
	status                func(path string) int
	holdUntil             int64
	inFlight, maxInFlight atomic.Int64

	mu          sync.Mutex
	discoveries map[string]int
	heartbeats  map[string]int
	hostnames   map[string]string
	types       map[string]map[string]int // agent id → discovery type → count
	calls       []string                  // "<agent id> <discovery type or heartbeat>", in arrival order
	onRequest   func(in *ingest)          // called with mu held
}

func newIngest(t *testing.T) *ingest {
	return &ingest{t: t, discoveries: map[string]int{}, heartbeats: map[string]int{}, hostnames: map[string]string{}, types: map[string]map[string]int{}}
}

func (in *ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := in.inFlight.Add(1)
	defer in.inFlight.Add(-1)
	for old := in.maxInFlight.Load(); n > old && !in.maxInFlight.CompareAndSwap(old, n); old = in.maxInFlight.Load() {
	}
	// Hold the request until holdUntil are in flight, so a fleet that
	// exceeded its concurrency would be caught doing it. The deadline only
	// keeps a quiet moment from stalling the test.
	for deadline := time.Now().Add(20 * time.Millisecond); in.inFlight.Load() < in.holdUntil && time.Now().Before(deadline) && r.Context().Err() == nil; {
		time.Sleep(100 * time.Microsecond)
	}
	body, _ := io.ReadAll(r.Body)
	var agentID string
	isHeartbeat := strings.HasSuffix(r.URL.Path, "/heartbeat")
	if isHeartbeat {
		agentID = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v1/hosts/"), "/heartbeat")
	} else {
		var c struct {
			AgentID       string          `json:"agent_id"`
			DiscoveryType string          `json:"discovery_type"`
			Payload       json.RawMessage `json:"payload"`
		}
		if r.URL.Path != "/api/v1/collect" || json.Unmarshal(body, &c) != nil || !slices.Contains(AgentDiscoveryTypes(), c.DiscoveryType) ||
			(c.Payload[0] != '{' && c.Payload[0] != '[') {
			in.t.Errorf("unexpected %s %s %s", r.Method, r.URL.Path, body)
		}
		agentID = c.AgentID
		in.mu.Lock()
		if c.DiscoveryType == payload.HostDiscovery {
			var p agent.HostPayload
			if err := json.Unmarshal(c.Payload, &p); err != nil {
				in.t.Errorf("host_discovery payload %s: %v", c.Payload, err)
			}
			in.hostnames[agentID] = p.Hostname
		}
		if in.types[agentID] == nil {
			in.types[agentID] = map[string]int{}
		}
		in.types[agentID][c.DiscoveryType]++
		in.calls = append(in.calls, agentID+" "+c.DiscoveryType)
		in.mu.Unlock()
	}
	if got := r.Header.Get("Authorization"); got != "Bearer key-"+agentID {
		in.t.Errorf("agent %s sent Authorization %q", agentID, got)
	}
	in.mu.Lock()
	if isHeartbeat {
		in.calls = append(in.calls, agentID+" heartbeat")
		in.heartbeats[agentID]++
	} else {
		in.discoveries[agentID]++
	}
	if in.onRequest != nil {
		in.onRequest(in)
	}
	in.mu.Unlock()
	status := http.StatusAccepted
	if isHeartbeat {
		status = http.StatusNoContent
	}
	if in.status != nil {
		status = in.status(r.URL.Path)
	}
	w.WriteHeader(status)
}

// untilEvery returns a channel closed once every one of ids has made at least
// n discoveries and n heartbeats.
func (in *ingest) untilEvery(ids []string, n int) <-chan struct{} {
	done := make(chan struct{})
	var once sync.Once
	in.onRequest = func(in *ingest) {
		for _, id := range ids {
			if in.discoveries[id] < n || in.heartbeats[id] < n {
				return
			}
		}
		once.Do(func() { close(done) })
	}
	return done
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runUntil(t *testing.T, f *Fleet, ready <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the fleet never got there")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunPublishesEveryHostWithinConcurrency(t *testing.T) {
	in := newIngest(t)
	ts := httptest.NewServer(in)
	defer ts.Close()
	var logs lockedBuffer
	const n, concurrency = 25, 3
	f := newFleet(t, Config{
		N: n, Server: ts.URL, KeyFor: func(id string) string { return "key-" + id },
		ChangeRate:        0.5,
		DiscoveryInterval: 30 * time.Millisecond, HeartbeatInterval: 15 * time.Millisecond,
		Concurrency: concurrency, ReportInterval: time.Hour,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.AgentID(i)
	}
	in.holdUntil = concurrency + 1
	runUntil(t, f, in.untilEvery(ids, 2))

	if m := in.maxInFlight.Load(); m != concurrency {
		t.Errorf("at most %d requests were in flight, want the concurrency, %d", m, concurrency)
	}
	in.mu.Lock()
	for i, id := range ids {
		if want := fmt.Sprintf("sim-%04d", i+1); in.hostnames[id] != want {
			t.Errorf("agent %s (host %d) sent hostname %q, want %q", id, i, in.hostnames[id], want)
		}
	}
	if len(in.discoveries) != n || len(in.heartbeats) != n {
		t.Errorf("discoveries from %d agents, heartbeats from %d, want %d each", len(in.discoveries), len(in.heartbeats), n)
	}
	var received uint64
	for _, id := range ids {
		received += uint64(in.discoveries[id] + in.heartbeats[id])
	}
	in.mu.Unlock()
	// Requests the server answered as the fleet stopped may be uncounted:
	// at most one per worker.
	s := f.Stats()
	if sent := s.DiscoveriesSent + s.HeartbeatsSent; sent > received || sent+concurrency < received {
		t.Errorf("stats %+v count %d calls, the server answered %d", s, sent, received)
	}
	if s.DiscoveriesFailed != 0 || s.HeartbeatsFailed != 0 {
		t.Errorf("stats %+v: nothing was refused", s)
	}
	if s.Changes == 0 || s.Changes > s.DiscoveriesSent+uint64(concurrency) {
		t.Errorf("%d changes for %d discoveries at rate 0.5", s.Changes, s.DiscoveriesSent)
	}
	var final map[string]any
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "simulated fleet stopped" {
			final = rec
		}
	}
	if final == nil || final["discoveries_sent"] != float64(s.DiscoveriesSent) || final["level"] != "INFO" {
		t.Errorf("final report %v, stats %+v", final, s)
	}
}

func TestRunCountsAndReportsFailures(t *testing.T) {
	in := newIngest(t)
	in.status = func(string) int { return http.StatusServiceUnavailable }
	ts := httptest.NewServer(in)
	defer ts.Close()
	var logs lockedBuffer
	f := newFleet(t, Config{
		N: 3, Server: ts.URL, KeyFor: func(id string) string { return "key-" + id },
		DiscoveryInterval: 20 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond,
		ReportInterval: time.Hour, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	runUntil(t, f, in.untilEvery([]string{f.AgentID(0), f.AgentID(1), f.AgentID(2)}, 3))

	// The server refused at least 18 calls; those of the 6 in flight at the
	// stop may be uncounted.
	s := f.Stats()
	if s.DiscoveriesSent != 0 || s.HeartbeatsSent != 0 || s.DiscoveriesFailed+s.HeartbeatsFailed < 18-6 {
		t.Errorf("stats %+v: every call was refused", s)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"simulated fleet stopped"`) ||
		!strings.Contains(logs.String(), "503 Service Unavailable") {
		t.Errorf("the report does not show the refusals:\n%s", logs.String())
	}
}

func TestRunNeedsAServer(t *testing.T) {
	f := newFleet(t, Config{N: 1})
	if err := f.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "Config.Server") {
		t.Errorf("err %v, want one naming Config.Server", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "simulate at least one"},
		{Config{N: 1, ChangeRate: 1.5}, "between 0 and 1"},
		{Config{N: 1, Concurrency: -1}, "must be positive"},
		{Config{N: 1, Server: "http://x"}, "no agent keys"},
		{Config{N: 1, Server: "x", APIKey: "k"}, "not an http(s) URL"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): err %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
