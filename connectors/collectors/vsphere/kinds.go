package vsphere

import (
	"context"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Resource kinds, as published.
const (
	KindDatacenter = "datacenter"
	KindCluster    = "cluster"
	KindHost       = "host"
	KindVM         = "vm"
	KindDatastore  = "datastore"
	KindNetwork    = "network"
)

// Link relations, from the linking resource's side.
const (
	RelRunsOnHost    = "runs_on_host"
	RelUsesDatastore = "uses_datastore"
	RelOnNetwork     = "on_network"
	RelInCluster     = "in_cluster"
	RelInDatacenter  = "in_datacenter"
)

// kindSpec is a kind and how it is collected; dc is the datacenter of a
// regional kind.
type kindSpec struct {
	collectors.Kind
	collect func(ctx context.Context, c *collector, dc types.ManagedObjectReference) ([]payload.Resource, error)
}

// kinds is the provider's feature list: one row per kind.
var kinds = []kindSpec{
	{collectors.Kind{Name: KindCluster}, collectClusters},
	{collectors.Kind{Name: KindHost}, collectHosts},
	{collectors.Kind{Name: KindVM}, collectVMs},
	{collectors.Kind{Name: KindDatastore}, collectDatastores},
	{collectors.Kind{Name: KindNetwork}, collectNetworks},
	{collectors.Kind{Name: KindDatacenter, Global: true}, collectDatacenters},
}

func collectDatacenters(ctx context.Context, c *collector, _ types.ManagedObjectReference) ([]payload.Resource, error) {
	dcs, err := c.datacenters(ctx)
	if err != nil {
		return nil, err
	}
	rs := make([]payload.Resource, len(dcs))
	for i, dc := range dcs {
		rs[i] = payload.Resource{ID: dc.Self.Value, Name: dc.Name}
	}
	return rs, nil
}

func collectClusters(ctx context.Context, c *collector, dc types.ManagedObjectReference) ([]payload.Resource, error) {
	var cs []mo.ClusterComputeResource
	if err := c.retrieve(ctx, dc, "ClusterComputeResource", []string{"name", "summary", "configurationEx"}, &cs); err != nil {
		return nil, err
	}
	rs := make([]payload.Resource, len(cs))
	for i, cl := range cs {
		a := map[string]any{}
		if s := cl.Summary; s != nil {
			sum := s.GetComputeResourceSummary()
			a["num_hosts"] = sum.NumHosts
			a["num_effective_hosts"] = sum.NumEffectiveHosts
			a["total_cpu_mhz"] = sum.TotalCpu
			a["total_memory_bytes"] = sum.TotalMemory
			a["num_cpu_cores"] = sum.NumCpuCores
			a["overall_status"] = string(sum.OverallStatus)
		}
		if cfg, ok := cl.ConfigurationEx.(*types.ClusterConfigInfoEx); ok {
			if cfg.DrsConfig.Enabled != nil {
				a["drs_enabled"] = *cfg.DrsConfig.Enabled
			}
			if cfg.DasConfig.Enabled != nil {
				a["ha_enabled"] = *cfg.DasConfig.Enabled
			}
		}
		rs[i] = payload.Resource{ID: cl.Self.Value, Name: cl.Name, Attributes: a,
			Links: collectors.AppendLink(nil, RelInDatacenter, KindDatacenter, dc.Value)}
	}
	return rs, nil
}

func collectHosts(ctx context.Context, c *collector, dc types.ManagedObjectReference) ([]payload.Resource, error) {
	var hs []mo.HostSystem
	props := []string{"name", "parent", "summary.hardware", "summary.config.product", "runtime.connectionState", "runtime.powerState", "runtime.inMaintenanceMode", "datastore"}
	if err := c.retrieve(ctx, dc, "HostSystem", props, &hs); err != nil {
		return nil, err
	}
	rs := make([]payload.Resource, len(hs))
	for i, h := range hs {
		a := map[string]any{
			"connection_state":    string(h.Runtime.ConnectionState),
			"power_state":         string(h.Runtime.PowerState),
			"in_maintenance_mode": h.Runtime.InMaintenanceMode,
		}
		if hw := h.Summary.Hardware; hw != nil {
			a["vendor"], a["model"], a["uuid"] = hw.Vendor, hw.Model, hw.Uuid
			a["cpu_model"], a["cpu_mhz"] = hw.CpuModel, hw.CpuMhz
			a["num_cpu_pkgs"], a["num_cpu_cores"], a["num_cpu_threads"] = hw.NumCpuPkgs, hw.NumCpuCores, hw.NumCpuThreads
			a["memory_bytes"] = hw.MemorySize
		}
		if p := h.Summary.Config.Product; p != nil {
			a["product"], a["version"], a["build"] = p.FullName, p.Version, p.Build
		}
		links := collectors.AppendLink(nil, RelInDatacenter, KindDatacenter, dc.Value)
		// A clustered host's parent is its cluster; a standalone host's is
		// a ComputeResource of its own.
		if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
			links = collectors.AppendLink(links, RelInCluster, KindCluster, h.Parent.Value)
		}
		for _, ds := range h.Datastore {
			links = collectors.AppendLink(links, RelUsesDatastore, KindDatastore, ds.Value)
		}
		rs[i] = payload.Resource{ID: h.Self.Value, Name: h.Name, Attributes: a, Links: links}
	}
	return rs, nil
}

