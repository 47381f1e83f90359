package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/fleetstream/fleetstream/connectors/agent/facts"
	"github.com/fleetstream/fleetstream/connectors/agent/sim"
	checkproc "github.com/fleetstream/fleetstream/processors/checks"
	"github.com/fleetstream/fleetstream/processors/checks/catalog"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

const (
	fixtureDir   = "../../testdata/fixtures/trento/discovery"
	machineRoot  = "../../connectors/agent/facts/testdata"
	fleetSeed    = "checks-bench"
	clusterNodes = 2
)

// clusterNamespace derives the clusters' ids from their index.
var clusterNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:fleetstream:bench:checks-cluster"))

// host is one simulated SLES for SAP machine, a node of a two-node cluster.
type host struct {
	id       string
	details  *fleetv1.HostDetails
	provider string // cloud_discovery's, lower case, as the processor's env has it
	cluster  int
	node     int // 0 or 1 within its cluster
	// discoveries by type: the payloads its agent sends.
	discoveries map[string]json.RawMessage
	// gathered: the facts its agent gathers for continuous evaluation.
	gathered []*fleetv1.GatheredFact
	decoded  map[string]any // discovery type -> payload, for engine targets
}

func (h *host) decode(typ string, raw []byte) any {
	if v, ok := h.decoded[typ]; ok {
		return v
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic(fmt.Sprintf("host %s: %s payload: %v", h.id, typ, err))
	}
	if h.decoded == nil {
		h.decoded = map[string]any{}
	}
	h.decoded[typ] = v
	return v
}

// cluster is a two-node Pacemaker cluster of the fleet.
type cluster struct {
	id, name, typ string
	// details: what the cluster aggregate derives from the designated
	// controller's discovery, in the cluster events' state.
	details *fleetv1.ClusterDetails
	fixture string
	members []int // host indexes
}

// fleet is the benchmark's world: hosts and clusters with their inputs, and
// the env the checks processor builds for each of them.
type fleet struct {
	cat      *catalog.Catalog
	hosts    []*host
	clusters []*cluster
}

// clusterFixtures are the two-node ha_cluster_discovery fixtures the
// clusters take, weighted towards healthy HANA scale-up and ASCS/ERS
// clusters; AWS and GCP clusters take their providers' own.
var clusterFixtures = []string{
	"ha_cluster_discovery_hana_scale_up.json",
	"ha_cluster_discovery_hana_scale_up.json",
	"ha_cluster_discovery_hana_scale_up.json",
	"ha_cluster_discovery_angi_hana_scale_up.json",
	"ha_cluster_discovery_ascs_ers.json",
	"ha_cluster_discovery_ascs_ers.json",
	"ha_cluster_discovery_hana_scale_up_cost_opt.json",
	"ha_cluster_discovery_hana_scale_up_diskless_sbd.json",
	"ha_cluster_discovery_ascs_ers_multi_sid.json",
	"ha_cluster_discovery_ascs_ers_simple_mount.json",
	"ha_cluster_discovery_hana_scale_up_maintenance.json",
	"ha_cluster_discovery_angi_hana_scale_up_failover.json",
	"ha_cluster_discovery_hana_ascs_ers.json",
	"ha_cluster_discovery_ascs_ers_maintenance.json",
}

var providerFixtures = map[string]string{
	"aws": "ha_cluster_discovery_aws.json",
	"gcp": "ha_cluster_discovery_gcp.json",
}

var fleets sync.Map // n -> *fleet

// fleetOf returns the fleet of n hosts (even), built once per process: the
// same seed gives the same fleet.
func fleetOf(n int) (*fleet, error) {
	if f, ok := fleets.Load(n); ok {
		return f.(*fleet), nil
	}
	f, err := newFleet(n)
	if err != nil {
		return nil, err
	}
	fleets.Store(n, f)
	return f, nil
}

