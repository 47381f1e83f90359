package checks

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const (
	fixtures         = "../../testdata/fixtures/trento/discovery"
	clusterScenarios = "../../testdata/fixtures/trento/scenarios/hana-cluster-details"
	kvmCluster       = "b767b3e9-e802-587e-a442-541d093b86b9_ha_cluster_discovery_kvm_provider.json"
	unknownCluster   = "b767b3e9-e802-587e-a442-541d093b86b9_ha_cluster_discovery_unknown_provider.json"
	// onPremRings is the check of two corosync rings, which selects
	// provider: [kvm, vmware, nutanix].
	onPremRings = "21FCA3"
)

func fixturePayload(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc.Payload
}

// clusterWorld is a two-node cluster (hosts A and B) built from an
// ha_cluster_discovery fixture as the checks processor sees it: the cluster
// aggregate's state (details derived from the discovery), then each
// member's env and facts (its discoveries' derived facts and corosync.conf
// with ringsPerNode rings) forwarded by the member.
func clusterWorld(t *testing.T, r *Rules, fixture, hostProvider string, ringsPerNode int) (*fleetv1.ChecksTarget, result) {
	t.Helper()
	raw := fixturePayload(t, filepath.Join(clusterScenarios, fixture))
	hc, err := payload.DecodeHACluster(raw)
	if err != nil {
		t.Fatal(err)
	}
	d := hc.Details()
	c := &fleetv1.Cluster{Id: cluster, Name: hc.Name, Type: d.GetType(), Version: 1, Details: d}
	for _, h := range []string{hostA, hostB} {
		c.Hosts = append(c.Hosts, &fleetv1.ClusterHost{HostId: h, Name: h[:4], Online: true})
	}
	res := r.applyEvent(nil, cluster, &fleetv1.Event{
		EventId: "cluster-1", AggregateType: "cluster", AggregateId: cluster, Version: 1, OccurredAt: at(0),
		State: &fleetv1.AggregateState{State: &fleetv1.AggregateState_Cluster{Cluster: c}},
	})
	state := res.state

	derived := map[string][]byte{
		payload.HAClusterDiscovery:    raw,
		payload.HostDiscovery:         fixturePayload(t, filepath.Join(fixtures, "host_discovery.json")),
		payload.CloudDiscovery:        fixturePayload(t, filepath.Join(fixtures, "cloud_discovery_"+hostProvider+".json")),
		payload.SaptuneDiscovery:      fixturePayload(t, filepath.Join(fixtures, "saptune_discovery.json")),
		payload.SubscriptionDiscovery: fixturePayload(t, filepath.Join(fixtures, "subscriptions_discovery.json")),
		payload.SAPSystemDiscovery:    fixturePayload(t, filepath.Join(fixtures, "sap_system_discovery_database.json")),
	}
	var nodes []any
	for i := range 2 {
		n := map[string]any{"nodeid": float64(i + 1), "ring0_addr": fmt.Sprintf("10.0.0.%d", i+1)}
		if ringsPerNode > 1 {
			n["ring1_addr"] = fmt.Sprintf("192.168.0.%d", i+1)
		}
		nodes = append(nodes, n)
	}
	corosync := fact("corosync.conf@v1", "", map[string]any{
		"totem":    map[string]any{"token": "5000", "consensus": "6000"},
		"nodelist": map[string]any{"node": nodes},
	})
	for i, h := range []string{hostA, hostB} {
		var facts []*fleetv1.Fact
		for typ, p := range derived {
			facts, _ = setFact(facts, &fleetv1.Fact{Gatherer: DerivedGatherer(typ), Value: compactJSON(p), GatheredAt: at(1)})
		}
		f, err := gatheredFact(corosync, at(1))
		if err != nil {
			t.Fatal(err)
		}
		facts, _ = setFact(facts, f)
		env, err := structpb.NewStruct(map[string]any{EnvTargetType: TargetHost, EnvHostname: h[:4], EnvProvider: hostProvider})
		if err != nil {
			t.Fatal(err)
		}
		res = r.applyLoop(state, cluster, &fleetv1.ChecksLoopMessage{
			At: at(2 + i), Cause: "member-" + h,
			Body: &fleetv1.ChecksLoopMessage_MemberFacts{MemberFacts: &fleetv1.MemberFactsUpdate{
				ClusterId: cluster, Member: &fleetv1.MemberFacts{HostId: h, Env: env, Facts: facts},
			}},
		}, "")
		if res.state == nil {
			t.Fatalf("member %s's facts changed nothing: %+v", h, res)
		}
		state = res.state
	}
	return state, res
}

