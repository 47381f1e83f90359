package vsphere_test

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/connectors/collectors/collectorstest"
	"github.com/fleetstream/fleetstream/connectors/collectors/vsphere"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// vcsim starts govmomi's vCenter simulator with two datacenters, each
// with a cluster of two hosts, a standalone host, VMs on both, two
// datastores and a distributed port group, and logins checked against
// user/password.
func vcsim(t *testing.T) (*simulator.Model, *url.URL) {
	t.Helper()
	m := simulator.VPX()
	m.Datacenter, m.Cluster, m.ClusterHost, m.Host, m.Machine, m.Datastore, m.Portgroup = 2, 1, 2, 1, 2, 2, 1
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Remove)
	m.Service.Listen = &url.URL{User: url.UserPassword("collector", "s3cret")}
	s := m.Service.NewServer()
	t.Cleanup(s.Close)
	u := *s.URL
	u.User = nil
	return m, &u
}

// inventory is the simulator's own view of one kind: what the collector
// must find, by datacenter name and id.
type inventory map[string]map[string]mo.Entity

func inventoryOf(m *simulator.Model, types ...string) inventory {
	reg := m.Map()
	inv := inventory{}
	for _, typ := range types {
		for _, e := range reg.All(typ) {
			dc := datacenterOf(reg, e)
			if inv[dc] == nil {
				inv[dc] = map[string]mo.Entity{}
			}
			inv[dc][e.Reference().Value] = e
		}
	}
	return inv
}

func datacenterOf(reg *simulator.Registry, e mo.Entity) string {
	for p := e.Entity().Parent; p != nil; {
		parent := reg.Get(*p).(mo.Entity)
		if p.Type == "Datacenter" {
			return parent.Entity().Name
		}
		p = parent.Entity().Parent
	}
	return ""
}

