package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// memDiscovery stands in for the aggregates' views and the read model in
// the API-contract tests: it records the filters it receives (the
// ClickHouse queries behind them are tested in connectors/clickhouse and,
// through REST, in internal/system).
type memDiscovery struct {
	clusters   map[string]*fleetv1.Cluster
	sapSystems map[string]*fleetv1.SapSystem
	databases  map[string]*fleetv1.Database

	mu      sync.Mutex
	filters []DiscoveryFilter
	tags    map[string][]string // "type/id" → values
}

type memReader[T any] map[string]T

func (m memReader[T]) Get(id string) (T, error) { return m[id], nil }

func (m *memDiscovery) record(f DiscoveryFilter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.filters = append(m.filters, f)
}

func (m *memDiscovery) lastFilter() DiscoveryFilter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.filters[len(m.filters)-1]
}

func (m *memDiscovery) ListClusters(_ context.Context, f DiscoveryFilter, _ int, _ string) ([]*fleetv1.Cluster, string, error) {
	m.record(f)
	var out []*fleetv1.Cluster
	for _, id := range slices.Sorted(mapKeys(m.clusters)) {
		out = append(out, m.clusters[id])
	}
	return out, "", nil
}

func (m *memDiscovery) ListSapSystems(_ context.Context, f DiscoveryFilter, _ int, _ string) ([]*fleetv1.SapSystem, string, error) {
	m.record(f)
	var out []*fleetv1.SapSystem
	for _, id := range slices.Sorted(mapKeys(m.sapSystems)) {
		if s := m.sapSystems[id]; f.DatabaseID == "" || s.GetDatabaseId() == f.DatabaseID {
			out = append(out, s)
		}
	}
	return out, "", nil
}

func (m *memDiscovery) ListDatabases(_ context.Context, f DiscoveryFilter, _ int, _ string) ([]*fleetv1.Database, string, error) {
	m.record(f)
	return []*fleetv1.Database{m.databases["d1"]}, "d1", nil
}

func (m *memDiscovery) ListEvents(_ context.Context, aggregateType, id string, _ int, _ string) ([]*fleetv1.EventRecord, string, error) {
	return []*fleetv1.EventRecord{{EventId: "e1", AggregateType: aggregateType, AggregateId: id, Version: 1, Type: "X"}}, "", nil
}

func (m *memDiscovery) Tags(_ context.Context, entityType string, ids []string) (map[string][]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]string{}
	for _, id := range ids {
		if v := m.tags[entityType+"/"+id]; len(v) > 0 {
			out[id] = slices.Sorted(slices.Values(v))
		}
	}
	return out, nil
}

func (m *memDiscovery) AddTag(_ context.Context, entityType, id, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := entityType + "/" + id
	if !slices.Contains(m.tags[k], value) {
		m.tags[k] = append(m.tags[k], value)
	}
	return nil
}

func (m *memDiscovery) RemoveTag(_ context.Context, entityType, id, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := entityType + "/" + id
	m.tags[k] = slices.DeleteFunc(m.tags[k], func(v string) bool { return v == value })
	return nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// landscape: cluster c1 of hosts h001 and h002 (h009 is a member the host
// table does not know), SAP system s1 on h002 and h001 running on database
// d1 (instances on h001), s2 pending (not registered).
func landscape(t *testing.T) (*testAPI, *memDiscovery) {
	t.Helper()
	hosts, store := fleet(3)
	reg := timestamppb.New(ts0)
	m := &memDiscovery{
		clusters: map[string]*fleetv1.Cluster{"c1": {Id: "c1", Name: "hana", Type: "hana_scale_up", Health: "passing", RegisteredAt: reg,
			Hosts: []*fleetv1.ClusterHost{{HostId: "h002"}, {HostId: "h001"}, {HostId: "h009"}}}},
		sapSystems: map[string]*fleetv1.SapSystem{
			"s1": {Id: "s1", Sid: "NWP", DatabaseId: "d1", RegisteredAt: reg, ApplicationInstances: []*fleetv1.ApplicationInstance{
				{HostId: "h002", InstanceNumber: "00"}, {HostId: "h001", InstanceNumber: "01"}, {HostId: "h002", InstanceNumber: "02"}}},
			"s2": {Id: "s2", Sid: "PEN"},
		},
		databases: map[string]*fleetv1.Database{"d1": {Id: "d1", Sid: "HDP", RegisteredAt: reg,
			Instances: []*fleetv1.DatabaseInstance{{HostId: "h001", InstanceNumber: "10"}}}},
		tags: map[string][]string{},
	}
	svc := NewDiscoveryService(DiscoveryOptions{Hosts: hosts, Clusters: memReader[*fleetv1.Cluster](m.clusters),
		SapSystems: memReader[*fleetv1.SapSystem](m.sapSystems), Databases: memReader[*fleetv1.Database](m.databases), Store: m})
	return start(t, hosts, store, Options{Services: []Service{svc}}), m
}

// send makes a request with a JSON body and decodes the JSON answer.
func (a *testAPI) send(t *testing.T, method, path, secret, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, header: resp.Header, raw: raw}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, raw)
	}
	return r
}

