package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/processors/checks/catalog"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// memChecks stands in for the checks views and read model. A
// RequestExecution sent is applied at once unless hold is set: the group's
// execution starts, or is refused when one runs.
type memChecks struct {
	mu      sync.Mutex
	targets map[string]*fleetv1.ChecksStatus
	groups  map[string]*fleetv1.ExecutionGroup
	sent    []*fleetv1.Command
	hold    bool
	results []ResultFilter
	comp    []ComplianceFilter
}

func (m *memChecks) Target(id string) (*fleetv1.ChecksStatus, []string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.targets[id]; st != nil {
		return st, []string{"h1", "h2"}, nil
	}
	return nil, nil, nil
}

func (m *memChecks) Executions(id string) (*fleetv1.ExecutionGroup, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return proto.CloneOf(m.groups[id]), nil
}

func (m *memChecks) lastSent() []*fleetv1.Command {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

func (m *memChecks) send(_ context.Context, c *fleetv1.Command) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, c)
	req := c.GetRequestExecution()
	if req == nil || m.hold {
		return nil
	}
	g := m.groups[c.GetAggregateId()]
	if g == nil {
		g = &fleetv1.ExecutionGroup{GroupId: c.GetAggregateId()}
		m.groups[c.GetAggregateId()] = g
	}
	if g.Running != nil {
		g.RejectedExecutionId, g.RejectedBecauseOf = req.GetExecutionId(), g.Running.GetId()
		return nil
	}
	g.Running = &fleetv1.Execution{Id: req.GetExecutionId(), GroupId: c.GetAggregateId(), Status: "running", CheckIds: req.GetCheckIds()}
	return nil
}

func (m *memChecks) ListExecutions(context.Context, ExecutionFilter, int, string) ([]*fleetv1.Execution, string, error) {
	return []*fleetv1.Execution{{Id: "x1"}}, "x1", nil
}

func (m *memChecks) GetExecution(_ context.Context, id string) (*fleetv1.Execution, error) {
	if id == "old" {
		return &fleetv1.Execution{Id: "old", GroupId: "c1", Status: "completed"}, nil
	}
	return nil, nil
}

func (m *memChecks) ListResults(_ context.Context, f ResultFilter, _ int, _ string) ([]*fleetv1.CheckResult, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results = append(m.results, f)
	return []*fleetv1.CheckResult{{CheckId: "C", EntityId: "h1", Result: "passing"}}, "", nil
}

func (m *memChecks) Compliance(_ context.Context, f ComplianceFilter) ([]*fleetv1.ComplianceBucket, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.comp = append(m.comp, f)
	return []*fleetv1.ComplianceBucket{{Checks: []*fleetv1.ComplianceCount{{CheckId: "C", Passing: 2}}}}, nil
}

func checksAPI(t *testing.T) (*testAPI, *memChecks, *catalog.Catalog) {
	t.Helper()
	cat, err := catalog.Load()
	if err != nil {
		t.Fatal(err)
	}
	m := &memChecks{
		targets: map[string]*fleetv1.ChecksStatus{"c1": {Id: "c1", TargetType: "cluster"}, "h1": {Id: "h1", TargetType: "host"}},
		groups:  map[string]*fleetv1.ExecutionGroup{},
	}
	svc := NewChecksService(ChecksOptions{Catalog: cat, Reader: m, Store: m, Send: m.send, ExecutionWait: 200 * time.Millisecond})
	hosts, store := fleet(1)
	return start(t, hosts, store, Options{Services: []Service{svc}}), m, cat
}

// firstOf is the id of the catalog's first check of target type typ.
func firstOf(t *testing.T, cat *catalog.Catalog, typ string) string {
	t.Helper()
	for _, c := range cat.Checks() {
		if c.TargetType() == typ {
			return c.ID
		}
	}
	t.Fatalf("no %s check in the catalog", typ)
	return ""
}

