package agent

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Server is the ingest's base URL, e.g. "http://localhost:8080"; a path
	// prefix is kept ("https://example.com/fleet" posts to
	// /fleet/api/v1/collect).
	Server string
	// HTTPClient sends the requests. Default: a client with a 30 s timeout,
	// the Trento agent's. A fleet simulator passes one whose transport keeps
	// as many idle connections as it has requests in flight.
	HTTPClient *http.Client
	// TrentoAPIKeyHeader also sends the key as X-Trento-Apikey, the Trento
	// agent's header, for servers that only know that one. The key always
	// goes in Authorization: Bearer.
	TrentoAPIKeyHeader bool
}

// Publisher sends discoveries and heartbeats with the Trento agent's wire
// contract. One Publisher serves any number of agents: the agent id and key
// are arguments, so a simulated fleet shares one connection pool.
type Publisher struct {
	collectURL   string
	serverURL    *url.URL
	client       *http.Client
	trentoHeader bool
}

// NewPublisher checks the server URL and returns a Publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q is not an http(s) URL: give the ingest's base URL, e.g. http://localhost:8080", cfg.Server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Publisher{
		collectURL:   u.JoinPath("api/v1/collect").String(),
		serverURL:    u,
		client:       client,
		trentoHeader: cfg.TrentoAPIKeyHeader,
	}, nil
}

// collectBody is the body of POST /api/v1/collect.
type collectBody struct {
	AgentID       string `json:"agent_id"`
	DiscoveryType string `json:"discovery_type"`
	Payload       any    `json:"payload"`
}

// Publish sends one discovery of agentID, authenticated with apiKey, and
// expects 202 Accepted. Any other answer is a *StatusError.
func (p *Publisher) Publish(ctx context.Context, agentID, apiKey, discoveryType string, payload any) error {
	body, err := json.Marshal(collectBody{AgentID: agentID, DiscoveryType: discoveryType, Payload: payload})
	if err != nil {
		return fmt.Errorf("encode %s of agent %s: %w", discoveryType, agentID, err)
	}
	call := "publish " + discoveryType + " of agent " + agentID
	return p.post(ctx, call, p.collectURL, apiKey, body, http.StatusAccepted)
}

// Heartbeat tells the server agentID is alive and expects 204 No Content
// (a 202 is an error, as for the Trento agent).
func (p *Publisher) Heartbeat(ctx context.Context, agentID, apiKey string) error {
	u := p.serverURL.JoinPath("api/v1/hosts", url.PathEscape(agentID), "heartbeat").String()
	return p.post(ctx, "heartbeat of agent "+agentID, u, apiKey, nil, http.StatusNoContent)
}

func (p *Publisher) post(ctx context.Context, call, u, apiKey string, body []byte, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", call, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "fleetstream-agent/"+Version)
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
		if p.trentoHeader {
			req.Header.Set("X-Trento-Apikey", apiKey)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", call, err)
	}
	defer resp.Body.Close()
	// Read what the server said (bounded), and let the connection be reused.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == want {
		return nil
	}
	code, msg := serverError(answer)
	return &StatusError{Call: call, StatusCode: resp.StatusCode, Code: code, Message: msg}
}

// StatusError is an answer other than the one the contract expects.
type StatusError struct {
	// Call says what was attempted, e.g. "publish host_discovery of agent <id>".
	Call       string
	StatusCode int
	// Code and Message come from the server's JSON error body:
	// fleetstream's {"error": code, "message": ...}, a gRPC-gateway
	// {"code", "message"} or a JSON:API {"errors": [{"title", "detail"}]}.
	// Message is the start of the body when it is not JSON.
	Code    string
	Message string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: server answered %d %s", e.Call, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// serverError extracts the error code and message of an error body.
func serverError(body []byte) (code, msg string) {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Errors  []struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		s := strings.TrimSpace(string(body))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return "", s
	}
	var nested struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	switch {
	case json.Unmarshal(e.Error, &code) == nil:
	case json.Unmarshal(e.Error, &nested) == nil:
		code, e.Message = nested.Code, cmp.Or(e.Message, nested.Message)
	}
	if e.Message == "" && len(e.Errors) > 0 {
		e.Message = strings.Trim(e.Errors[0].Title+": "+e.Errors[0].Detail, ": ")
	}
	return code, e.Message
}
