package payload

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

const haClusterFixtureDir = "../../testdata/fixtures/trento/"

// clusterFixture is the payload of a Trento ha_cluster_discovery fixture.
func clusterFixture(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(haClusterFixtureDir + path)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		DiscoveryType string          `json:"discovery_type"`
		Payload       json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if env.DiscoveryType != HAClusterDiscovery {
		t.Fatalf("%s is a %s", path, env.DiscoveryType)
	}
	return env.Payload
}

// Every cluster fixture decodes and validates: the "invalid" and
// "malformed" ones are real agent payloads a tolerant decoder accepts (an
// ASCS without its ERS is a cluster of unknown type; a clone of a group
// arrives with null resources).
func TestEveryClusterFixtureDecodes(t *testing.T) {
	paths, err := filepath.Glob(haClusterFixtureDir + "*/*ha_cluster_discovery*.json")
	if err != nil {
		t.Fatal(err)
	}
	scenarios, _ := filepath.Glob(haClusterFixtureDir + "scenarios/*/*ha_cluster_discovery*.json")
	paths = append(paths, scenarios...)
	if len(paths) < 40 {
		t.Fatalf("found %d cluster fixtures, want the 42 committed", len(paths))
	}
	for _, path := range paths {
		rel := strings.TrimPrefix(path, haClusterFixtureDir)
		raw := clusterFixture(t, rel)
		if err := Validate(HAClusterDiscovery, raw); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
		p, err := DecodeHACluster(raw)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if p == nil {
			if !strings.HasSuffix(rel, "unclustered.json") {
				t.Errorf("%s decoded to not clustered", rel)
			}
			continue
		}
		if d := p.Details(); (d == nil) != !p.HostOnline() {
			t.Errorf("%s: online %v but details %v", rel, p.HostOnline(), d)
		}
	}
}

func TestDecodeHAClusterErrors(t *testing.T) {
	for _, tt := range []struct {
		name, payload, field, says string
	}{
		{"no id", `{"Name":"c","Online":false}`, "Id", "Id (the cluster id) is required"},
		{"dc not a bool", `{"Id":"c1","DC":"yes","Online":false}`, "DC", "DC must be a JSON bool"},
		{"online without cib", `{"Id":"c1","Online":true,"Crmmon":{}}`, "Cib", "Cib is required when the host is online"},
		{"legacy online without crmmon", `{"Id":"c1","Cib":{}}`, "Crmmon", "Crmmon is required"},
		{"node online not a bool", `{"Id":"c1","Cib":{},"Crmmon":{"Nodes":[{"Name":"n1","Online":"true"}]}}`, "Crmmon.Nodes.Online", "must be a JSON bool"},
		{"sbd devices not a list", `{"Id":"c1","Online":false,"SBD":{"Devices":"x"}}`, "SBD.Devices", "must be a JSON slice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeHACluster([]byte(tt.payload))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field() != tt.field || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err %v, want a FieldError on %s saying %q", err, tt.field, tt.says)
			}
			if Validate(HAClusterDiscovery, []byte(tt.payload)) == nil {
				t.Error("Validate accepts it")
			}
		})
	}
	if _, err := DecodeHACluster([]byte(`[1,2]`)); err == nil {
		t.Error("a JSON array decodes")
	}
}

func TestDecodeHAClusterNotClustered(t *testing.T) {
	for _, raw := range []string{"null", " null\n"} {
		p, err := DecodeHACluster([]byte(raw))
		if p != nil || err != nil {
			t.Errorf("%q: %v, %v; want not clustered", raw, p, err)
		}
	}
}

