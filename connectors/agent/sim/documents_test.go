package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetstream/fleetstream/schemas/payload"
)

// fixturePayload is the payload of a Trento discovery fixture, decoded.
func fixturePayload(t *testing.T, name string) any {
	t.Helper()
	raw, err := os.ReadFile("../../../testdata/fixtures/trento/discovery/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Payload any `json:"payload"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return f.Payload
}

func decode(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("payload %s: %v", raw, err)
	}
	return v
}

// sameShape reports where ours differs in shape from the fixture: every
// object key of the fixture must be in ours with a value of the same JSON
// kind, recursively (array elements against the fixture's first one).
func sameShape(path string, fixture, ours any) error {
	switch f := fixture.(type) {
	case map[string]any:
		o, ok := ours.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, the fixture has an object", path, ours)
		}
		for k, v := range f {
			ov, present := o[k]
			if !present {
				return fmt.Errorf("%s.%s: missing", path, k)
			}
			if err := sameShape(path+"."+k, v, ov); err != nil {
				return err
			}
		}
	case []any:
		o, ok := ours.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, the fixture has an array", path, ours)
		}
		if len(f) > 0 {
			for i, e := range o {
				if err := sameShape(fmt.Sprintf("%s[%d]", path, i), f[0], e); err != nil {
					return err
				}
			}
		}
	default:
		if fmt.Sprintf("%T", fixture) != fmt.Sprintf("%T", ours) {
			return fmt.Errorf("%s: %T (%v), the fixture has %T (%v)", path, ours, ours, fixture, fixture)
		}
	}
	return nil
}

func TestDiscoveriesAreShapedLikeTrentos(t *testing.T) {
	clouds := map[string]any{}
	for _, p := range cloudProviders {
		clouds[p.name] = fixturePayload(t, "cloud_discovery_"+p.name+".json")
	}
	subs := fixturePayload(t, "subscriptions_discovery.json").([]any)
	tuned := fixturePayload(t, "saptune_discovery.json")
	untuned := fixturePayload(t, "saptune_discovery_not_configured.json")

	f := newFleet(t, Config{N: 300, DiscoveryTypes: AgentDiscoveryTypes()})
	providers, tuning := map[string]int{}, map[string]int{}
	for i := range f.Len() {
		cloud := decode(t, f.PayloadJSON(i, payload.CloudDiscovery)).(map[string]any)
		provider, _ := cloud["Provider"].(string)
		providers[provider]++
		if err := sameShape("cloud", clouds[provider], cloud); err != nil {
			t.Fatalf("host %d on %q: %v\n%s", i, provider, err, f.PayloadJSON(i, payload.CloudDiscovery))
		}

		// Paid products have the fixture's first element's fields, modules
		// those of its second; nothing else appears.
		products := decode(t, f.PayloadJSON(i, payload.SubscriptionDiscovery)).([]any)
		for j, p := range products {
			want := subs[1]
			if _, paid := p.(map[string]any)["expires_at"]; paid {
				want = subs[0]
			}
			if err := sameShape(fmt.Sprintf("subscriptions[%d]", j), want, p); err != nil {
				t.Fatalf("host %d: %v", i, err)
			}
			if err := sameShape(fmt.Sprintf("subscriptions[%d]", j), p, want); err != nil {
				t.Fatalf("host %d: a field the agent does not send: %v", i, err)
			}
		}
		if id := products[0].(map[string]any)["identifier"]; id != "SLES_SAP" {
			t.Fatalf("host %d: first product %v, want SLES_SAP", i, id)
		}

		st := decode(t, f.PayloadJSON(i, payload.SaptuneDiscovery)).(map[string]any)
		state := st["status"].(map[string]any)["result"].(map[string]any)["tuning state"].(string)
		tuning[state]++
		want := tuned
		if state == "not tuned" {
			want = untuned
		}
		if err := sameShape("saptune", want, st); err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
	}
	for _, p := range cloudProviders {
		if providers[p.name] == 0 {
			t.Errorf("no host on %s in 300: %v", p.name, providers)
		}
	}
	for _, s := range []string{"compliant", "not compliant", "not tuned"} {
		if tuning[s] == 0 {
			t.Errorf("no host %s in 300: %v", s, tuning)
		}
	}
}

