package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

var ts0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type testAPI struct {
	base   string
	addr   string
	reader string // secret with the read scope
	writer string // secret with only the write scope
	stop   func() error
}

// start serves an API on a loopback listener until the test ends.
func start(t *testing.T, hosts HostReader, store Store, opts Options) *testAPI {
	t.Helper()
	reader, err := GenerateKey("reader", ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := GenerateKey("writer", ScopeWrite)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewKeys(reader, writer)
	if err != nil {
		t.Fatal(err)
	}
	opts.Hosts, opts.Store, opts.Keys = hosts, store, keys
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, lis) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("Serve did not return 15s after cancel")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return &testAPI{base: "http://" + lis.Addr().String(), addr: lis.Addr().String(), reader: reader.Secret, writer: writer.Secret, stop: stop}
}

type response struct {
	code   int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request and decodes the JSON body, failing when the body is not
// a JSON object: every answer of the API, errors included, is JSON.
func (a *testAPI) do(t *testing.T, method, path, secret string) response {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{code: resp.StatusCode, header: resp.Header, raw: raw}
	if method == http.MethodHead {
		return r
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: Content-Type %q, want application/json; body %s", method, path, ct, raw)
	}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, raw)
	}
	return r
}

func (a *testAPI) get(t *testing.T, path, secret string) response {
	t.Helper()
	return a.do(t, http.MethodGet, path, secret)
}

// wantError checks an error answer: HTTP status, gRPC code and a message
// containing each of parts.
func wantError(t *testing.T, r response, httpCode int, code codes.Code, parts ...string) {
	t.Helper()
	if r.code != httpCode {
		t.Fatalf("HTTP %d, want %d; body %s", r.code, httpCode, r.raw)
	}
	if got := r.body["code"]; got != float64(code) {
		t.Errorf("code %v, want %d (%s); body %s", got, code, code, r.raw)
	}
	msg, _ := r.body["message"].(string)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("message %q does not contain %q", msg, p)
		}
	}
	if _, ok := r.body["details"]; !ok {
		t.Errorf("error body has no details field: %s", r.raw)
	}
}

func TestAuth(t *testing.T) {
	hosts, store := fleet(3)
	a := start(t, hosts, store, Options{})

	r := a.get(t, "/api/v1/hosts", "")
	wantError(t, r, http.StatusUnauthorized, codes.Unauthenticated, "missing API key: send Authorization: Bearer <key>")
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="fleetstream"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	wantError(t, a.get(t, "/api/v1/hosts", "fsk_not-a-key-of-this-server"), http.StatusUnauthorized, codes.Unauthenticated, "invalid API key")
	wantError(t, a.get(t, "/api/v1/hosts/h001", a.writer), http.StatusForbidden, codes.PermissionDenied, `"writer"`, `"read"`)

	req, _ := http.NewRequest(http.MethodGet, a.base+"/api/v1/hosts", nil)
	req.Header.Set("Authorization", "Basic "+a.reader)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic scheme: HTTP %d, want 401", resp.StatusCode)
	}

	if r := a.get(t, "/api/v1/hosts/h001", a.reader); r.code != http.StatusOK || r.body["id"] != "h001" {
		t.Errorf("read key: HTTP %d %s", r.code, r.raw)
	}
	// The scheme is case-insensitive (RFC 9110).
	req, _ = http.NewRequest(http.MethodGet, a.base+"/api/v1/hosts/h001", nil)
	req.Header.Set("Authorization", "bearer "+a.reader)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("lower-case scheme: HTTP %d, want 200", resp.StatusCode)
	}
}