func TestDecodeHAClusterOfflineHost(t *testing.T) {
	for _, tt := range []struct{ path, name string }{
		{"discovery/ha_cluster_discovery_host_offline.json", "ha_cluster"},
		{"discovery/ha_cluster_discovery_host_offline_unnamed.json", ""},
		{"scenarios/hana-cluster-details/9cd46919-5f19-59aa-993e-cf3736c71053_ha_cluster_discovery_offline.json", "hana_cluster_3"},
	} {
		p, err := DecodeHACluster(clusterFixture(t, tt.path))
		if err != nil {
			t.Fatal(err)
		}
		if p.HostOnline() || p.Name != tt.name || p.ID == "" || p.Details() != nil {
			t.Errorf("%s: %+v, want an offline member of %q without details", tt.path, p, tt.name)
		}
	}
	legacy, err := DecodeHACluster([]byte(`{"Id":"c1","Cib":{},"Crmmon":{}}`))
	if err != nil || !legacy.HostOnline() {
		t.Errorf("without Online: %v, %v; want online", legacy, err)
	}
}

// clusterWant is what the derivations must read from one fixture.
type clusterWant struct {
	path         string
	id, name     string
	dc           bool
	typ, arch    string
	hanaSIDs     []string
	sapSIDs      []string
	costOpt      bool
	maintenance  bool
	fencing      string
	nodes        []string
	dcNode       string // crm_mon's DC
	syncState    string
	srMode       string
	opMode       string
	primary      string
	secondary    string
	health       [3]string // replication, distribution, sbd
	nodeStatuses map[string]string
	hanaStatuses map[string]string
	roles        map[string][]string
	distributed  map[string]bool
}

const (
	hpass = HealthPassing
	hcrit = HealthCritical
	hunk  = HealthUnknown
)