func newFleet(n int) (*fleet, error) {
	if n <= 0 || n%clusterNodes != 0 {
		return nil, fmt.Errorf("fleet of %d hosts: give a positive multiple of %d (two-node clusters)", n, clusterNodes)
	}
	cat, err := catalog.Default()
	if err != nil {
		return nil, err
	}
	sf, err := sim.New(sim.Config{N: n, Seed: fleetSeed, DiscoveryTypes: sim.AgentDiscoveryTypes()})
	if err != nil {
		return nil, err
	}
	f := &fleet{cat: cat, hosts: make([]*host, n)}
	byProvider := map[string][]int{}
	for i := range n {
		h := &host{id: sf.AgentID(i), discoveries: map[string]json.RawMessage{}}
		for _, t := range sim.AgentDiscoveryTypes() {
			h.discoveries[t] = slices.Clone(sf.PayloadJSON(i, t))
		}
		if h.details, err = payload.DecodeHost(h.discoveries[payload.HostDiscovery]); err != nil {
			return nil, fmt.Errorf("simulated host %d: %w", i, err)
		}
		c, err := payload.DecodeCloud(h.discoveries[payload.CloudDiscovery])
		if err != nil {
			return nil, fmt.Errorf("simulated host %d: %w", i, err)
		}
		h.provider = strings.ToLower(c.Provider)
		f.hosts[i] = h
		byProvider[h.provider] = append(byProvider[h.provider], i)
	}
	// Both nodes of a cluster run on the same cloud (or hypervisor).
	var order []int
	for _, p := range slices.Sorted(maps.Keys(byProvider)) {
		order = append(order, byProvider[p]...)
	}
	fixtures := map[string]map[string]any{}
	for j := 0; j < n/clusterNodes; j++ {
		members := order[j*clusterNodes : (j+1)*clusterNodes]
		first := f.hosts[members[0]]
		file, ok := providerFixtures[first.provider]
		if !ok {
			file = clusterFixtures[j%len(clusterFixtures)]
		}
		if fixtures[file] == nil {
			if fixtures[file], err = fixturePayload(file); err != nil {
				return nil, err
			}
		}
		c := &cluster{id: uuid.NewSHA1(clusterNamespace, fmt.Appendf(nil, "%d", j)).String(), fixture: file, members: members}
		for node, hi := range members {
			h := f.hosts[hi]
			h.cluster, h.node = j, node
			p := deepCopy(fixtures[file]).(map[string]any)
			p["Id"] = c.id
			p["Name"] = fmt.Sprintf("%s_%04d", p["Name"], j)
			p["Provider"] = h.provider
			p["DC"] = node == 0
			raw, err := json.Marshal(p)
			if err != nil {
				return nil, err
			}
			h.discoveries[payload.HAClusterDiscovery] = raw
			if node == 0 {
				hc, err := payload.DecodeHACluster(raw)
				if err != nil {
					return nil, fmt.Errorf("cluster fixture %s: %w", file, err)
				}
				c.details = hc.Details()
				c.name, c.typ = hc.Name, c.details.GetType()
			}
		}
		sapFile := "sap_system_discovery_database.json"
		if strings.HasPrefix(c.typ, "ascs") {
			sapFile = "sap_system_discovery_application.json"
		}
		sap, err := fixtureRaw(sapFile)
		if err != nil {
			return nil, err
		}
		for _, hi := range members {
			f.hosts[hi].discoveries[payload.SAPSystemDiscovery] = sap
		}
		f.clusters = append(f.clusters, c)
	}
	if err := f.gather(); err != nil {
		return nil, err
	}
	return f, nil
}

func fixtureRaw(name string) (json.RawMessage, error) {
	raw, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		return nil, fmt.Errorf("read fixture: %w", err)
	}
	var doc struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode fixture %s: %w", name, err)
	}
	return doc.Payload, nil
}

func fixturePayload(name string) (map[string]any, error) {
	raw, err := fixtureRaw(name)
	if err != nil {
		return nil, err
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decode fixture %s: %w", name, err)
	}
	return p, nil
}

// deepCopy copies a JSON-like value through JSON, as facts travel.
func deepCopy(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(err)
	}
	return out
}

// tools are the machine's command-line tools as shell scripts printing what
// the real ones print on a SLES 15 SP5 HANA node, so that the real
// gatherers run their own parsing.
func tools(testdata string) map[string]string {
	return map[string]string{
		"systemctl": `for a; do unit=$a; done
case "$unit" in
sapconf*|tuned*) printf 'LoadState=loaded\nActiveState=inactive\nUnitFileState=disabled\n' ;;
nonexistent*) printf 'LoadState=not-found\nActiveState=inactive\nUnitFileState=\n' ;;
*) printf 'LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n' ;;
esac`,
		"rpm": `for a; do last=$a; done
case "$last" in
pacemaker) echo 2.1.5+20221208.a3f44794f-150500.6.5.3 ;;
corosync) echo 2.4.6-150300.12.7.1 ;;
sbd) echo 1.5.2+20230120.c5bb6ba-150500.1.3 ;;
SAPHanaSR) echo 0.162.1-150500.1.1 ;;
SAPHanaSR-angi) echo 1.2.5-150600.3.6.1 ;;
resource-agents) echo 4.12.0+git30.7d1ac6e3-150500.3.3.1 ;;
fence-agents) echo 4.12.1+git.1677142927.bf55c675-150500.4.6.1 ;;
kernel-default) echo 5.14.21-150500.55.31.1 ;;
saptune) echo 3.1.0-150500.1.1 ;;
sapconf) echo 5.0.5-150000.3.3.1 ;;
python3) echo 3.6.15-150300.10.51.1 ;;
supportutils-plugin-ha-sap) echo 0.0.5+git.1704892342.8b05fa3-150000.3.3.1 ;;
sap-suse-cluster-connector) echo 3.1.2-150300.8.3.1 ;;
cloud-netconfig-azure|cloud-netconfig-ec2|cloud-netconfig-gce) echo 1.9-150000.25.17.1 ;;
*) echo "package $last is not installed"; exit 1 ;;
esac`,
		"saptune":  `cat ` + filepath.Join(testdata, "saptune-status.json") + `; exit 4`,
		"cibadmin": `cat ` + filepath.Join(testdata, "cib.xml"),
	}
}