func TestChecksCatalog(t *testing.T) {
	a, _, cat := checksAPI(t)
	r := a.get(t, "/api/v1/checks/catalog?target_type=cluster", a.reader)
	if r.code != http.StatusOK {
		t.Fatalf("catalog: %d %s", r.code, r.raw)
	}
	want := 0
	for _, c := range cat.Checks() {
		if c.TargetType() == "cluster" {
			want++
		}
	}
	list, _ := r.body["checks"].([]any)
	if len(list) != want || want == 0 {
		t.Fatalf("cluster checks: %d, want %d", len(list), want)
	}
	for _, c := range list {
		if c.(map[string]any)["target_type"] != "cluster" {
			t.Errorf("not a cluster check: %v", c)
		}
	}
	// Metadata: a check naming cluster types is listed only for those; one
	// naming none for every cluster type.
	listed := func(query, id string) bool {
		r := a.get(t, "/api/v1/checks/catalog?"+query, a.reader)
		return strings.Contains(string(r.raw), `"id":"`+id+`"`)
	}
	for _, c := range cat.Checks() {
		types, _ := c.Metadata["cluster_type"].([]any)
		if len(types) == 0 || len(types) == len(clusterTypes) {
			continue
		}
		in, out := toString(types[0]), ""
		for _, ct := range clusterTypes {
			if !strings.Contains(toString(types), ct) {
				out = ct
			}
		}
		if !listed("cluster_type="+in, c.ID) || listed("cluster_type="+out, c.ID) {
			t.Errorf("check %s (cluster types %v): listed for %s %v, for %s %v", c.ID, types, in, listed("cluster_type="+in, c.ID), out, listed("cluster_type="+out, c.ID))
		}
		break
	}
	for _, c := range cat.Checks() {
		if _, ok := c.Metadata["provider"]; !ok && !listed("provider=vmware", c.ID) {
			t.Errorf("check %s names no provider and is not listed for vmware", c.ID)
		}
	}
	id := firstOf(t, cat, "cluster")
	r = a.get(t, "/api/v1/checks/catalog/"+id, a.reader)
	if r.code != http.StatusOK || r.body["id"] != id || r.body["target_type"] != "cluster" {
		t.Errorf("catalog check %s: %d %s", id, r.code, r.raw)
	}
	wantError(t, a.get(t, "/api/v1/checks/catalog/NOPE", a.reader), http.StatusNotFound, codes.NotFound, `"NOPE" is not in the catalog`)
	for _, c := range []struct{ path, msg string }{
		{"/api/v1/checks/catalog?target_type=vm", "target_type must be one of host, cluster"},
		{"/api/v1/checks/catalog?provider=ibm", "provider must be one of"},
		{"/api/v1/checks/catalog?cluster_type=x", "cluster_type must be one of"},
		{"/api/v1/checks/catalog?metadata=arch", "metadata must be key=value"},
		{"/api/v1/checks/catalog?grup=x", `unknown query parameter "grup"`},
	} {
		wantError(t, a.get(t, c.path, a.reader), http.StatusBadRequest, codes.InvalidArgument, c.msg)
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case []any:
		var s []string
		for _, e := range v {
			s = append(s, toString(e))
		}
		return strings.Join(s, ",")
	case string:
		return v
	}
	return ""
}