func ids(rs []payload.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

func links(r payload.Resource, rel string) []string {
	var out []string
	for _, l := range r.Links {
		if l.Relation == rel {
			out = append(out, l.ID)
		}
	}
	slices.Sort(out)
	return out
}

func TestCollectAllAgainstVcsim(t *testing.T) {
	m, u := vcsim(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p := vsphere.New(vsphere.Config{URL: u.String(), Username: "collector", Password: "s3cret", Insecure: true, PageSize: 2})
	reg, err := collectors.NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := collectorstest.Run(ctx, reg.Handlers(collectors.Options{}), vsphere.Name, collectors.CollectAll{})
	if err != nil {
		t.Fatal(err)
	}
	colls, err := out.Collections()
	if err != nil {
		t.Fatal(err)
	}
	uuid := m.ServiceContent.About.InstanceUuid
	// Five regional kinds in two datacenters, and the datacenters once.
	if len(out.Tasks) != 5*2+1 || len(colls) != 11 {
		t.Fatalf("%d tasks, %d collections %v; want 11 of each", len(out.Tasks), len(colls), slices.Sorted(maps.Keys(colls)))
	}
	get := func(region, kind string) []payload.Resource {
		t.Helper()
		key := "vsphere:" + uuid + ":" + region + ":" + kind
		c, ok := colls[key]
		if !ok {
			t.Fatalf("no collection %s in %v", key, slices.Sorted(maps.Keys(colls)))
		}
		if !c.Complete {
			t.Errorf("collection %s is not complete", key)
		}
		return c.All
	}

	dcs := inventoryOf(m, "Datacenter")
	var dcIDs []string
	dcByName := map[string]string{}
	for _, byID := range dcs {
		for id, e := range byID {
			dcIDs = append(dcIDs, id)
			dcByName[e.Entity().Name] = id
		}
	}
	slices.Sort(dcIDs)
	if got := ids(get(collectors.GlobalRegion, vsphere.KindDatacenter)); !slices.Equal(got, dcIDs) || len(got) != 2 {
		t.Errorf("datacenters %v, want %v", got, dcIDs)
	}

	vms := inventoryOf(m, "VirtualMachine")
	hosts := inventoryOf(m, "HostSystem")
	clusters := inventoryOf(m, "ClusterComputeResource")
	datastores := inventoryOf(m, "Datastore")
	networks := inventoryOf(m, "Network", "DistributedVirtualPortgroup")
	total := map[string]int{}
	for dc, dcID := range dcByName {
		check := func(kind string, want map[string]mo.Entity) map[string]payload.Resource {
			t.Helper()
			got := get(dc, kind)
			total[kind] += len(got)
			if !slices.Equal(ids(got), slices.Sorted(maps.Keys(want))) {
				t.Errorf("%s %s: got %v, want %v", dc, kind, ids(got), slices.Sorted(maps.Keys(want)))
			}
			byID := map[string]payload.Resource{}
			for _, r := range got {
				byID[r.ID] = r
				if w, ok := want[r.ID]; ok && r.Name != w.Entity().Name {
					t.Errorf("%s %s name %q, want %q", kind, r.ID, r.Name, w.Entity().Name)
				}
			}
			return byID
		}

		for id, r := range check(vsphere.KindVM, vms[dc]) {
			vm := vms[dc][id].(*simulator.VirtualMachine)
			if got, want := links(r, "runs_on_host"), []string{vm.Runtime.Host.Value}; !slices.Equal(got, want) {
				t.Errorf("vm %s runs_on_host %v, want %v", id, got, want)
			}
			if got, want := links(r, "uses_datastore"), refs(vm.Datastore); !slices.Equal(got, want) || len(want) == 0 {
				t.Errorf("vm %s uses_datastore %v, want %v", id, got, want)
			}
			if got, want := links(r, "on_network"), refs(vm.Network); !slices.Equal(got, want) || len(want) == 0 {
				t.Errorf("vm %s on_network %v, want %v", id, got, want)
			}
			if r.Attributes["bios_uuid"] != vm.Config.Uuid || r.Attributes["power_state"] != string(vm.Runtime.PowerState) {
				t.Errorf("vm %s attributes %v", id, r.Attributes)
			}
		}
		clustered := 0
		for id, r := range check(vsphere.KindHost, hosts[dc]) {
			h := hosts[dc][id].(*simulator.HostSystem)
			var want []string
			if h.Parent.Type == "ClusterComputeResource" {
				want = []string{h.Parent.Value}
				clustered++
			}
			if got := links(r, "in_cluster"); !slices.Equal(got, want) {
				t.Errorf("host %s in_cluster %v, want %v", id, got, want)
			}
			if got := links(r, "in_datacenter"); !slices.Equal(got, []string{dcID}) {
				t.Errorf("host %s in_datacenter %v, want %s", id, got, dcID)
			}
			if got, want := links(r, "uses_datastore"), refs(h.Datastore); !slices.Equal(got, want) {
				t.Errorf("host %s uses_datastore %v, want %v", id, got, want)
			}
		}
		if clustered != 2 {
			t.Errorf("%s: %d clustered hosts, want 2", dc, clustered)
		}
		for id, r := range check(vsphere.KindCluster, clusters[dc]) {
			if got := links(r, "in_datacenter"); !slices.Equal(got, []string{dcID}) {
				t.Errorf("cluster %s in_datacenter %v, want %s", id, got, dcID)
			}
			if r.Attributes["num_hosts"] != float64(2) {
				t.Errorf("cluster %s attributes %v, want num_hosts 2", id, r.Attributes)
			}
		}
		for id, r := range check(vsphere.KindDatastore, datastores[dc]) {
			if r.Attributes["capacity_bytes"] == nil || !slices.Equal(links(r, "in_datacenter"), []string{dcID}) {
				t.Errorf("datastore %s: %+v", id, r)
			}
		}
		for id, r := range check(vsphere.KindNetwork, networks[dc]) {
			if r.Attributes["type"] != networks[dc][id].Reference().Type {
				t.Errorf("network %s type %v, want %s", id, r.Attributes["type"], networks[dc][id].Reference().Type)
			}
		}
	}

	// The simulator's own counts agree: nothing missed, nothing twice.
	count := m.Count()
	for kind, want := range map[string]int{vsphere.KindVM: count.Machine, vsphere.KindHost: count.Host, vsphere.KindCluster: count.Cluster, vsphere.KindDatastore: count.Datastore} {
		if total[kind] != want {
			t.Errorf("%d %s resources in all datacenters, the simulator counts %d", total[kind], kind, want)
		}
	}
}

func refs(v []types.ManagedObjectReference) []string {
	out := make([]string, len(v))
	for i, r := range v {
		out[i] = r.Value
	}
	slices.Sort(out)
	return out
}

func TestVsphereTasksThatCannotSucceedArePermanent(t *testing.T) {
	_, u := vcsim(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(cfg vsphere.Config, payload any) error {
		reg, err := collectors.NewRegistry(vsphere.New(cfg))
		if err != nil {
			t.Fatal(err)
		}
		_, err = collectorstest.Run(ctx, reg.Handlers(collectors.Options{}), vsphere.Name, payload)
		return err
	}
	good := vsphere.Config{URL: u.String(), Username: "collector", Password: "s3cret", Insecure: true}
	bad := good
	bad.Password = "wrong"
	for _, tc := range []struct {
		name    string
		cfg     vsphere.Config
		payload collectors.CollectAll
		want    string
	}{
		{"wrong password", bad, collectors.CollectAll{}, "Login failure"},
		{"other vCenter", good, collectors.CollectAll{Account: "00000000-0000-0000-0000-000000000000"}, "the task names another vCenter"},
		{"unknown datacenter", good, collectors.CollectAll{Regions: []string{"DC9"}}, `no region "DC9"`},
		{"endpoint not allowed", good, collectors.CollectAll{Endpoint: "https://vcenter.invalid/sdk"}, "is not allowed"},
		{"no vCenter", vsphere.Config{}, collectors.CollectAll{}, "no vCenter configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.cfg, tc.payload)
			if !tasks.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (permanent %v), want a permanent error containing %q", err, tasks.IsPermanent(err), tc.want)
			}
		})
	}
}
