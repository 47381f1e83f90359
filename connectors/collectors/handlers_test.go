package collectors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/connectors/collectors/collectorstest"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// staticProvider serves fixed resources: the handlers' logic is tested
// here, the providers against real API servers in their packages.
type staticProvider struct {
	resources map[string][]payload.Resource // by "<region>/<kind>"
	err       error
	opened    []collectors.Target
}

func (p *staticProvider) Name() string { return "static" }

func (p *staticProvider) Kinds() []collectors.Kind {
	return []collectors.Kind{{Name: "server"}, {Name: "disk"}, {Name: "account_setting", Global: true}}
}

func (p *staticProvider) Open(_ context.Context, t collectors.Target) (collectors.Collector, error) {
	p.opened = append(p.opened, t)
	return staticCollector{p}, nil
}

type staticCollector struct{ p *staticProvider }

func (c staticCollector) Account() string { return "acct-1" }
func (c staticCollector) Regions(context.Context) ([]string, error) {
	return []string{"north", "south"}, nil
}
func (c staticCollector) Collect(_ context.Context, region, kind string) ([]payload.Resource, error) {
	return c.p.resources[region+"/"+kind], c.p.err
}
func (c staticCollector) Close(context.Context) error { return nil }

func servers(n int) []payload.Resource {
	rs := make([]payload.Resource, n)
	for i := range rs {
		// Reverse order and unsorted links: the published order must not
		// depend on the API's.
		rs[i] = payload.Resource{ID: fmt.Sprintf("srv-%05d", n-i), Links: []payload.ResourceLink{
			{Relation: "in_zone", Kind: "zone", ID: "z2"}, {Relation: "in_zone", Kind: "zone", ID: "z1"},
		}}
	}
	return rs
}

func handlers(t *testing.T, p collectors.Provider, opts collectors.Options) map[string]tasks.Handler {
	t.Helper()
	reg, err := collectors.NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	return reg.Handlers(opts)
}

func run(ctx context.Context, hs map[string]tasks.Handler, task *fleetv1.Task) (*collectorstest.Output, error) {
	out := &collectorstest.Output{}
	return out, hs[task.Type].Run(ctx, task, out)
}

func kindTask(t *testing.T, req collectors.CollectKind) *fleetv1.Task {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return &fleetv1.Task{Id: "k1", Type: "static.collect_kind", Payload: b, Attempt: 1}
}

func TestCollectAllFansOutOneTaskPerRegionAndKind(t *testing.T) {
	p := &staticProvider{}
	hs := handlers(t, p, collectors.Options{})
	deadline := timestamppb.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		name string
		req  collectors.CollectAll
		want []string // region/kind
	}{
		{"everything", collectors.CollectAll{},
			[]string{"north/server", "south/server", "north/disk", "south/disk", "global/account_setting"}},
		{"chosen regions and kinds", collectors.CollectAll{Regions: []string{"south", "south"}, Kinds: []string{"disk", "account_setting", "disk"}},
			[]string{"south/disk", "global/account_setting"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(tc.req)
			out, err := run(context.Background(), hs, &fleetv1.Task{Id: "a1", Type: "static.collect_all", Payload: body,
				Priority: fleetv1.Priority_PRIORITY_HIGH, MaxAttempts: 7, Deadline: deadline})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ft := range out.Tasks {
				var k collectors.CollectKind
				if err := json.Unmarshal(ft.Payload, &k); err != nil {
					t.Fatal(err)
				}
				got = append(got, k.Region+"/"+k.Kind)
				if ft.Type != "static.collect_kind" || k.Account != "acct-1" || ft.Priority != fleetv1.Priority_PRIORITY_HIGH ||
					ft.MaxAttempts != 7 || !ft.Deadline.AsTime().Equal(deadline.AsTime()) {
					t.Errorf("fanned-out task %v (payload %s) does not carry the parent's type, account, priority, attempts and deadline", ft, ft.Payload)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("fanned out %v, want %v", got, tc.want)
			}
			if len(out.Discoveries) != 0 {
				t.Errorf("collect_all published %d discoveries", len(out.Discoveries))
			}
		})
	}
}