func TestChecksRequestExecution(t *testing.T) {
	a, m, cat := checksAPI(t)
	check := firstOf(t, cat, "cluster")
	r := a.send(t, http.MethodPost, "/api/v1/checks/executions", a.writer, `{"group_id": "c1", "check_ids": ["`+check+`"]}`)
	if r.code != http.StatusOK || r.body["status"] != "running" || r.body["group_id"] != "c1" {
		t.Fatalf("POST execution: %d %s", r.code, r.raw)
	}
	first := r.body["id"].(string)
	if sent := m.lastSent(); len(sent) != 1 || sent[0].GetAggregateId() != "c1" || sent[0].GetRequestExecution().GetExecutionId() != first {
		t.Fatalf("sent %v", sent)
	}
	// A second request while the first runs: 409, nothing sent.
	wantError(t, a.send(t, http.MethodPost, "/api/v1/checks/executions", a.writer, `{"group_id": "c1"}`),
		http.StatusConflict, codes.Aborted, "execution "+first+" is running on c1")
	if sent := m.lastSent(); len(sent) != 1 {
		t.Errorf("a refused request was sent: %v", sent)
	}
	// Retrying the first request answers it again.
	if r := a.send(t, http.MethodPost, "/api/v1/checks/executions", a.writer, `{"group_id": "c1", "execution_id": "`+first+`"}`); r.code != http.StatusOK || r.body["id"] != first {
		t.Errorf("retried request: %d %s", r.code, r.raw)
	}
	// Refused by the processor (the table had not shown the running one
	// yet): 409 too.
	m.mu.Lock()
	m.groups["h1"] = &fleetv1.ExecutionGroup{GroupId: "h1"}
	m.mu.Unlock()
	go func() {
		time.Sleep(50 * time.Millisecond)
		m.mu.Lock()
		m.groups["h1"].Running = &fleetv1.Execution{Id: "other"}
		m.mu.Unlock()
	}()
	m.mu.Lock()
	m.hold = true
	m.mu.Unlock()
	r = a.send(t, http.MethodPost, "/api/v1/checks/executions", a.writer, `{"group_id": "h1"}`)
	if r.code != http.StatusAccepted || r.body["status"] != "requested" {
		t.Errorf("not applied within the wait: %d %s, want 202 requested", r.code, r.raw)
	}
	m.mu.Lock()
	m.groups["h1"] = &fleetv1.ExecutionGroup{GroupId: "h1", RejectedExecutionId: "00000000-0000-0000-0000-000000000001", RejectedBecauseOf: "other"}
	m.mu.Unlock()
	wantError(t, a.send(t, http.MethodPost, "/api/v1/checks/executions", a.writer, `{"group_id": "h1", "execution_id": "00000000-0000-0000-0000-000000000001"}`),
		http.StatusConflict, codes.Aborted, "execution other is running on h1")

	for _, c := range []struct {
		body string
		code int
		msg  string
	}{
		{`{}`, http.StatusBadRequest, "group_id is required"},
		{`{"group_id": "nope"}`, http.StatusNotFound, `no host or cluster "nope"`},
		{`{"group_id": "h1", "check_ids": ["` + check + `"]}`, http.StatusBadRequest, "applies to clusters"},
		{`{"group_id": "h1", "check_ids": ["NOPE"]}`, http.StatusBadRequest, `"NOPE" is not in the catalog`},
		{`{"group_id": "c1", "targets": ["h9"]}`, http.StatusBadRequest, "h9 is not a host of cluster c1"},
		{`{"group_id": "c1", "timeout_ms": -1}`, http.StatusBadRequest, "timeout_ms must be between"},
		{`{"group_id": "c1", "execution_id": "x"}`, http.StatusBadRequest, "execution_id must be a UUID"},
	} {
		r := a.send(t, http.MethodPost, "/api/v1/checks/executions", a.writer, c.body)
		wantError(t, r, c.code, map[int]codes.Code{400: codes.InvalidArgument, 404: codes.NotFound}[c.code], c.msg)
	}
	wantError(t, a.send(t, http.MethodPost, "/api/v1/checks/executions", a.reader, `{"group_id": "c1"}`), http.StatusForbidden, codes.PermissionDenied, `"write"`)

	// Reads: the running one from the table, an old one from the store.
	if r := a.get(t, "/api/v1/checks/executions/"+first+"?group_id=c1", a.reader); r.code != http.StatusOK || r.body["status"] != "running" {
		t.Errorf("GET execution: %d %s", r.code, r.raw)
	}
	if r := a.get(t, "/api/v1/checks/executions/old", a.reader); r.code != http.StatusOK || r.body["status"] != "completed" {
		t.Errorf("GET old execution: %d %s", r.code, r.raw)
	}
	wantError(t, a.get(t, "/api/v1/checks/executions/nope", a.reader), http.StatusNotFound, codes.NotFound, "execution nope not found")
	r = a.get(t, "/api/v1/checks/executions/last/c1", a.reader)
	if run, _ := r.body["running"].(map[string]any); r.code != http.StatusOK || run["id"] != first {
		t.Errorf("GET last: %d %s", r.code, r.raw)
	}
	wantError(t, a.get(t, "/api/v1/checks/executions/last/h9", a.reader), http.StatusNotFound, codes.NotFound, "h9 has had no execution")
	if r := a.get(t, "/api/v1/checks/executions?group_id=c1&status=completed", a.reader); r.code != http.StatusOK || r.body["next_page_token"] == "" {
		t.Errorf("list executions: %d %s", r.code, r.raw)
	}
	wantError(t, a.get(t, "/api/v1/checks/executions?status=done", a.reader), http.StatusBadRequest, codes.InvalidArgument, "status must be one of running, completed")
}