func ids(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		out = append(out, e.(map[string]any)["id"].(string))
	}
	return out
}

func TestDiscoveryEntityWithRelated(t *testing.T) {
	a, _ := landscape(t)
	r := a.get(t, "/api/v1/clusters/c1", a.reader)
	if r.code != http.StatusOK {
		t.Fatalf("GET cluster: %d %s", r.code, r.raw)
	}
	if c := r.body["cluster"].(map[string]any); c["id"] != "c1" || c["type"] != "hana_scale_up" {
		t.Errorf("cluster %v", c)
	}
	// In the cluster's order; the unknown member is left out.
	if got := ids(t, r.body["hosts"]); !slices.Equal(got, []string{"h002", "h001"}) {
		t.Errorf("cluster hosts %v", got)
	}

	r = a.get(t, "/api/v1/sap_systems/s1", a.reader)
	if r.code != http.StatusOK {
		t.Fatalf("GET SAP system: %d %s", r.code, r.raw)
	}
	if got := ids(t, r.body["hosts"]); !slices.Equal(got, []string{"h001", "h002"}) {
		t.Errorf("SAP system hosts %v, want each once, sorted", got)
	}
	if d := r.body["database"].(map[string]any); d["id"] != "d1" || d["sid"] != "HDP" {
		t.Errorf("SAP system database %v", d)
	}
	// A pending system is not an entity yet.
	wantError(t, a.get(t, "/api/v1/sap_systems/s2", a.reader), http.StatusNotFound, codes.NotFound, "SAP system s2 not found")

	r = a.get(t, "/api/v1/databases/d1", a.reader)
	if r.code != http.StatusOK {
		t.Fatalf("GET database: %d %s", r.code, r.raw)
	}
	if got := ids(t, r.body["sap_systems"]); !slices.Equal(got, []string{"s1"}) {
		t.Errorf("database SAP systems %v", got)
	}
	if got := ids(t, r.body["hosts"]); !slices.Equal(got, []string{"h001"}) {
		t.Errorf("database hosts %v", got)
	}

	for _, path := range []string{"/api/v1/clusters/nope", "/api/v1/databases/nope", "/api/v1/clusters/nope/events", "/api/v1/sap_systems/nope/events"} {
		wantError(t, a.get(t, path, a.reader), http.StatusNotFound, codes.NotFound, "nope not found")
	}
	r = a.get(t, "/api/v1/databases/d1/events", a.reader)
	if r.code != http.StatusOK || r.body["events"].([]any)[0].(map[string]any)["aggregate_type"] != "database" {
		t.Errorf("database events: %d %s", r.code, r.raw)
	}
}