func collectVMs(ctx context.Context, c *collector, dc types.ManagedObjectReference) ([]payload.Resource, error) {
	var vms []mo.VirtualMachine
	props := []string{
		"name", "config.uuid", "config.instanceUuid", "config.guestId", "config.guestFullName", "config.template",
		"config.hardware.numCPU", "config.hardware.memoryMB", "runtime.powerState", "runtime.host",
		"guest.ipAddress", "guest.hostName", "datastore", "network",
	}
	if err := c.retrieve(ctx, dc, "VirtualMachine", props, &vms); err != nil {
		return nil, err
	}
	rs := make([]payload.Resource, len(vms))
	for i, vm := range vms {
		a := map[string]any{"power_state": string(vm.Runtime.PowerState)}
		if cfg := vm.Config; cfg != nil {
			// The BIOS UUID is what an agent inside the VM reports as its
			// machine's: the key for linking the VM to the agent's host.
			a["bios_uuid"], a["instance_uuid"] = cfg.Uuid, cfg.InstanceUuid
			a["guest_id"], a["guest_full_name"], a["template"] = cfg.GuestId, cfg.GuestFullName, cfg.Template
			a["num_cpu"], a["memory_mb"] = cfg.Hardware.NumCPU, cfg.Hardware.MemoryMB
		}
		if g := vm.Guest; g != nil {
			putString(a, "ip_address", g.IpAddress)
			putString(a, "guest_hostname", g.HostName)
		}
		var links []payload.ResourceLink
		if h := vm.Runtime.Host; h != nil {
			links = collectors.AppendLink(links, RelRunsOnHost, KindHost, h.Value)
		}
		for _, ds := range vm.Datastore {
			links = collectors.AppendLink(links, RelUsesDatastore, KindDatastore, ds.Value)
		}
		for _, n := range vm.Network {
			links = collectors.AppendLink(links, RelOnNetwork, KindNetwork, n.Value)
		}
		rs[i] = payload.Resource{ID: vm.Self.Value, Name: vm.Name, Attributes: a, Links: links}
	}
	return rs, nil
}

func collectDatastores(ctx context.Context, c *collector, dc types.ManagedObjectReference) ([]payload.Resource, error) {
	var dss []mo.Datastore
	if err := c.retrieve(ctx, dc, "Datastore", []string{"name", "summary"}, &dss); err != nil {
		return nil, err
	}
	rs := make([]payload.Resource, len(dss))
	for i, ds := range dss {
		s := ds.Summary
		a := map[string]any{
			"type": s.Type, "url": s.Url, "capacity_bytes": s.Capacity, "free_bytes": s.FreeSpace,
			"accessible": s.Accessible,
		}
		putString(a, "maintenance_mode", s.MaintenanceMode)
		rs[i] = payload.Resource{ID: ds.Self.Value, Name: ds.Name, Attributes: a,
			Links: collectors.AppendLink(nil, RelInDatacenter, KindDatacenter, dc.Value)}
	}
	return rs, nil
}

// collectNetworks reads standard networks and distributed port groups
// (both are Networks) as plain property sets: their Go types differ.
func collectNetworks(ctx context.Context, c *collector, dc types.ManagedObjectReference) ([]payload.Resource, error) {
	var ocs []types.ObjectContent
	if err := c.retrieve(ctx, dc, "Network", []string{"name"}, &ocs); err != nil {
		return nil, err
	}
	rs := make([]payload.Resource, len(ocs))
	for i, oc := range ocs {
		var name string
		for _, p := range oc.PropSet {
			if p.Name == "name" {
				name, _ = p.Val.(string)
			}
		}
		rs[i] = payload.Resource{ID: oc.Obj.Value, Name: name, Attributes: map[string]any{"type": oc.Obj.Type},
			Links: collectors.AppendLink(nil, RelInDatacenter, KindDatacenter, dc.Value)}
	}
	return rs, nil
}

func putString(a map[string]any, key, v string) {
	if v != "" {
		a[key] = v
	}
}
