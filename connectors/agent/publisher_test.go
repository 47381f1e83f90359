package agent

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fleetstream/fleetstream/schemas/payload"
)

// recorded is one request as the server saw it.
type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

// recorder is an ingest stand-in: it records requests and answers with
// whatever answer returns for them.
type recorder struct {
	mu     sync.Mutex
	reqs   []recorded
	answer func(r recorded) (status int, body string)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	got := recorded{method: r.Method, path: r.URL.EscapedPath(), header: r.Header.Clone(), body: body}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, got)
	rec.mu.Unlock()
	status, answer := rec.answer(got)
	if answer != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (rec *recorder) requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// contract answers like fleetstream's ingest when all is well.
func contract(r recorded) (int, string) {
	if strings.HasSuffix(r.path, "/heartbeat") {
		return http.StatusNoContent, ""
	}
	return http.StatusAccepted, `{"status":"accepted"}`
}

func newServer(t *testing.T, answer func(recorded) (int, string)) (*recorder, *httptest.Server) {
	rec := &recorder{answer: answer}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	return rec, ts
}

func TestPublishSendsTheTrentoContract(t *testing.T) {
	for _, trentoHeader := range []bool{false, true} {
		rec, ts := newServer(t, contract)
		p, err := NewPublisher(PublisherConfig{Server: ts.URL, TrentoAPIKeyHeader: trentoHeader})
		if err != nil {
			t.Fatal(err)
		}
		payload := HostPayload{Hostname: "suse", CPUCount: 2, IPAddresses: []string{"10.1.1.4"}, Netmasks: []payload.Netmask{16}}
		if err := p.Publish(t.Context(), "779cdd70-e9e2-58ca-b18a-bf3eb3f71244", "key-1", "host_discovery", payload); err != nil {
			t.Fatal(err)
		}
		reqs := rec.requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1", len(reqs))
		}
		r := reqs[0]
		if r.method != http.MethodPost || r.path != "/api/v1/collect" {
			t.Errorf("%s %s, want POST /api/v1/collect", r.method, r.path)
		}
		if got := r.header.Get("Authorization"); got != "Bearer key-1" {
			t.Errorf("Authorization %q", got)
		}
		if got, want := r.header.Get("X-Trento-Apikey"), map[bool]string{true: "key-1"}[trentoHeader]; got != want {
			t.Errorf("X-Trento-Apikey %q with TrentoAPIKeyHeader=%v, want %q", got, trentoHeader, want)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		if len(body) != 3 || string(body["agent_id"]) != `"779cdd70-e9e2-58ca-b18a-bf3eb3f71244"` ||
			string(body["discovery_type"]) != `"host_discovery"` {
			t.Errorf("body %s: want exactly agent_id, discovery_type and payload", r.body)
		}
		var sent HostPayload
		if err := json.Unmarshal(body["payload"], &sent); err != nil || sent.Hostname != "suse" || sent.CPUCount != 2 || sent.Netmasks[0] != 16 {
			t.Errorf("payload %s (%v)", body["payload"], err)
		}
	}
}

func TestPublishReportsTheServersError(t *testing.T) {
	for _, tc := range []struct {
		name                string
		status              int
		body                string
		wantCode, wantMsg   string
		wantInErrorMessages []string
	}{
		{
			name:     "fleetstream ingest",
			status:   http.StatusUnauthorized,
			body:     `{"error":"unauthenticated","message":"invalid agent key: use the key issued for this agent"}`,
			wantCode: "unauthenticated", wantMsg: "invalid agent key: use the key issued for this agent",
			wantInErrorMessages: []string{"401 Unauthorized", "publish host_discovery of agent a1", "invalid agent key"},
		},
		{
			name:                "grpc-gateway",
			status:              http.StatusBadRequest,
			body:                `{"code":3,"message":"payload.hostname must not be empty","details":[]}`,
			wantMsg:             "payload.hostname must not be empty",
			wantInErrorMessages: []string{"400 Bad Request", "payload.hostname must not be empty"},
		},
		{
			name:                "json:api",
			status:              http.StatusUnprocessableEntity,
			body:                `{"errors":[{"title":"Invalid value","detail":"cpu_count must be positive"}]}`,
			wantMsg:             "Invalid value: cpu_count must be positive",
			wantInErrorMessages: []string{"422", "cpu_count must be positive"},
		},
		{
			name:                "not json",
			status:              http.StatusBadGateway,
			body:                "<html>bad gateway</html>",
			wantMsg:             "<html>bad gateway</html>",
			wantInErrorMessages: []string{"502 Bad Gateway", "bad gateway"},
		},
		{
			// 200 is not the contract's answer: the agent must notice.
			name:                "200 instead of 202",
			status:              http.StatusOK,
			body:                `{}`,
			wantInErrorMessages: []string{"200 OK"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ts := newServer(t, func(recorded) (int, string) { return tc.status, tc.body })
			p, err := NewPublisher(PublisherConfig{Server: ts.URL})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Publish(t.Context(), "a1", "k", "host_discovery", map[string]any{})
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("err %v, want a *StatusError", err)
			}
			if se.StatusCode != tc.status || se.Code != tc.wantCode || se.Message != tc.wantMsg {
				t.Errorf("got %d %q %q, want %d %q %q", se.StatusCode, se.Code, se.Message, tc.status, tc.wantCode, tc.wantMsg)
			}
			for _, s := range tc.wantInErrorMessages {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	rec, ts := newServer(t, contract)
	p, err := NewPublisher(PublisherConfig{Server: ts.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Heartbeat(t.Context(), "779cdd70-e9e2-58ca-b18a-bf3eb3f71244", "key-1"); err != nil {
		t.Fatal(err)
	}
	r := rec.requests()[0]
	if r.method != http.MethodPost || r.path != "/api/v1/hosts/779cdd70-e9e2-58ca-b18a-bf3eb3f71244/heartbeat" {
		t.Errorf("%s %s", r.method, r.path)
	}
	if len(r.body) != 0 || r.header.Get("Authorization") != "Bearer key-1" {
		t.Errorf("body %q, Authorization %q: want an empty body with the key", r.body, r.header.Get("Authorization"))
	}

	// The Trento agent treats a 202 to a heartbeat as an error; so do we.
	_, ts202 := newServer(t, func(recorded) (int, string) { return http.StatusAccepted, "" })
	p202, _ := NewPublisher(PublisherConfig{Server: ts202.URL})
	var se *StatusError
	if err := p202.Heartbeat(t.Context(), "a1", "k"); !errors.As(err, &se) || se.StatusCode != http.StatusAccepted {
		t.Errorf("heartbeat answered 202: err %v, want a StatusError 202", err)
	}
}

func TestServerPathPrefix(t *testing.T) {
	rec, ts := newServer(t, contract)
	p, err := NewPublisher(PublisherConfig{Server: ts.URL + "/fleet/"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), "a1", "k", "host_discovery", struct{}{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Heartbeat(t.Context(), "a1", "k"); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	if reqs[0].path != "/fleet/api/v1/collect" || reqs[1].path != "/fleet/api/v1/hosts/a1/heartbeat" {
		t.Errorf("paths %s, %s", reqs[0].path, reqs[1].path)
	}
}

func TestNewPublisherRejectsBadServer(t *testing.T) {
	for _, s := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := NewPublisher(PublisherConfig{Server: s}); err == nil {
			t.Errorf("server %q accepted", s)
		}
	}
}
