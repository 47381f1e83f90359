package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// trentoFixtureAgentID is the agent id of testdata/root's machine-id.
const trentoFixtureAgentID = "779cdd70-e9e2-58ca-b18a-bf3eb3f71244"

func TestPublishOnce(t *testing.T) {
	rec, ts := newServer(t, contract)
	a, err := New(Config{Server: ts.URL, APIKey: "key-1", Root: fakeRoot, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != trentoFixtureAgentID {
		t.Errorf("agent id %s, want the machine-id's %s", a.ID(), trentoFixtureAgentID)
	}
	if err := a.PublishOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want a discovery and a heartbeat", len(reqs))
	}
	var body struct {
		AgentID       string      `json:"agent_id"`
		DiscoveryType string      `json:"discovery_type"`
		Payload       HostPayload `json:"payload"`
	}
	if err := json.Unmarshal(reqs[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if body.AgentID != trentoFixtureAgentID || body.DiscoveryType != "host_discovery" ||
		body.Payload.Hostname != "suse" || body.Payload.OSVersion != "15-SP4" {
		t.Errorf("collect body %s", reqs[0].body)
	}
	if reqs[1].path != "/api/v1/hosts/"+trentoFixtureAgentID+"/heartbeat" {
		t.Errorf("heartbeat path %s", reqs[1].path)
	}
}

func TestConfiguredAgentIDWins(t *testing.T) {
	rec, ts := newServer(t, contract)
	a, err := New(Config{Server: ts.URL, APIKey: "k", AgentID: "my-agent", Root: fakeRoot, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PublishOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p := rec.requests()[1].path; p != "/api/v1/hosts/my-agent/heartbeat" {
		t.Errorf("heartbeat path %s", p)
	}
}

func TestPublishOnceReportsRefusals(t *testing.T) {
	_, ts := newServer(t, func(recorded) (int, string) {
		return http.StatusForbidden, `{"error":"forbidden","message":"this agent key may not publish for agent x"}`
	})
	a, err := New(Config{Server: ts.URL, APIKey: "k", Root: fakeRoot, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	err = a.PublishOnce(t.Context())
	if err == nil || strings.Count(err.Error(), "403 Forbidden") != 2 {
		t.Errorf("err %v: want both the discovery's and the heartbeat's 403", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no key", Config{Server: "http://x", Root: fakeRoot}, "no API key"},
		{"bad server", Config{Server: "x:1", APIKey: "k", Root: fakeRoot}, "not an http(s) URL"},
		{"negative interval", Config{Server: "http://x", APIKey: "k", Root: fakeRoot, HeartbeatInterval: -time.Second}, "must be positive"},
		{"no machine-id", Config{Server: "http://x", APIKey: "k", Root: t.TempDir()}, "set the agent id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// lockedBuffer lets the agent's goroutines log while the test reads.
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

// Run keeps publishing, retries what the server refused, logs the refusal
// with the server's status and message, and stops when cancelled.
func TestRunRetriesAndStops(t *testing.T) {
	const unavailable = `{"error":"unavailable","message":"the discovery could not be stored right now; retry later"}`
	var mu sync.Mutex
	collects, heartbeats, stopped := 0, 0, false
	enough := make(chan struct{})
	_, ts := newServer(t, func(r recorded) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		status, body := contract(r)
		if strings.HasSuffix(r.path, "/heartbeat") {
			heartbeats++
		} else if collects++; collects <= 2 {
			status, body = http.StatusServiceUnavailable, unavailable
		}
		if !stopped && collects >= 5 && heartbeats >= 3 {
			stopped = true
			close(enough)
		}
		return status, body
	})
	var logs lockedBuffer
	a, err := New(Config{
		Server: ts.URL, APIKey: "k", Root: fakeRoot,
		DiscoveryInterval: 20 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not keep publishing after the server recovered")
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

	var refusals int
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "publish discovery" {
			refusals++
			if rec["status"] != float64(503) || rec["server_error"] != "unavailable" ||
				rec["server_message"] != "the discovery could not be stored right now; retry later" ||
				rec["agent_id"] != trentoFixtureAgentID || rec["level"] != "ERROR" {
				t.Errorf("refusal logged as %s", line)
			}
		}
	}
	if refusals != 2 {
		t.Errorf("%d refusals logged, want 2:\n%s", refusals, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"agent stopped"`) {
		t.Error("no stop line logged")
	}
}

// A discovery that cannot be made on this machine is not sent, not retried
// early, and the others still go out.
func TestRunSkipsFailedDiscovery(t *testing.T) {
	rec, ts := newServer(t, contract)
	a, err := New(Config{Server: ts.URL, APIKey: "k", Root: fakeRoot, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	a.discoverers = append(a.discoverers, failing{})
	err = a.PublishOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "discover broken_discovery: no such thing here") {
		t.Errorf("err %v, want the local failure", err)
	}
	if n := len(rec.requests()); n != 2 {
		t.Errorf("%d requests, want host_discovery and the heartbeat", n)
	}
	sendErr, discoverErr := a.publishDiscoveries(t.Context())
	if sendErr != nil || discoverErr == nil {
		t.Errorf("send %v, discover %v: a local failure must not count as a refusal", sendErr, discoverErr)
	}
}

type failing struct{}

func (failing) Type() string { return "broken_discovery" }
func (failing) Discover(context.Context) (any, error) {
	return nil, errors.New("no such thing here")
}