func TestChecksResultsAndCompliance(t *testing.T) {
	a, m, cat := checksAPI(t)
	check := firstOf(t, cat, "cluster")
	r := a.get(t, "/api/v1/checks/results?entity_id=h1&check_id="+check+"&result=critical&source=continuous&current=true&since=2026-01-01T00:00:00Z", a.reader)
	if r.code != http.StatusOK {
		t.Fatalf("results: %d %s", r.code, r.raw)
	}
	m.mu.Lock()
	f := m.results[len(m.results)-1]
	m.mu.Unlock()
	if f.EntityID != "h1" || f.CheckID != check || f.Result != "critical" || f.Source != "continuous" || !f.Current ||
		!f.Since.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !f.Until.IsZero() {
		t.Errorf("store got %+v", f)
	}
	r = a.get(t, "/api/v1/checks/compliance?group=Corosync&bucket=15m&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z", a.reader)
	if r.code != http.StatusOK {
		t.Fatalf("compliance: %d %s", r.code, r.raw)
	}
	m.mu.Lock()
	c := m.comp[len(m.comp)-1]
	m.mu.Unlock()
	if c.Group != "Corosync" || c.Bucket != 15*time.Minute || c.Until.Sub(c.Since) != 24*time.Hour {
		t.Errorf("store got %+v", c)
	}
	// Defaults: the last 24 hours in hours.
	a.get(t, "/api/v1/checks/compliance", a.reader)
	m.mu.Lock()
	lastComp := m.comp[len(m.comp)-1]
	m.mu.Unlock()
	if c := lastComp; c.Bucket != time.Hour || c.Until.Sub(c.Since) != 24*time.Hour {
		t.Errorf("defaults: %+v", c)
	}
	for _, c := range []struct{ path, msg string }{
		{"/api/v1/checks/results?result=bad", "result must be one of passing, warning, critical, error"},
		{"/api/v1/checks/results?source=cron", "source must be one of continuous, execution"},
		{"/api/v1/checks/results?check_id=NOPE", `check_id "NOPE" is not in the catalog`},
		{"/api/v1/checks/results?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since must be before until"},
		{"/api/v1/checks/results?since=yesterday", "since"},
		{"/api/v1/checks/results?page_size=5000", "page_size must be between"},
		{"/api/v1/checks/compliance?bucket=1x", "bucket must be a duration"},
		{"/api/v1/checks/compliance?bucket=10s", "bucket must be a duration of at least 1m"},
		{"/api/v1/checks/compliance?bucket=1m&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z", "more than 1000 buckets"},
		{"/api/v1/checks/compliance?entity_type=vm", "entity_type must be one of"},
	} {
		wantError(t, a.get(t, c.path, a.reader), http.StatusBadRequest, codes.InvalidArgument, c.msg)
	}
}