var clusterWants = []clusterWant{
	{
		path: "discovery/ha_cluster_discovery_hana_scale_up.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "external/sbd",
		nodes: []string{"node01", "node02"}, dcNode: "node01", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hunk, hpass},
		hanaStatuses: map[string]string{"node01": "Primary", "node02": "Secondary"},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_up_maintenance.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "external/sbd", maintenance: true,
		nodes: []string{"node01", "node02"}, dcNode: "node01", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hunk, hpass},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_up_cost_opt.json", id: "81237d528fa520f993b5d6e1cd8e7138", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"HDQ"}, sapSIDs: []string{"QAS"}, costOpt: true, fencing: "external/sbd",
		nodes: []string{"node01", "node02"}, dcNode: "node02", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hunk, hpass},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_up_diskless_sbd.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: FencingDisklessSBD,
		nodes: []string{"node01", "node02"}, dcNode: "node01", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hunk, hunk},
	},
	{
		// node01, the primary, is offline: no secondary in sync.
		path: "discovery/ha_cluster_discovery_hana_scale_up_empty_nodes_history.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, sapSIDs: []string{"QAS"}, costOpt: true, fencing: "external/sbd",
		nodes: []string{"node01", "node02"}, syncState: "Unknown", srMode: "sync", opMode: "logreplay",
		primary: "Unknown", secondary: "Unknown", health: [3]string{hcrit, hunk, hpass},
		nodeStatuses: map[string]string{"node01": "Offline", "node02": "Online"},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_up_node_status.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "external/sbd",
		nodes: []string{"node01", "node02", "node03", "node04", "node05", "node06", "node07", "node08"}, dcNode: "node01",
		syncState: "SOK", srMode: "sync", opMode: "logreplay", primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hunk, hpass},
		nodeStatuses: map[string]string{
			"node01": "Offline", "node02": "Unclean", "node03": "Standby", "node04": "Maintenance",
			"node05": "Shutdown", "node06": "Pending", "node07": "Standby on fail", "node08": "Online",
		},
	},
	{
		path: "discovery/ha_cluster_discovery_unnamed.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "external/sbd",
		nodes: []string{"node01", "node02"}, dcNode: "node01", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hunk, hpass},
	},
	{
		path: "discovery/ha_cluster_discovery_aws.json", id: "60461ddbd879923a43e8a6aa5d6bd0a2", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "external/ec2",
		nodes: []string{"vmhana01", "vmhana02"}, syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "Site1", secondary: "Site2", health: [3]string{hpass, hunk, hunk},
	},
	{
		// vmhana01 failed after a takeover: SFAIL, landscape 1.
		path: "discovery/ha_cluster_discovery_gcp.json", id: "986ded1c87d1b24ec731b009adf679f4", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "fence_gce",
		nodes: []string{"vmhana01", "vmhana02"}, syncState: "SFAIL", srMode: "sync", opMode: "logreplay",
		primary: "Site2", secondary: "Site1", health: [3]string{hcrit, hunk, hunk},
		hanaStatuses: map[string]string{"vmhana01": "Failed", "vmhana02": "Primary"},
	},
	{
		path: "discovery/ha_cluster_discovery_angi_hana_scale_up.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureAngi, hanaSIDs: []string{"HN9"}, fencing: "external/sbd",
		nodes: []string{"vmhana01", "vmhana02"}, dcNode: "vmhana02", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "WDF", secondary: "ROT", health: [3]string{hpass, hunk, hpass},
		hanaStatuses: map[string]string{"vmhana01": "Primary", "vmhana02": "Secondary"},
	},
	{
		path: "discovery/ha_cluster_discovery_angi_hana_scale_up_failover.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureAngi, hanaSIDs: []string{"HN9"}, fencing: "external/sbd",
		nodes: []string{"vmhana01", "vmhana02"}, dcNode: "vmhana02", syncState: "SFAIL", srMode: "sync", opMode: "logreplay",
		primary: "ROT", secondary: "WDF", health: [3]string{hcrit, hunk, hpass},
		hanaStatuses: map[string]string{"vmhana01": "Failed", "vmhana02": "Primary"},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_out.json", id: "d0a0d4caff6a5f4cba70d47e9cd12889", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleOut, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "external/sbd",
		nodes: []string{"vmhana01", "vmhana02", "vmhana03", "vmhana04", "vmhana05", "vmhana06"}, dcNode: "vmhana01",
		syncState: "SOK", srMode: "syncmem", opMode: "delta_datashipping", primary: "Site1", secondary: "Site2", health: [3]string{hpass, hunk, hpass},
		hanaStatuses: map[string]string{"vmhana03": "Primary", "vmhana04": "Secondary"},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_out_maintenance.json", id: "d0a0d4caff6a5f4cba70d47e9cd12889", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaScaleOut, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "external/sbd", maintenance: true,
		nodes: []string{"vmhana01", "vmhana02", "vmhana03", "vmhana04", "vmhana05", "vmhana06"}, dcNode: "vmhana01",
		syncState: "SOK", srMode: "syncmem", opMode: "delta_datashipping", primary: "Site1", secondary: "Site2", health: [3]string{hpass, hunk, hpass},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_out_multitarget.json", id: "72624160ba9290ae3768c52d8ea485e3", name: "hana_cluster", dc: false,
		typ: ClusterTypeHanaScaleOut, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: "external/sbd",
		nodes: []string{"vmhana11", "vmhana12", "vmhana21", "vmhana22", "vmhanamm"}, dcNode: "vmhana11",
		syncState: "SOK", srMode: "sync", opMode: "logreplay", primary: "Site2", secondary: "Site1", health: [3]string{hpass, hunk, hpass},
		hanaStatuses: map[string]string{"vmhana11": "Secondary", "vmhana21": "Primary", "vmhanamm": "Unknown"},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_out_no_srhooks.json", id: "9379d9d590876eae02a63616181c5374", name: "hacluster", dc: true,
		typ: ClusterTypeHanaScaleOut, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, fencing: FencingDisklessSBD,
		nodes:     []string{"hana-s-mm", "hana-s1-db1", "hana-s1-db2", "hana-s2-db1", "hana-s2-db2"},
		syncState: "SOK", srMode: "sync", opMode: "logreplay", primary: "HANA_S1", secondary: "HANA_S2", health: [3]string{hpass, hunk, hunk},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_scale_out_with_majority_maker.json", id: "422417ce72a8f4d4e99d93c83610a257", name: "hacluster", dc: true,
		typ: ClusterTypeHanaScaleOut, arch: ArchitectureClassic, hanaSIDs: []string{"HN2"}, fencing: FencingDisklessSBD,
		nodes:     []string{"hana-s-mm", "hana-s1-db1", "hana-s1-db2", "hana-s2-db1", "hana-s2-db2"},
		syncState: "SOK", srMode: "sync", opMode: "logreplay", primary: "HANA_S1", secondary: "HANA_S2", health: [3]string{hpass, hunk, hunk},
	},
	{
		path: "discovery/ha_cluster_discovery_ascs_ers.json", id: "8bca366a6cb7816555538092a1ddd5aa", name: "netweaver_cluster", dc: false,
		typ: ClusterTypeAscsErs, sapSIDs: []string{"NWP"}, fencing: "external/sbd",
		nodes: []string{"vmnwprd01", "vmnwprd02"}, health: [3]string{hunk, hpass, hpass},
		roles: map[string][]string{"vmnwprd01": {"ascs"}, "vmnwprd02": {"ers"}}, distributed: map[string]bool{"NWP": true},
	},
	{
		// The ERS group is gone: no ASCS/ERS pair, so no known type.
		path: "discovery/ha_cluster_discovery_ascs_ers_invalid.json", id: "8bca366a6cb7816555538092a1ddd5aa", name: "netweaver_cluster", dc: false,
		typ: ClusterTypeUnknown, sapSIDs: []string{"NWP"}, fencing: "external/sbd",
		nodes: []string{"vmnwprd01", "vmnwprd02"}, health: [3]string{hunk, hunk, hpass},
	},
	{
		path: "discovery/ha_cluster_discovery_ascs_ers_maintenance.json", id: "8bca366a6cb7816555538092a1ddd5aa", name: "netweaver_cluster", dc: false,
		typ: ClusterTypeAscsErs, sapSIDs: []string{"NWP"}, fencing: "external/sbd", maintenance: true,
		nodes: []string{"vmnwprd01", "vmnwprd02"}, health: [3]string{hunk, hpass, hpass},
	},
	{
		path: "discovery/ha_cluster_discovery_ascs_ers_multi_sid.json", id: "8bca366a6cb7816555538092a1ddd5aa", name: "netweaver_cluster", dc: false,
		typ: ClusterTypeAscsErs, sapSIDs: []string{"NWD", "NWP"}, fencing: "external/sbd",
		nodes: []string{"vmnwprd01", "vmnwprd02"}, health: [3]string{hunk, hpass, hpass},
		roles: map[string][]string{"vmnwprd01": {"ascs", "ascs"}, "vmnwprd02": {"ers", "ers"}}, distributed: map[string]bool{"NWD": true, "NWP": true},
	},
	{
		path: "discovery/ha_cluster_discovery_ascs_ers_simple_mount.json", id: "8bca366a6cb7816555538092a1ddd5aa", name: "netweaver_cluster", dc: false,
		typ: ClusterTypeAscsErs, sapSIDs: []string{"NWP"}, fencing: "external/sbd",
		nodes: []string{"vmnwprd01", "vmnwprd02"}, health: [3]string{hunk, hpass, hpass}, distributed: map[string]bool{"NWP": true},
	},
	{
		path: "discovery/ha_cluster_discovery_ascs_ers_unmounted.json", id: "8bca366a6cb7816555538092a1ddd5aa", name: "netweaver_cluster", dc: false,
		typ: ClusterTypeAscsErs, sapSIDs: []string{"NWP"}, fencing: "external/sbd",
		nodes: []string{"vmnwprd01", "vmnwprd02"}, health: [3]string{hunk, hpass, hpass},
	},
	{
		path: "discovery/ha_cluster_discovery_hana_ascs_ers.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaAscsErs, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, sapSIDs: []string{"NWP"}, fencing: "external/sbd",
		nodes: []string{"node01", "node02"}, dcNode: "node01", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hpass, hpass},
		roles: map[string][]string{"node01": {"ascs"}, "node02": {"ers"}},
	},
	{
		path: "discovery/ha_cluster_discovery_legacy_no_online_field.json", id: "47d1190ffb4f781974c8356d7f863b03", name: "hana_cluster", dc: true,
		typ: ClusterTypeHanaAscsErs, arch: ArchitectureClassic, hanaSIDs: []string{"PRD"}, sapSIDs: []string{"NWP"}, fencing: "external/sbd",
		nodes: []string{"node01", "node02"}, dcNode: "node01", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hpass, hpass},
	},
	{
		path: "discovery/ha_cluster_discovery_malformed_resources_null.json", id: "d541b3029265844c4dd85d82afcd6dca", name: "hacluster", dc: false,
		typ: ClusterTypeHanaAscsErs, arch: ArchitectureClassic, hanaSIDs: []string{"BPH"}, sapSIDs: []string{"BPS"}, fencing: "external/sbd",
		nodes: []string{"node1", "node2"}, dcNode: "node1", syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "Site1", secondary: "SITE2", health: [3]string{hpass, hpass, hpass},
		roles: map[string][]string{"node1": {"ers"}, "node2": {"ascs"}}, distributed: map[string]bool{"BPS": true},
	},
	{
		path: "scenarios/hana-cluster-details/9cd46919-5f19-59aa-993e-cf3736c71053_ha_cluster_discovery_sbd_unhealthy.json", id: "9c832998801e28cd70ad77380e82a5c0", name: "hana_cluster_3", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"HDP"}, fencing: "external/sbd",
		nodes: []string{"vmhdbprd01", "vmhdbprd02"}, syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "NBG", secondary: "WDF", health: [3]string{hpass, hunk, hcrit},
	},
	{
		path: "scenarios/hana-cluster-details/4b67842f-ccf7-46a4-a344-9e918648b117_ha_cluster_discovery_angi_failover.json", id: "04dcf01eefda0e3b4cc897968150169e", name: "hana_angi", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureAngi, hanaSIDs: []string{"HN9"}, fencing: "external/sbd",
		nodes: []string{"vmangi01", "vmangi02"}, syncState: "SFAIL", srMode: "sync", opMode: "logreplay",
		primary: "ROT", secondary: "WDF", health: [3]string{hcrit, hunk, hpass},
	},
	{
		path: "scenarios/hana-scale-up-angi/851a4dd3-9693-44c3-a40b-b32d22872e74_ha_cluster_discovery.json", id: "04dcf01eefda0e3b4cc897968150169e", name: "hana_angi", dc: false,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureAngi, hanaSIDs: []string{"HN9"}, fencing: "external/sbd",
		nodes: []string{"vmangi01", "vmangi02"}, syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "WDF", secondary: "ROT", health: [3]string{hpass, hunk, hpass},
	},
	{
		path: "scenarios/hana-scale-up-cost-opt/2372b24f-3d7a-5d01-9b1a-a2c4c95c53d4_ha_cluster_discovery.json", id: "81237d528fa520f993b5d6e1cd8e7138", name: "hana_cost_opt", dc: true,
		typ: ClusterTypeHanaScaleUp, arch: ArchitectureClassic, hanaSIDs: []string{"HDC"}, sapSIDs: []string{"QAS"}, costOpt: true, fencing: "external/sbd",
		nodes: []string{"vmhdbcost01", "vmhdbcost02"}, syncState: "SOK", srMode: "sync", opMode: "logreplay",
		primary: "PRIMARY_SITE_NAME", secondary: "SECONDARY_SITE_NAME", health: [3]string{hpass, hunk, hpass},
	},
}