// gather runs the agent's gatherers (connectors/agent/facts) on its testdata
// machine for every fact of the catalog's checks, as a cluster node's agent
// gathers them for continuous evaluation, with arguments naming the env
// resolved as the processor resolves them; then varies the values per host.
func (f *fleet) gather() error {
	testdata, err := filepath.Abs(machineRoot)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "checks-bench-tools")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for name, body := range tools(testdata) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			return err
		}
	}
	reg := facts.NewRegistry(facts.Config{Root: filepath.Join(testdata, "root"), Path: []string{dir}})
	names := reg.Names()
	type key struct{ gatherer, argument string }
	base := map[key]any{}
	baseErr := map[key]string{}
	for _, h := range f.hosts {
		env := f.hostEnv(h)
		var seen []key
		for _, c := range f.cat.Checks() {
			for _, cf := range c.Facts {
				if checkproc.IsDerived(cf.Gatherer) || !slices.Contains(names, cf.Gatherer) {
					continue
				}
				arg, err := cf.ResolveArgument(env)
				if err != nil {
					continue // the processor records the check's error itself
				}
				k := key{cf.Gatherer, arg}
				if slices.Contains(seen, k) {
					continue
				}
				seen = append(seen, k)
				if _, ok := base[k]; !ok {
					if _, bad := baseErr[k]; !bad {
						v, err := reg.Gather(context.Background(), k.gatherer, k.argument)
						if err != nil {
							baseErr[k] = err.Error()
						} else {
							base[k] = v
						}
					}
				}
				g := &fleetv1.GatheredFact{Gatherer: k.gatherer, Argument: k.argument, Error: baseErr[k]}
				if g.Error == "" {
					v := f.vary(h, k.gatherer, k.argument, deepCopy(base[k]))
					if g.Value, err = structpb.NewValue(v); err != nil {
						return fmt.Errorf("%s(%s): %w", k.gatherer, k.argument, err)
					}
				}
				h.gathered = append(h.gathered, g)
			}
		}
	}
	return nil
}