func resultOf(state *fleetv1.ChecksTarget, checkID string) *fleetv1.CheckResult {
	for _, r := range state.GetStatus().GetResults() {
		if r.GetCheckId() == checkID {
			return r
		}
	}
	return nil
}

// A cluster's env has the provider of its ha_cluster_discovery (through the
// cluster's state), so that cluster checks selecting a provider apply.
func TestClusterProviderSelectsChecks(t *testing.T) {
	r := rules(t)
	if _, ok := r.cat.Check(onPremRings); !ok {
		t.Skipf("check %s is no longer in the catalog", onPremRings)
	}
	for _, tt := range []struct {
		name         string
		fixture      string
		hostProvider string
		rings        int
		wantProvider string
		want         string // 21FCA3's result, "" when it does not apply
	}{
		{"kvm, two rings", kvmCluster, "kvm", 2, "kvm", "passing"},
		{"kvm, one ring", kvmCluster, "kvm", 1, "kvm", "warning"},
		{"no provider named", unknownCluster, "unknown", 2, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state, _ := clusterWorld(t, r, tt.fixture, tt.hostProvider, tt.rings)
			env := envMap(state.GetEnv())
			if got, _ := env[EnvProvider].(string); got != tt.wantProvider {
				t.Errorf("cluster env provider %q, want %q (env %v)", got, tt.wantProvider, env)
			}
			res := resultOf(state, onPremRings)
			if tt.want == "" {
				if res != nil {
					t.Errorf("%s applied to a cluster without provider: %v", onPremRings, res)
				}
				return
			}
			if res == nil {
				var ids []string
				for _, r := range state.GetStatus().GetResults() {
					ids = append(ids, r.GetCheckId())
				}
				t.Fatalf("%s not evaluated on the %s cluster; evaluated %v", onPremRings, tt.wantProvider, ids)
			}
			if res.GetResult() != tt.want || len(res.GetTargets()) != 2 || res.GetError() != "" {
				t.Errorf("%s: %v, want %s on both nodes", onPremRings, res, tt.want)
			}
		})
	}
}

// The facts a pass decodes are shared by all its checks: evaluating the
// whole catalog on them leaves them as they were decoded.
func TestEvaluationDoesNotModifySharedFacts(t *testing.T) {
	r := rules(t)
	state, _ := clusterWorld(t, r, kvmCluster, "kvm", 1)
	s := r.newStep(state, cluster, at(9), "test", "")
	p := s.newPass()
	s.evaluatePass(p)
	if len(s.next.GetStatus().GetResults()) < 5 {
		t.Fatalf("only %d checks evaluated: the test needs more facts", len(s.next.GetStatus().GetResults()))
	}
	var shared int
	for _, m := range p.members {
		for _, f := range m.facts {
			d, ok := p.decoded[f]
			if !ok {
				continue
			}
			shared++
			fresh, err := factValue(f)
			if err != nil || d.err != nil {
				t.Fatalf("%s: %v / %v", f.GetGatherer(), err, d.err)
			}
			if !reflect.DeepEqual(fresh, d.value) {
				t.Errorf("evaluation modified member fact %s", f.GetGatherer())
			}
		}
	}
	if shared == 0 || len(p.decoded) != shared {
		t.Errorf("%d facts decoded, %d of them the members'", len(p.decoded), shared)
	}
	// Every check reading the cluster discovery reads the one decoded value.
	if !slices.ContainsFunc(p.members[0].facts, func(f *fleetv1.Fact) bool {
		_, ok := p.decoded[f]
		return ok && f.GetGatherer() == DerivedGatherer(payload.HAClusterDiscovery)
	}) {
		t.Error("the cluster discovery was not decoded in the pass")
	}
}

// Once the second member's facts arrive every applicable check is evaluated
// once; the input's evaluations count them by result.
func TestEvaluationsCountedByResult(t *testing.T) {
	state, last := clusterWorld(t, rules(t), kvmCluster, "kvm", 1)
	want := map[string]int{}
	for _, r := range state.GetStatus().GetResults() {
		want[r.GetResult()]++
	}
	if len(want) < 2 || !maps.Equal(last.evaluations, want) {
		t.Errorf("evaluations %v, want %v (the results by result)", last.evaluations, want)
	}
}