func TestClusterDerivations(t *testing.T) {
	for _, w := range clusterWants {
		t.Run(filepath.Base(w.path), func(t *testing.T) {
			pl, err := DecodeHACluster(clusterFixture(t, w.path))
			if err != nil {
				t.Fatal(err)
			}
			if pl.ID != w.id || pl.Name != w.name || pl.DC != w.dc {
				t.Errorf("id %q name %q dc %v, want %q %q %v", pl.ID, pl.Name, pl.DC, w.id, w.name, w.dc)
			}
			d := pl.Details()
			if d.GetType() != w.typ || d.GetArchitecture() != w.arch {
				t.Errorf("type %q architecture %q, want %q %q", d.GetType(), d.GetArchitecture(), w.typ, w.arch)
			}
			if !slices.Equal(d.GetHanaSids(), w.hanaSIDs) || !slices.Equal(d.GetSapInstanceSids(), w.sapSIDs) {
				t.Errorf("HANA SIDs %v SAP SIDs %v, want %v %v", d.GetHanaSids(), d.GetSapInstanceSids(), w.hanaSIDs, w.sapSIDs)
			}
			if d.GetCostOptimized() != w.costOpt || d.GetMaintenanceMode() != w.maintenance || d.GetFencingType() != w.fencing {
				t.Errorf("cost optimized %v maintenance %v fencing %q, want %v %v %q", d.GetCostOptimized(), d.GetMaintenanceMode(), d.GetFencingType(), w.costOpt, w.maintenance, w.fencing)
			}
			var names []string
			byName := map[string]*fleetv1.ClusterNode{}
			dcNode := ""
			for _, n := range d.GetNodes() {
				names = append(names, n.GetName())
				byName[n.GetName()] = n
				if n.GetDc() {
					dcNode = n.GetName()
				}
			}
			if !slices.Equal(names, w.nodes) {
				t.Errorf("nodes %v, want %v", names, w.nodes)
			}
			if w.dcNode != "" && dcNode != w.dcNode {
				t.Errorf("DC node %q, want %q", dcNode, w.dcNode)
			}
			sr := d.GetSystemReplication()
			if (sr != nil) != (w.syncState != "") {
				t.Fatalf("system replication %v, want sync state %q", sr, w.syncState)
			}
			if sr != nil && (sr.GetSecondarySyncState() != w.syncState || sr.GetMode() != w.srMode || sr.GetOperationMode() != w.opMode ||
				sr.GetPrimarySite() != w.primary || sr.GetSecondarySite() != w.secondary) {
				t.Errorf("replication %v, want %s %s/%s primary %s secondary %s", sr, w.syncState, w.srMode, w.opMode, w.primary, w.secondary)
			}
			h := DiscoveredHealth(d)
			if got := [3]string{h.GetReplication(), h.GetDistribution(), h.GetSbd()}; got != w.health {
				t.Errorf("health (replication, distribution, sbd) %v, want %v", got, w.health)
			}
			for node, want := range w.nodeStatuses {
				if got := byName[node].GetStatus(); got != want {
					t.Errorf("node %s status %q, want %q", node, got, want)
				}
			}
			for node, want := range w.hanaStatuses {
				if got := byName[node].GetHanaStatus(); got != want {
					t.Errorf("node %s HANA status %q, want %q", node, got, want)
				}
			}
			for node, want := range w.roles {
				if got := byName[node].GetRoles(); !slices.Equal(got, want) {
					t.Errorf("node %s roles %v, want %v", node, got, want)
				}
			}
			for _, s := range d.GetAscsErsSystems() {
				if want, ok := w.distributed[s.GetSid()]; ok && s.GetDistributed() != want {
					t.Errorf("%s distributed %v, want %v", s.GetSid(), s.GetDistributed(), want)
				}
			}
		})
	}
}