func TestCollectKindPublishesSortedChunks(t *testing.T) {
	p := &staticProvider{resources: map[string][]payload.Resource{"north/server": servers(1203)}}
	reg := prometheus.NewRegistry()
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	hs := handlers(t, p, collectors.Options{Metrics: collectors.NewMetrics(reg), Now: func() time.Time { return at }})

	out, err := run(context.Background(), hs, kindTask(t, collectors.CollectKind{Region: "north", Kind: "server"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Discoveries) != 3 {
		t.Fatalf("1203 resources in %d discoveries, want 3 of at most 500", len(out.Discoveries))
	}
	var all []payload.Resource
	var collectionID string
	for i, d := range out.Discoveries {
		var rc payload.ResourceCollection
		if err := json.Unmarshal(d.Payload, &rc); err != nil {
			t.Fatal(err)
		}
		if d.AgentId != "static:acct-1:north:server" || d.DiscoveryType != payload.CloudResources || d.Source != "collector:static" || !d.CollectedAt.AsTime().Equal(at) {
			t.Errorf("discovery envelope %v", d)
		}
		if rc.Chunk != i || rc.Chunks != 3 || !rc.Complete || rc.Provider != "static" || rc.Account != "acct-1" || rc.Region != "north" || rc.Kind != "server" {
			t.Errorf("chunk %d header %+v", i, rc)
		}
		if i == 0 {
			collectionID = rc.CollectionID
		} else if rc.CollectionID != collectionID || collectionID == "" {
			t.Errorf("chunk %d collection id %q, chunk 0's %q", i, rc.CollectionID, collectionID)
		}
		if want := []int{500, 500, 203}[i]; len(rc.Resources) != want {
			t.Errorf("chunk %d has %d resources, want %d", i, len(rc.Resources), want)
		}
		all = append(all, rc.Resources...)
	}
	if !slices.IsSortedFunc(all, func(a, b payload.Resource) int { return strings.Compare(a.ID, b.ID) }) || len(all) != 1203 {
		t.Error("resources are not published once each, sorted by id")
	}
	if l := all[0].Links; l[0].ID != "z1" || l[1].ID != "z2" {
		t.Errorf("links %v are not sorted", l)
	}
	if got := counterSum(t, reg, "fleetstream_collector_resources_total"); got != 1203 {
		t.Errorf("resources metric %v, want 1203", got)
	}
	if got := counterSum(t, reg, "fleetstream_collector_collections_total"); got != 1 {
		t.Errorf("collections metric %v, want 1", got)
	}
}

func TestChunksStayUnderTheByteLimit(t *testing.T) {
	rs := servers(100)
	for i := range rs {
		rs[i].Attributes = map[string]any{"blob": strings.Repeat("x", 1000)}
	}
	p := &staticProvider{resources: map[string][]payload.Resource{"north/server": rs}}
	hs := handlers(t, p, collectors.Options{MaxChunkBytes: 10_000})
	out, err := run(context.Background(), hs, kindTask(t, collectors.CollectKind{Region: "north", Kind: "server"}))
	if err != nil {
		t.Fatal(err)
	}
	// About 1.2 KB a resource: 8 per 10 KB chunk.
	if n := len(out.Discoveries); n < 12 || n > 13 {
		t.Errorf("100 resources of ~1.2 KB in %d chunks under 10 KB, want 12 or 13", n)
	}
	for _, d := range out.Discoveries {
		if len(d.Payload) > 12_000 {
			t.Errorf("chunk of %d bytes", len(d.Payload))
		}
	}
}

func TestAnEmptyCollectionIsPublished(t *testing.T) {
	hs := handlers(t, &staticProvider{}, collectors.Options{})
	out, err := run(context.Background(), hs, kindTask(t, collectors.CollectKind{Kind: "account_setting"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Discoveries) != 1 {
		t.Fatalf("%d discoveries, want one empty chunk", len(out.Discoveries))
	}
	d := out.Discoveries[0]
	if d.AgentId != "static:acct-1:global:account_setting" || !strings.Contains(string(d.Payload), `"complete":true`) || !strings.Contains(string(d.Payload), `"resources":[]`) {
		t.Errorf("empty collection %s: %s", d.AgentId, d.Payload)
	}
}

func TestCollectKindErrors(t *testing.T) {
	dup := []payload.Resource{{ID: "a"}, {ID: "b"}, {ID: "a"}}
	for _, tc := range []struct {
		name      string
		p         *staticProvider
		req       collectors.CollectKind
		permanent bool
		want      string
	}{
		{"provider error is retried", &staticProvider{err: errors.New("connection reset")}, collectors.CollectKind{Region: "north", Kind: "server"}, false, "connection reset"},
		{"provider permanent error stays permanent", &staticProvider{err: tasks.Permanent(errors.New("access denied"))}, collectors.CollectKind{Region: "north", Kind: "server"}, true, "access denied"},
		{"duplicate ids", &staticProvider{resources: map[string][]payload.Resource{"north/server": dup}}, collectors.CollectKind{Region: "north", Kind: "server"}, true, "resource a twice"},
		{"unknown kind", &staticProvider{}, collectors.CollectKind{Region: "north", Kind: "volume"}, true, "use one of server, disk, account_setting"},
		{"regional kind in global region", &staticProvider{}, collectors.CollectKind{Region: "global", Kind: "server"}, true, "collected per region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(context.Background(), handlers(t, tc.p, collectors.Options{}), kindTask(t, tc.req))
			if err == nil || tasks.IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (permanent %v), want permanent=%v containing %q", err, tasks.IsPermanent(err), tc.permanent, tc.want)
			}
			if len(out.Discoveries) != 0 {
				t.Errorf("a failed collection published %d discoveries", len(out.Discoveries))
			}
		})
	}
}

func TestRegistryRejectsTwoProvidersOfOneName(t *testing.T) {
	if _, err := collectors.NewRegistry(&staticProvider{}, &staticProvider{}); err == nil {
		t.Fatal("two providers named static were accepted")
	}
}

func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