// Ids and names in the payloads are the host's own, not copied fixtures.
func TestDiscoveriesNameTheirHost(t *testing.T) {
	f := newFleet(t, Config{N: 200, DiscoveryTypes: AgentDiscoveryTypes()})
	seen := map[string]int{}
	for i := range f.Len() {
		for _, typ := range AgentDiscoveryTypes() {
			seen[string(f.PayloadJSON(i, typ))]++
		}
		name := fmt.Sprintf("sim-%04d", i+1)
		cloud := string(f.PayloadJSON(i, payload.CloudDiscovery))
		if strings.Contains(cloud, `"azure"`) && (!strings.Contains(cloud, name) || !strings.Contains(cloud, f.AgentID(i))) {
			t.Errorf("host %d: azure metadata does not name %s (vmId %s): %s", i, name, f.AgentID(i), cloud)
		}
		if strings.Contains(cloud, `"gcp"`) && !strings.Contains(cloud, `"instance_name":"`+name+`"`) {
			t.Errorf("host %d: gcp instance_name is not %s: %s", i, name, cloud)
		}
	}
	// Hypervisors' cloud discoveries are alike, and so are a few
	// subscriptions; saptune's run (publish time, pid) is each host's own.
	dupes := 0
	for _, n := range seen {
		dupes += n - 1
	}
	if dupes > 200*2/3 {
		t.Errorf("%d of %d payloads are duplicates of another host's", dupes, 200*4)
	}
}

func TestDiscoveryChangesShowAndFollowTheRate(t *testing.T) {
	const hosts, rounds = 300, 30
	for _, rate := range []float64{0, 0.1, 1} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			f := newFleet(t, Config{N: hosts, ChangeRate: rate, DiscoveryTypes: AgentDiscoveryTypes()})
			for _, typ := range AgentDiscoveryTypes()[1:] {
				changes, changeable := 0, 0
				for i := range hosts {
					prev := bytes.Clone(f.PayloadJSON(i, typ))
					canChange := typ != payload.CloudDiscovery || !bytes.Contains(prev, []byte(`"Metadata":null`))
					for range rounds {
						p, changed := f.NextJSON(i, typ)
						if changed == bytes.Equal(p, prev) {
							t.Fatalf("%s of host %d: changed=%v but\n%s\n%s", typ, i, changed, prev, p)
						}
						if changed {
							changes++
						}
						if !json.Valid(p) {
							t.Fatalf("%s of host %d is not JSON: %s", typ, i, p)
						}
						prev = bytes.Clone(p)
					}
					if canChange {
						changeable += rounds
					} else if f.PayloadJSON(i, typ) == nil {
						t.Fatalf("no %s for host %d", typ, i)
					}
				}
				n := float64(changeable)
				if mean, sd := n*rate, math.Sqrt(n*rate*(1-rate)); math.Abs(float64(changes)-mean) > 5*sd {
					t.Errorf("%s: %d changes in %v changeable discoveries at rate %v, want %v ± %.0f", typ, changes, n, rate, mean, 5*sd)
				}
			}
		})
	}
}

// Simulating more types leaves each seed's host_discovery sequence as it was.
func TestMoreTypesKeepTheHostSequence(t *testing.T) {
	only := newFleet(t, Config{N: 50, ChangeRate: 0.3})
	all := newFleet(t, Config{N: 50, ChangeRate: 0.3, DiscoveryTypes: AgentDiscoveryTypes()})
	for i := range 50 {
		for step := range 10 {
			all.NextJSON(i, payload.SaptuneDiscovery)
			all.NextJSON(i, payload.CloudDiscovery)
			a, _ := only.NextJSON(i, payload.HostDiscovery)
			b, _ := all.NextJSON(i, payload.HostDiscovery)
			if !bytes.Equal(a, b) {
				t.Fatalf("host %d, discovery %d differs:\n%s\n%s", i, step, a, b)
			}
		}
	}
	if got := all.DiscoveryTypes(); !slices.Equal(got, AgentDiscoveryTypes()) {
		t.Errorf("DiscoveryTypes() = %v", got)
	}
}