func TestUnauthenticatedEndpoints(t *testing.T) {
	hosts, store := fleet(1)
	ready := errors.New("host view still recovering")
	a := start(t, hosts, store, Options{Ready: func() error { return ready }})

	if r := a.get(t, "/healthz", ""); r.code != http.StatusOK || r.body["status"] != "ok" {
		t.Errorf("/healthz: HTTP %d %s", r.code, r.raw)
	}
	wantError(t, a.get(t, "/readyz", ""), http.StatusServiceUnavailable, codes.Unavailable, "host view still recovering")

	r := a.get(t, "/openapi.json", "")
	if r.code != http.StatusOK {
		t.Fatalf("/openapi.json: HTTP %d", r.code)
	}
	paths, _ := r.body["paths"].(map[string]any)
	for _, p := range []string{"/api/v1/hosts", "/api/v1/hosts/{id}", "/api/v1/hosts/{id}/events"} {
		if _, ok := paths[p]; !ok {
			t.Errorf("/openapi.json has no path %s", p)
		}
	}

	wantError(t, a.do(t, http.MethodPost, "/healthz", ""), http.StatusMethodNotAllowed, codes.Unimplemented, "POST", "/healthz")
	if r := a.do(t, http.MethodHead, "/healthz", ""); r.code != http.StatusOK {
		t.Errorf("HEAD /healthz: HTTP %d", r.code)
	}
}

func TestReadyWhenReadyFuncPasses(t *testing.T) {
	hosts, store := fleet(1)
	a := start(t, hosts, store, Options{Ready: func() error { return nil }})
	if r := a.get(t, "/readyz", ""); r.code != http.StatusOK || r.body["status"] != "ready" {
		t.Errorf("/readyz: HTTP %d %s", r.code, r.raw)
	}
}

func TestNotFound(t *testing.T) {
	hosts, store := fleet(3)
	a := start(t, hosts, store, Options{})

	wantError(t, a.get(t, "/api/v1/hosts/nope", a.reader), http.StatusNotFound, codes.NotFound, "host nope not found")
	wantError(t, a.get(t, "/api/v1/hosts/nope/events", a.reader), http.StatusNotFound, codes.NotFound, "host nope not found")
	for _, path := range []string{"/api/v1/nothing", "/nothing", "/api/v1/hosts/h001/events/extra"} {
		wantError(t, a.get(t, path, ""), http.StatusNotFound, codes.NotFound, "no route for GET "+path, "/openapi.json")
	}
	wantError(t, a.do(t, http.MethodDelete, "/api/v1/hosts/h001", a.reader), http.StatusMethodNotAllowed, codes.Unimplemented, "DELETE")
}

func TestInvalidArguments(t *testing.T) {
	hosts, store := fleet(3)
	a := start(t, hosts, store, Options{})
	eventsToken := a.get(t, "/api/v1/hosts/h000/events?page_size=2", a.reader).body["next_page_token"].(string)

	for _, tc := range []struct {
		query string
		parts []string
	}{
		{"page_size=abc", []string{"page_size", "abc"}},
		{"page_size=5000", []string{"page_size must be between 1 and 1000", "5000"}},
		{"page_size=-1", []string{"page_size must be between 1 and 1000"}},
		{"pageSize=5000", []string{"page_size must be between 1 and 1000"}},
		{"health=bad", []string{"health must be one of unknown, passing, warning, critical", `"bad"`}},
		{"health=CRITICAL", []string{"health must be one of"}},
		{"page_token=%21%21%21", []string{"page_token is not valid"}},
		{"page_token=" + eventsToken, []string{"page_token is not valid"}},
		{"helth=critical", []string{`unknown query parameter "helth"`, "health", "page_size"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			wantError(t, a.get(t, "/api/v1/hosts?"+tc.query, a.reader), http.StatusBadRequest, codes.InvalidArgument, tc.parts...)
		})
	}
	wantError(t, a.get(t, "/api/v1/hosts/h000/events?page_size=1001", a.reader), http.StatusBadRequest, codes.InvalidArgument, "page_size")
	// A token of one host's history does not page another's.
	wantError(t, a.get(t, "/api/v1/hosts/h001/events?page_token="+eventsToken, a.reader), http.StatusBadRequest, codes.InvalidArgument, "page_token")
}

