package vsphere

import (
	"context"
	"fmt"
	"slices"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	"github.com/fleetstream/fleetstream/schemas/payload"
)

// Name is the provider's name: task types "vsphere.collect_all" and
// "vsphere.collect_kind", collection keys
// "vsphere:<instance uuid>:<datacenter>:<kind>".
const Name = "vsphere"

// Provider collects vCenter inventories.
type Provider struct {
	cfg Config
}

// New returns a vSphere provider.
func New(cfg Config) *Provider { return &Provider{cfg: cfg.withDefaults()} }

// Name returns "vsphere".
func (p *Provider) Name() string { return Name }

// Kinds lists the resource kinds.
func (p *Provider) Kinds() []collectors.Kind {
	ks := make([]collectors.Kind, len(kinds))
	for i, k := range kinds {
		ks[i] = k.Kind
	}
	return ks
}

// Open logs in to the vCenter and checks its instance UUID against the
// task's account.
func (p *Provider) Open(ctx context.Context, t collectors.Target) (collectors.Collector, error) {
	u, err := p.cfg.endpoint(t.Endpoint)
	if err != nil {
		return nil, tasks.Permanent(err)
	}
	if u.User == nil {
		return nil, tasks.Permanent(fmt.Errorf("no credentials for vCenter %s: set --vsphere-username and --vsphere-password", u.Redacted()))
	}
	c, err := govmomi.NewClient(ctx, u, p.cfg.Insecure)
	if err != nil {
		return nil, classify(fmt.Errorf("log in to vCenter %s: %w", u.Redacted(), err))
	}
	account := c.ServiceContent.About.InstanceUuid
	if t.Account != "" && t.Account != account {
		_ = c.Logout(ctx)
		return nil, tasks.Permanent(fmt.Errorf("vCenter %s has instance UUID %s, not %s: the task names another vCenter", u.Redacted(), account, t.Account))
	}
	return &collector{c: c, account: account, pageSize: int32(p.cfg.PageSize)}, nil
}

// collector reads one vCenter through one session.
type collector struct {
	c        *govmomi.Client
	account  string
	pageSize int32
}

func (c *collector) Account() string { return c.account }

// Regions lists the datacenter names.
func (c *collector) Regions(ctx context.Context) ([]string, error) {
	dcs, err := c.datacenters(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(dcs))
	for i, dc := range dcs {
		names[i] = dc.Name
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

func (c *collector) Collect(ctx context.Context, region, kind string) ([]payload.Resource, error) {
	i := slices.IndexFunc(kinds, func(k kindSpec) bool { return k.Name == kind })
	if i < 0 {
		return nil, tasks.Permanent(fmt.Errorf("vsphere collects no kind %q", kind))
	}
	if kinds[i].Global {
		rs, err := kinds[i].collect(ctx, c, types.ManagedObjectReference{})
		return rs, classify(err)
	}
	dc, err := c.datacenter(ctx, region)
	if err != nil {
		return nil, err
	}
	rs, err := kinds[i].collect(ctx, c, dc)
	return rs, classify(err)
}

// Close ends the session.
func (c *collector) Close(ctx context.Context) error { return c.c.Logout(ctx) }

// datacenter finds a datacenter by name.
func (c *collector) datacenter(ctx context.Context, name string) (types.ManagedObjectReference, error) {
	dcs, err := c.datacenters(ctx)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	var found []types.ManagedObjectReference
	for _, dc := range dcs {
		if dc.Name == name {
			found = append(found, dc.Self)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return types.ManagedObjectReference{}, tasks.Permanent(fmt.Errorf("vCenter %s has no datacenter %q", c.account, name))
	default:
		return types.ManagedObjectReference{}, tasks.Permanent(fmt.Errorf("vCenter %s has %d datacenters named %q: rename all but one to collect them", c.account, len(found), name))
	}
}

// classify marks errors that retrying cannot fix as tasks.Permanent:
// rejected credentials and missing privileges.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if fault.Is(err, &types.InvalidLogin{}) || fault.Is(err, &types.NoPermission{}) {
		return tasks.Permanent(err)
	}
	return err
}