func TestChecksSelectionAndValues(t *testing.T) {
	a, m, cat := checksAPI(t)
	check := firstOf(t, cat, "cluster")
	r := a.send(t, http.MethodPut, "/api/v1/checks/targets/c1/selection", a.writer, `{"check_ids": ["`+check+`"]}`)
	if r.code != http.StatusAccepted || r.body["target_id"] != "c1" {
		t.Fatalf("PUT selection: %d %s", r.code, r.raw)
	}
	if sc := m.lastSent()[len(m.lastSent())-1].GetSelectChecks(); sc.GetTargetType() != "cluster" || sc.GetCheckIds()[0] != check {
		t.Errorf("sent %v", m.lastSent()[len(m.lastSent())-1])
	}
	// Before discovery the target type must be named.
	wantError(t, a.send(t, http.MethodPut, "/api/v1/checks/targets/new/selection", a.writer, `{"check_ids": []}`),
		http.StatusBadRequest, codes.InvalidArgument, "target_type (host or cluster) is required")
	if r := a.send(t, http.MethodPut, "/api/v1/checks/targets/new/selection", a.writer, `{"check_ids": [], "target_type": "host"}`); r.code != http.StatusAccepted {
		t.Errorf("selection of an undiscovered host: %d %s", r.code, r.raw)
	}
	wantError(t, a.send(t, http.MethodPut, "/api/v1/checks/targets/h1/selection", a.writer, `{"check_ids": ["`+check+`"]}`),
		http.StatusBadRequest, codes.InvalidArgument, "applies to clusters, not to hosts")
	wantError(t, a.send(t, http.MethodPut, "/api/v1/checks/targets/c1/selection", a.writer, `{"check_ids": ["`+check+`"], "target_type": "host"}`),
		http.StatusBadRequest, codes.InvalidArgument, "c1 is a cluster, not a host")

	var withValue *catalog.Check
	for _, c := range cat.Checks() {
		if len(c.Values) > 0 {
			withValue = c
			break
		}
	}
	target := map[string]string{"cluster": "c1", "host": "h1"}[withValue.TargetType()]
	path := "/api/v1/checks/targets/" + target + "/values"
	r = a.send(t, http.MethodPost, path, a.writer, `{"check_id": "`+withValue.ID+`", "name": "`+withValue.Values[0].Name+`", "value": 42}`)
	if r.code != http.StatusAccepted {
		t.Fatalf("POST value: %d %s", r.code, r.raw)
	}
	if o := m.lastSent()[len(m.lastSent())-1].GetOverrideCheckValue(); o.GetValue().GetNumberValue() != 42 || o.GetName() != withValue.Values[0].Name {
		t.Errorf("sent %v", o)
	}
	wantError(t, a.send(t, http.MethodPost, path, a.writer, `{"check_id": "`+withValue.ID+`", "name": "nope", "value": 1}`),
		http.StatusBadRequest, codes.InvalidArgument, `has no value "nope"`)
	wantError(t, a.send(t, http.MethodPost, path, a.writer, `{"check_id": "`+withValue.ID+`", "name": "`+withValue.Values[0].Name+`"}`),
		http.StatusBadRequest, codes.InvalidArgument, "value is required")
	wantError(t, a.send(t, http.MethodPost, path, a.reader, `{}`), http.StatusForbidden, codes.PermissionDenied, `"write"`)

	if r := a.get(t, "/api/v1/checks/targets/c1", a.reader); r.code != http.StatusOK || r.body["target_type"] != "cluster" {
		t.Errorf("GET target: %d %s", r.code, r.raw)
	}
	wantError(t, a.get(t, "/api/v1/checks/targets/nope", a.reader), http.StatusNotFound, codes.NotFound, `"nope"`)
}

func TestEveryChecksMethodHasAScope(t *testing.T) {
	scopes := NewChecksService(ChecksOptions{}).Scopes
	write := map[string]bool{"RequestExecution": true, "SelectChecks": true, "OverrideCheckValue": true}
	for _, m := range fleetv1.ChecksService_ServiceDesc.Methods {
		full := "/" + fleetv1.ChecksService_ServiceDesc.ServiceName + "/" + m.MethodName
		want := ScopeRead
		if write[m.MethodName] {
			want = ScopeWrite
		}
		if scopes[full] != want {
			t.Errorf("%s needs %q, want %q", full, scopes[full], want)
		}
	}
}