func TestDiscoveryListFilters(t *testing.T) {
	a, m := landscape(t)
	for _, c := range []struct {
		path string
		want DiscoveryFilter
	}{
		{"/api/v1/clusters?health=critical&type=ascs_ers&sid=HA1&provider=azure&tag=prod&tag=eu&host_id=h001&include_deregistered=true",
			DiscoveryFilter{Health: "critical", Type: "ascs_ers", SID: "HA1", Provider: "azure", Tags: []string{"prod", "eu"}, HostID: "h001", IncludeDeregistered: true}},
		{"/api/v1/sap_systems?type=abap&sid=nwp&database_id=d1&tag=a%20b",
			DiscoveryFilter{Type: "abap", SID: "nwp", DatabaseID: "d1", Tags: []string{"a b"}}},
		{"/api/v1/databases?health=passing&sid=HDP&host_id=h002", DiscoveryFilter{Health: "passing", SID: "HDP", HostID: "h002"}},
	} {
		r := a.get(t, c.path, a.reader)
		if r.code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.path, r.code, r.raw)
		}
		if got := m.lastFilter(); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: store got %+v, want %+v", c.path, got, c.want)
		}
	}
	r := a.get(t, "/api/v1/databases", a.reader)
	if tok, _ := r.body["next_page_token"].(string); tok == "" {
		t.Errorf("no next_page_token: %s", r.raw)
	}

	for _, c := range []struct{ path, msg string }{
		{"/api/v1/clusters?health=bad", "health must be one of"},
		{"/api/v1/clusters?type=abap", "type must be one of hana_scale_up"},
		{"/api/v1/clusters?provider=ibm", "provider must be one of aws"},
		{"/api/v1/sap_systems?type=A%20B", "is not a type"},
		{"/api/v1/sap_systems?sid=TOOLONG", "sid must be three"},
		{"/api/v1/databases?sid=1AB", "sid must be three"},
		{"/api/v1/databases?tag=%3Cscript%3E", "characters a tag cannot hold"},
		{"/api/v1/databases?type=hana", `unknown query parameter "type"`},
		{"/api/v1/clusters?helth=critical", `unknown query parameter "helth"`},
		{"/api/v1/sap_systems?page_size=5000", "page_size must be between"},
		{"/api/v1/clusters?page_token=" + url.QueryEscape(encodePageToken("databases", "d1")), "page_token is not valid here"},
		{"/api/v1/hosts?provider=ibm", "provider must be one of"},
		{"/api/v1/hosts?tag=", "tag value is required"},
	} {
		wantError(t, a.get(t, c.path, a.reader), http.StatusBadRequest, codes.InvalidArgument, c.msg)
	}
}