func TestRoundSendsEachTypeOnceThenHeartbeats(t *testing.T) {
	in := newIngest(t)
	ts := httptest.NewServer(in)
	defer ts.Close()
	const n = 20
	// Given out of order: host_discovery still goes first.
	types := []string{payload.SaptuneDiscovery, payload.HostDiscovery, payload.CloudDiscovery, payload.SubscriptionDiscovery}
	f := newFleet(t, Config{N: n, Server: ts.URL, KeyFor: func(id string) string { return "key-" + id }, DiscoveryTypes: types, Concurrency: 4})
	if err := f.Round(t.Context()); err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := range n {
		id := f.AgentID(i)
		for _, typ := range types {
			if got := in.types[id][typ]; got != 1 {
				t.Errorf("host %d sent %d %s, want 1", i, got, typ)
			}
		}
		if in.heartbeats[id] != 1 {
			t.Errorf("host %d sent %d heartbeats, want 1", i, in.heartbeats[id])
		}
	}
	firstHeartbeat := slices.IndexFunc(in.calls, func(c string) bool { return strings.HasSuffix(c, " heartbeat") })
	if firstHeartbeat != n*len(types) {
		t.Errorf("first heartbeat is call %d, want %d (after every discovery)", firstHeartbeat, n*len(types))
	}
	if s := f.Stats(); s.DiscoveriesSent != n*4 || s.HeartbeatsSent != n {
		t.Errorf("stats %+v", s)
	}
}

func TestRunSendsEveryConfiguredType(t *testing.T) {
	in := newIngest(t)
	ts := httptest.NewServer(in)
	defer ts.Close()
	const n = 10
	f := newFleet(t, Config{
		N: n, Server: ts.URL, KeyFor: func(id string) string { return "key-" + id },
		DiscoveryTypes: []string{payload.HostDiscovery, payload.SubscriptionDiscovery}, ReportInterval: time.Hour,
	})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = f.AgentID(i)
	}
	done := make(chan struct{})
	in.onRequest = func(in *ingest) {
		for _, id := range ids {
			if in.types[id][payload.SubscriptionDiscovery] < 2 || in.heartbeats[id] < 2 {
				return
			}
		}
		select {
		case <-done:
		default:
			close(done)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		errc <- f.RunAt(ctx, Pace{DiscoveryInterval: 20 * time.Millisecond, HeartbeatInterval: 10 * time.Millisecond})
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Error("the fleet never sent two subscriptions and heartbeats per host")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, id := range ids {
		if in.types[id][payload.HostDiscovery] == 0 || in.types[id][payload.CloudDiscovery] != 0 {
			t.Errorf("agent %s sent %v", id, in.types[id])
		}
	}
}

func TestNewChecksDiscoveryTypes(t *testing.T) {
	for _, tc := range []struct {
		types []string
		want  string
	}{
		{[]string{"ha_cluster_discovery"}, "cannot simulate"},
		{[]string{payload.HostDiscovery, payload.HostDiscovery}, "twice"},
	} {
		if _, err := New(Config{N: 1, DiscoveryTypes: tc.types}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("types %v: err %v, want %q", tc.types, err, tc.want)
		}
	}
	f := newFleet(t, Config{N: 1, Server: "http://127.0.0.1:1", APIKey: "k"})
	if err := f.RunAt(t.Context(), Pace{}); err == nil || !strings.Contains(err.Error(), "positive") {
		t.Errorf("RunAt with a zero pace: %v", err)
	}
	if p := f.PayloadJSON(0, "fridge_discovery"); p != nil {
		t.Errorf("PayloadJSON of an unknown type: %s", p)
	}
}