func TestClusterProvider(t *testing.T) {
	for provider, path := range map[string]string{
		"kvm":     "scenarios/hana-cluster-details/b767b3e9-e802-587e-a442-541d093b86b9_ha_cluster_discovery_kvm_provider.json",
		"nutanix": "scenarios/hana-cluster-details/b767b3e9-e802-587e-a442-541d093b86b9_ha_cluster_discovery_nutanix_provider.json",
		"vmware":  "scenarios/hana-cluster-details/b767b3e9-e802-587e-a442-541d093b86b9_ha_cluster_discovery_vmware_provider.json",
		"unknown": "scenarios/hana-cluster-details/b767b3e9-e802-587e-a442-541d093b86b9_ha_cluster_discovery_unknown_provider.json",
		"aws":     "discovery/ha_cluster_discovery_aws.json",
	} {
		pl, err := DecodeHACluster(clusterFixture(t, path))
		if err != nil {
			t.Fatal(err)
		}
		if got := pl.Details().GetProvider(); got != provider {
			t.Errorf("%s: provider %q, want %q", path, got, provider)
		}
	}
	// An empty provider is unknown, not "".
	pl, err := DecodeHACluster(clusterFixture(t, "discovery/ha_cluster_discovery_malformed_resources_null.json"))
	if err != nil || pl.Details().GetProvider() != "unknown" {
		t.Errorf("empty provider: %v %v", pl.Details().GetProvider(), err)
	}
}