func TestTagRoutes(t *testing.T) {
	a, m := landscape(t)
	for _, c := range []struct{ path, entityType, id string }{
		{"/api/v1/hosts/h001/tags", "host", "h001"},
		{"/api/v1/clusters/c1/tags", "cluster", "c1"},
		{"/api/v1/sap_systems/s1/tags", "sap_system", "s1"},
		{"/api/v1/databases/d1/tags", "database", "d1"},
	} {
		r := a.send(t, http.MethodPost, c.path, a.writer, `{"value": "env:prod"}`)
		if r.code != http.StatusOK || r.body["entity_type"] != c.entityType || r.body["entity_id"] != c.id || r.body["value"] != "env:prod" {
			t.Fatalf("POST %s: %d %s", c.path, r.code, r.raw)
		}
		a.send(t, http.MethodPost, c.path, a.writer, `{"value": "Team A_1.x+y=z@w-v"}`)
		r = a.get(t, c.path, a.reader)
		if got := fmt.Sprint(r.body["values"]); got != "[Team A_1.x+y=z@w-v env:prod]" {
			t.Errorf("GET %s: %s", c.path, r.raw)
		}
		if r := a.send(t, http.MethodDelete, c.path+"/env:prod", a.writer, ""); r.code != http.StatusOK {
			t.Errorf("DELETE %s/env:prod: %d %s", c.path, r.code, r.raw)
		}
	}
	if got := m.tags["cluster/c1"]; !slices.Equal(got, []string{"Team A_1.x+y=z@w-v"}) {
		t.Errorf("cluster c1 tags in the store: %v", got)
	}
	// Details and lists show tags.
	if r := a.get(t, "/api/v1/clusters/c1", a.reader); fmt.Sprint(r.body["tags"]) != "[Team A_1.x+y=z@w-v]" {
		t.Errorf("cluster detail tags: %s", r.raw)
	}
	r := a.get(t, "/api/v1/clusters", a.reader)
	if tags := r.body["tags"].([]any); len(tags) != 1 || tags[0].(map[string]any)["entity_id"] != "c1" {
		t.Errorf("cluster list tags: %s", r.raw)
	}

	for _, c := range []struct{ body, msg string }{
		{`{"value": ""}`, "tag value is required"},
		{`{}`, "tag value is required"},
		{`{"value": "` + strings.Repeat("x", 65) + `"}`, "the limit is 64"},
		{`{"value": "semi;colon"}`, "characters a tag cannot hold"},
		{`{"value": " leading"}`, "characters a tag cannot hold"},
		{`{"value": "trailing "}`, "characters a tag cannot hold"},
		{`{"value": "ünïcode"}`, "characters a tag cannot hold"},
		{`{"value": "a/b"}`, "characters a tag cannot hold"},
		{`{"value": "x", "colour": "red"}`, "colour"},
	} {
		wantError(t, a.send(t, http.MethodPost, "/api/v1/clusters/c1/tags", a.writer, c.body), http.StatusBadRequest, codes.InvalidArgument, c.msg)
	}
	if r := a.send(t, http.MethodPost, "/api/v1/clusters/c1/tags", a.writer, `{"value": "`+strings.Repeat("x", 64)+`"}`); r.code != http.StatusOK {
		t.Errorf("a 64-character tag: %d %s", r.code, r.raw)
	}
	wantError(t, a.send(t, http.MethodDelete, "/api/v1/clusters/c1/tags/a%3Bb", a.writer, ""), http.StatusBadRequest, codes.InvalidArgument, "cannot hold")
	wantError(t, a.send(t, http.MethodPost, "/api/v1/clusters/nope/tags", a.writer, `{"value": "x"}`), http.StatusNotFound, codes.NotFound, "cluster nope not found")
	wantError(t, a.send(t, http.MethodPost, "/api/v1/hosts/nope/tags", a.writer, `{"value": "x"}`), http.StatusNotFound, codes.NotFound, "host nope not found")
	wantError(t, a.send(t, http.MethodPost, "/api/v1/sap_systems/s2/tags", a.writer, `{"value": "x"}`), http.StatusNotFound, codes.NotFound, "not found")
	wantError(t, a.send(t, http.MethodPost, "/api/v1/tasks/t1/tags", a.writer, `{"value": "x"}`), http.StatusNotFound, codes.NotFound, "no route")

	// Scopes: writing tags needs write, reading needs read.
	wantError(t, a.send(t, http.MethodPost, "/api/v1/clusters/c1/tags", a.reader, `{"value": "x"}`), http.StatusForbidden, codes.PermissionDenied, `"write"`)
	wantError(t, a.send(t, http.MethodDelete, "/api/v1/clusters/c1/tags/x", a.reader, ""), http.StatusForbidden, codes.PermissionDenied, `"write"`)
	wantError(t, a.get(t, "/api/v1/clusters/c1/tags", a.writer), http.StatusForbidden, codes.PermissionDenied, `"read"`)
	wantError(t, a.get(t, "/api/v1/sap_systems", a.writer), http.StatusForbidden, codes.PermissionDenied, `"read"`)
	wantError(t, a.send(t, http.MethodPost, "/api/v1/clusters/c1/tags", "", `{"value": "x"}`), http.StatusUnauthorized, codes.Unauthenticated, "Authorization: Bearer")
	wantError(t, a.get(t, "/api/v1/databases/d1", ""), http.StatusUnauthorized, codes.Unauthenticated, "missing API key")
}

func TestEveryDiscoveryMethodHasAScope(t *testing.T) {
	scopes := NewDiscoveryService(DiscoveryOptions{}).Scopes
	for _, m := range fleetv1.DiscoveryService_ServiceDesc.Methods {
		full := "/" + fleetv1.DiscoveryService_ServiceDesc.ServiceName + "/" + m.MethodName
		want := ScopeRead
		if strings.HasPrefix(m.MethodName, "AddTag") || strings.HasPrefix(m.MethodName, "RemoveTag") {
			want = ScopeWrite
		}
		if scopes[full] != want {
			t.Errorf("%s needs %q, want %q", full, scopes[full], want)
		}
	}
}