func TestJSONFieldNames(t *testing.T) {
	hosts, store := fleet(3)
	a := start(t, hosts, store, Options{})

	r := a.get(t, "/api/v1/hosts/h001", a.reader)
	if r.code != http.StatusOK {
		t.Fatalf("HTTP %d %s", r.code, r.raw)
	}
	// Proto names, and zero values present rather than omitted.
	for _, k := range []string{"id", "details", "health", "heartbeat", "last_heartbeat_at", "registered_at", "updated_at", "version"} {
		if _, ok := r.body[k]; !ok {
			t.Errorf("host has no %q: %s", k, r.raw)
		}
	}
	if r.body["registered_at"] != "2026-03-01T12:00:00Z" || r.body["version"] != "3" || r.body["last_heartbeat_at"] != nil {
		t.Errorf("values: registered_at %v version %v last_heartbeat_at %v", r.body["registered_at"], r.body["version"], r.body["last_heartbeat_at"])
	}
	d := r.body["details"].(map[string]any)
	if d["os_name"] != "SLES" || d["kernel_version"] != "" || d["cpu_count"] != float64(0) {
		t.Errorf("details: %v", d)
	}
	if ips, _ := d["ip_addresses"].([]any); len(ips) != 1 || ips[0] != "10.0.0.1" {
		t.Errorf("ip_addresses: %v", d["ip_addresses"])
	}
	if units, ok := d["systemd_units"].([]any); !ok || len(units) != 0 {
		t.Errorf("systemd_units: %v (want [])", d["systemd_units"])
	}

	ev := a.get(t, "/api/v1/hosts/h000/events?page_size=1", a.reader)
	e := ev.body["events"].([]any)[0].(map[string]any)
	if e["event_id"] != "e1" || e["aggregate_type"] != "host" || e["occurred_at"] != "2026-03-01T12:00:00Z" {
		t.Errorf("event: %s", ev.raw)
	}
	if data, _ := e["data"].(map[string]any); data["n"] != float64(1) {
		t.Errorf("event data: %v", e["data"])
	}
}

func TestHostsPagination(t *testing.T) {
	hosts, store := fleet(25)
	a := start(t, hosts, store, Options{})

	var ids []string
	var sizes []int
	token := ""
	for range 10 {
		r := a.get(t, "/api/v1/hosts?page_size=10&page_token="+url.QueryEscape(token), a.reader)
		if r.code != http.StatusOK {
			t.Fatalf("HTTP %d %s", r.code, r.raw)
		}
		page := r.body["hosts"].([]any)
		sizes = append(sizes, len(page))
		for _, h := range page {
			ids = append(ids, h.(map[string]any)["id"].(string))
		}
		token = r.body["next_page_token"].(string)
		if token == "" {
			break
		}
		if strings.Contains(token, "h0") {
			t.Errorf("token %q shows the key: it must be opaque", token)
		}
	}
	if want := []int{10, 10, 5}; !slices.Equal(sizes, want) {
		t.Fatalf("page sizes %v, want %v", sizes, want)
	}
	if len(ids) != 25 || ids[0] != "h000" || ids[24] != "h024" {
		t.Fatalf("ids %v", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ids not strictly increasing at %d: %v", i, ids)
		}
	}
	// The token carried the last key of the previous page to the store.
	if want := []string{"", "h009", "h019"}; !slices.Equal(store.calls, want) {
		t.Errorf("store saw after keys %v, want %v", store.calls, want)
	}

	// Filters pass through, and the default page size is 100.
	r := a.get(t, "/api/v1/hosts?health=critical&hostname_prefix=node01", a.reader)
	var got []string
	for _, h := range r.body["hosts"].([]any) {
		got = append(got, h.(map[string]any)["id"].(string))
	}
	if want := []string{"h012", "h015", "h018"}; !slices.Equal(got, want) || r.body["next_page_token"] != "" {
		t.Errorf("critical node01*: %v next %q, want %v", got, r.body["next_page_token"], want)
	}
	if r := a.get(t, "/api/v1/hosts", a.reader); len(r.body["hosts"].([]any)) != 25 {
		t.Errorf("default page: %d hosts", len(r.body["hosts"].([]any)))
	}
}