// vary makes a gathered value this host's: its cluster's corosync nodelist
// and the token its platform's guides give (a few clusters drift from
// them), a swappiness left at the default on some hosts.
func (f *fleet) vary(h *host, gatherer, argument string, v any) any {
	c := f.clusters[h.cluster]
	switch gatherer {
	case "corosync.conf@v1":
		conf, ok := v.(map[string]any)
		if !ok {
			return v
		}
		token, consensus := "5000", "6000"
		switch h.provider {
		case "azure", "aws":
			token, consensus = "30000", "36000"
		case "gcp":
			token, consensus = "20000", "24000"
		}
		if h.cluster%25 == 7 {
			consensus = token // drift: consensus not 1.2 × token
		}
		if totem, ok := conf["totem"].(map[string]any); ok {
			totem["token"], totem["consensus"] = token, consensus
		}
		if nl, ok := conf["nodelist"].(map[string]any); ok {
			var nodes []any
			for i, hi := range c.members {
				m := f.hosts[hi]
				n := map[string]any{"nodeid": fmt.Sprint(i + 1), "ring0_addr": firstOr(m.details.GetIpAddresses(), "10.0.0.1")}
				if h.provider != "azure" && h.provider != "aws" && h.provider != "gcp" && h.cluster%10 != 3 {
					n["ring1_addr"] = fmt.Sprintf("192.168.%d.%d", h.cluster%250, i+1)
				}
				nodes = append(nodes, n)
			}
			nl["node"] = nodes
		}
	case "sysctl@v1":
		if argument == "vm.swappiness" && (h.cluster+h.node)%8 == 5 {
			return "60"
		}
	}
	return v
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// hostEnv is the env the processor builds for a host: its host events'
// details, its cloud_discovery's provider, its cluster membership.
func (f *fleet) hostEnv(h *host) map[string]any {
	c := f.clusters[h.cluster]
	env := map[string]any{
		checkproc.EnvTargetType: checkproc.TargetHost, checkproc.EnvProvider: h.provider,
		checkproc.EnvClusterID: c.id, checkproc.EnvClusterType: c.typ,
	}
	for k, v := range map[string]string{
		checkproc.EnvHostname: h.details.GetHostname(), checkproc.EnvArch: h.details.GetArch(),
		checkproc.EnvOSName: h.details.GetOsName(), checkproc.EnvOSVersion: h.details.GetOsVersion(),
	} {
		if v != "" {
			env[k] = v
		}
	}
	return env
}

// clusterEnv is the env the processor builds for a cluster: its cluster
// events' type, name and provider (lower case, none when "unknown").
func (f *fleet) clusterEnv(c *cluster) map[string]any {
	env := map[string]any{checkproc.EnvTargetType: checkproc.TargetCluster, checkproc.EnvClusterID: c.id, checkproc.EnvClusterType: c.typ}
	if c.name != "" {
		env[checkproc.EnvClusterName] = c.name
	}
	if p := strings.ToLower(c.details.GetProvider()); p != "" && p != payload.CloudUnknown {
		env[checkproc.EnvProvider] = p
	}
	return env
}

// target is one engine target of check ch on host h with env, as the
// processor builds it from its stored facts; false when a fact of the
// check is not known (the processor then does not evaluate the check).
//
// With withFacts the target carries the facts' values, decoded once per
// host and shared by every check (the engine does not modify them); without
// it only readiness and fact errors are worked out.
func (f *fleet) target(ch *catalog.Check, h *host, env map[string]any, withFacts bool) (catalog.Target, bool) {
	t := catalog.Target{ID: h.id, Env: env, Facts: map[string]any{}, FactErrors: map[string]string{}}
	for _, cf := range ch.Facts {
		arg, err := cf.ResolveArgument(env)
		if err != nil {
			t.FactErrors[cf.Name] = err.Error()
			continue
		}
		if typ, ok := derivedType(cf.Gatherer); ok && arg == "" {
			raw, ok := h.discoveries[typ]
			if !ok {
				return t, false
			}
			if withFacts {
				t.Facts[cf.Name] = h.decode(typ, raw)
			}
			continue
		}
		i := slices.IndexFunc(h.gathered, func(g *fleetv1.GatheredFact) bool {
			return g.GetGatherer() == cf.Gatherer && g.GetArgument() == arg
		})
		if i < 0 {
			return t, false
		}
		if g := h.gathered[i]; g.GetError() != "" {
			t.FactErrors[cf.Name] = g.GetError()
		} else if withFacts {
			t.Facts[cf.Name] = g.GetValue().AsInterface()
		}
	}
	return t, true
}

func derivedType(gatherer string) (string, bool) {
	for _, t := range []string{payload.HostDiscovery, payload.HAClusterDiscovery, payload.SaptuneDiscovery,
		payload.CloudDiscovery, payload.SubscriptionDiscovery, payload.SAPSystemDiscovery} {
		if checkproc.DerivedGatherer(t) == gatherer {
			return t, true
		}
	}
	return "", false
}

// evaluation is one check to evaluate on its targets: a host check on one
// host, a cluster check on every node of a cluster.
type evaluation struct {
	check   *catalog.Check
	targets []catalog.Target
}

// applicable are the catalog's checks of targetType that apply to env.
func (f *fleet) applicable(targetType string, env map[string]any) ([]*catalog.Check, error) {
	var out []*catalog.Check
	for _, ch := range f.cat.Checks() {
		if ch.TargetType() != targetType {
			continue
		}
		ok, err := ch.Applies(env)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, ch)
		}
	}
	return out, nil
}

// evaluations are the checks the processor evaluates on host h (the
// catalog's host checks that apply to its env and whose facts it has).
func (f *fleet) hostEvaluations(h *host, withFacts bool) ([]evaluation, error) {
	env := f.hostEnv(h)
	checks, err := f.applicable(checkproc.TargetHost, env)
	if err != nil {
		return nil, err
	}
	var out []evaluation
	for _, ch := range checks {
		if t, ready := f.target(ch, h, env, withFacts); ready {
			out = append(out, evaluation{ch, []catalog.Target{t}})
		}
	}
	return out, nil
}

// clusterEvaluations are the checks the processor evaluates on cluster c,
// over every node with the node's env under the cluster's.
func (f *fleet) clusterEvaluations(c *cluster, withFacts bool) ([]evaluation, error) {
	env := f.clusterEnv(c)
	checks, err := f.applicable(checkproc.TargetCluster, env)
	if err != nil {
		return nil, err
	}
	var out []evaluation
	for _, ch := range checks {
		var targets []catalog.Target
		ready := true
		for _, hi := range c.members {
			h := f.hosts[hi]
			menv := f.hostEnv(h)
			for k, v := range env {
				menv[k] = v
			}
			t, ok := f.target(ch, h, menv, withFacts)
			ready = ready && ok
			targets = append(targets, t)
		}
		if ready {
			out = append(out, evaluation{ch, targets})
		}
	}
	return out, nil
}