// The controller state, CIB change time and counts come through.
func TestClusterDetailsSummary(t *testing.T) {
	pl, err := DecodeHACluster(clusterFixture(t, "scenarios/hana-cluster-details/b767b3e9-e802-587e-a442-541d093b86b9_ha_cluster_discovery_transition_engine.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := pl.Details()
	if d.GetState() != "S_TRANSITION_ENGINE" || d.GetHostsNumber() != 2 || d.GetResourcesNumber() == 0 || d.GetCibLastWritten() == "" {
		t.Errorf("state %q hosts %d resources %d cib %q", d.GetState(), d.GetHostsNumber(), d.GetResourcesNumber(), d.GetCibLastWritten())
	}
	up, err := DecodeHACluster(clusterFixture(t, "discovery/ha_cluster_discovery_hana_scale_up.json"))
	if err != nil {
		t.Fatal(err)
	}
	var stopped []string
	for _, r := range up.Details().GetStoppedResources() {
		stopped = append(stopped, r.GetId())
	}
	if !slices.Contains(stopped, "test-stop") || slices.Contains(stopped, "test") {
		t.Errorf("stopped resources %v, want test-stop and not test", stopped)
	}
	node01 := up.Details().GetNodes()[0]
	if node01.GetVirtualIp() != "192.168.123.200" || node01.GetAttributes()["hana_prd_sync_state"] != "PRIM" {
		t.Errorf("node01 ip %q attributes %v", node01.GetVirtualIp(), node01.GetAttributes())
	}
	var failCount int64 = -2
	for _, r := range node01.GetResources() {
		if r.GetId() == "rsc_ip_PRD_HDB00" {
			failCount = r.GetFailCount()
		}
	}
	if failCount != 2 {
		t.Errorf("rsc_ip_PRD_HDB00 fail count on node01 %d, want 2", failCount)
	}
}

func TestReplicationHealth(t *testing.T) {
	for _, tt := range []struct{ sync, lss, want string }{
		{"SOK", "4", HealthPassing},
		{"SOK", "2", HealthWarning},
		{"SOK", "1", HealthCritical},
		{"SWAIT", "4", HealthWarning},
		{"SFAIL", "4", HealthCritical},
		{"Unknown", "Unknown", HealthCritical},
	} {
		if got := replicationHealth(&fleetv1.SystemReplication{SecondarySyncState: tt.sync, SrHealthState: tt.lss}); got != tt.want {
			t.Errorf("%s/%s: %s, want %s", tt.sync, tt.lss, got, tt.want)
		}
	}
	if h := DiscoveredHealth(nil); h.GetReplication() != hunk || h.GetDistribution() != hunk || h.GetSbd() != hunk {
		t.Errorf("no details: %v", h)
	}
}