func TestEventsPagination(t *testing.T) {
	hosts, store := fleet(1)
	a := start(t, hosts, store, Options{})

	var versions []string
	token := ""
	for range 10 {
		r := a.get(t, "/api/v1/hosts/h000/events?page_size=3&page_token="+token, a.reader)
		if r.code != http.StatusOK {
			t.Fatalf("HTTP %d %s", r.code, r.raw)
		}
		for _, e := range r.body["events"].([]any) {
			versions = append(versions, e.(map[string]any)["version"].(string))
		}
		if token = r.body["next_page_token"].(string); token == "" {
			break
		}
	}
	if want := []string{"1", "2", "3", "4", "5", "6", "7"}; !slices.Equal(versions, want) {
		t.Errorf("versions %v, want %v", versions, want)
	}
}

func TestGRPC(t *testing.T) {
	hosts, store := fleet(3)
	a := start(t, hosts, store, Options{})

	conn, err := grpc.NewClient(a.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := fleetv1.NewFleetServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	withKey := func(secret string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret)
	}

	h, err := client.GetHost(withKey(a.reader), &fleetv1.GetHostRequest{Id: "h002"})
	if err != nil || h.GetDetails().GetHostname() != "node002" {
		t.Fatalf("GetHost: %v %v", h, err)
	}
	if _, err := client.GetHost(ctx, &fleetv1.GetHostRequest{Id: "h002"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no key: %v, want Unauthenticated", err)
	}
	if _, err := client.GetHost(withKey(a.writer), &fleetv1.GetHostRequest{Id: "h002"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("write-only key: %v, want PermissionDenied", err)
	}
	if _, err := client.GetHost(withKey(a.reader), &fleetv1.GetHostRequest{Id: "zzz"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown host: %v, want NotFound", err)
	}
	if _, err := client.ListHosts(withKey(a.reader), &fleetv1.ListHostsRequest{PageSize: 5000}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("page_size 5000: %v, want InvalidArgument", err)
	}
	resp, err := client.ListHosts(withKey(a.reader), &fleetv1.ListHostsRequest{PageSize: 2})
	if err != nil || len(resp.GetHosts()) != 2 || resp.GetNextPageToken() == "" {
		t.Fatalf("ListHosts: %v %v", resp, err)
	}
	// A token from gRPC works over REST: one encoding for both.
	r := a.get(t, "/api/v1/hosts?page_size=2&page_token="+resp.GetNextPageToken(), a.reader)
	if hs := r.body["hosts"].([]any); len(hs) != 1 || hs[0].(map[string]any)["id"] != "h002" {
		t.Errorf("REST page after gRPC token: %s", r.raw)
	}
}

func TestMetrics(t *testing.T) {
	hosts, store := fleet(3)
	reg := prometheus.NewRegistry()
	a := start(t, hosts, store, Options{Registry: reg})

	a.get(t, "/api/v1/hosts/h001", a.reader)
	a.get(t, "/api/v1/hosts/nope", a.reader)
	a.get(t, "/api/v1/hosts", "")

	resp, err := http.Get(a.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`fleetstream_api_request_duration_seconds_count{code="OK",method="fleetstream.v1.FleetService/GetHost"} 1`,
		`fleetstream_api_request_duration_seconds_count{code="NotFound",method="fleetstream.v1.FleetService/GetHost"} 1`,
		`fleetstream_api_request_duration_seconds_count{code="Unauthenticated",method="fleetstream.v1.FleetService/ListHosts"} 1`,
		`fleetstream_api_request_duration_seconds_bucket{code="OK",method="fleetstream.v1.FleetService/GetHost",le="+Inf"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestStoreFailures(t *testing.T) {
	hosts, store := fleet(3)
	store.err = errors.New("dial tcp 10.1.2.3:9000: connection refused")
	a := start(t, hosts, store, Options{})

	r := a.get(t, "/api/v1/hosts", a.reader)
	wantError(t, r, http.StatusServiceUnavailable, codes.Unavailable, "list hosts failed", "retry later")
	if strings.Contains(string(r.raw), "10.1.2.3") {
		t.Errorf("internal detail leaked to the client: %s", r.raw)
	}
	// A store may answer with a status of its own, e.g. for a key it cannot parse.
	store.err = status.Error(codes.InvalidArgument, "page_token names no event")
	wantError(t, a.get(t, "/api/v1/hosts/h000/events", a.reader), http.StatusBadRequest, codes.InvalidArgument, "page_token names no event")
}

func TestPanicIsInternalAndServerSurvives(t *testing.T) {
	hosts, store := fleet(3)
	store.panics = true
	a := start(t, hosts, store, Options{})

	wantError(t, a.get(t, "/api/v1/hosts", a.reader), http.StatusInternalServerError, codes.Internal, "internal error")
	if r := a.get(t, "/api/v1/hosts/h001", a.reader); r.code != http.StatusOK {
		t.Errorf("after a panic: HTTP %d", r.code)
	}
}

func TestExtraRoutes(t *testing.T) {
	hosts, store := fleet(1)
	a := start(t, hosts, store, Options{Extra: map[string]http.Handler{
		"POST /api/v1/collect": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusAccepted, `{"accepted":true}`)
		}),
	}})
	if r := a.do(t, http.MethodPost, "/api/v1/collect", ""); r.code != http.StatusAccepted || r.body["accepted"] != true {
		t.Errorf("extra route: HTTP %d %s", r.code, r.raw)
	}

	_, err := New(Options{Hosts: hosts, Store: store, Keys: &Keys{}, Extra: map[string]http.Handler{"/healthz": http.NotFoundHandler()}})
	if err == nil || !strings.Contains(err.Error(), "/healthz") {
		t.Errorf("conflicting extra route: err %v", err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	hosts, store := fleet(3)
	store.entered, store.block = make(chan struct{}), make(chan struct{})
	a := start(t, hosts, store, Options{})

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, a.base+"/api/v1/hosts", nil)
		req.Header.Set("Authorization", "Bearer "+a.reader)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{code: resp.StatusCode, body: string(b), err: err}
	}()
	<-store.entered

	stopped := make(chan error, 1)
	go func() { stopped <- a.stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(store.block)
	if r := <-done; r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, `"h002"`) {
		t.Errorf("in-flight request: %v HTTP %d %s", r.err, r.code, r.body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if c, err := net.DialTimeout("tcp", a.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("listener still accepts after shutdown")
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	hosts, store := fleet(1)
	for name, o := range map[string]Options{
		"hosts": {Store: store, Keys: &Keys{}},
		"store": {Hosts: hosts, Keys: &Keys{}},
		"keys":  {Hosts: hosts, Store: store},
	} {
		if _, err := New(o); err == nil || !strings.Contains(strings.ToLower(err.Error()), name) {
			t.Errorf("without %s: err %v", name, err)
		}
	}
}

func TestDialTarget(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "passthrough:///127.0.0.1:8080",
		"[::]:8080":      "passthrough:///[::1]:8080",
		"10.0.0.5:8080":  "passthrough:///10.0.0.5:8080",
		"127.0.0.1:1234": "passthrough:///127.0.0.1:1234",
	} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := dialTarget(tcp); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", addr, got, err, want)
		}
	}
}

func TestEveryMethodHasAScope(t *testing.T) {
	for _, m := range fleetv1.FleetService_ServiceDesc.Methods {
		full := "/" + fleetv1.FleetService_ServiceDesc.ServiceName + "/" + m.MethodName
		if _, ok := fleetScopes[full]; !ok {
			t.Errorf("%s has no entry in fleetScopes", full)
		}
	}
}
