package vsphere

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// retrieve reads props of every object of a managed object type under
// container (recursively) into dst, a pointer to a slice of mo types or of
// types.ObjectContent, through one container view and the property
// collector in pages of pageSize objects.
func (c *collector) retrieve(ctx context.Context, container types.ManagedObjectReference, kind string, props []string, dst any) error {
	v, err := view.NewManager(c.c.Client).CreateContainerView(ctx, container, []string{kind}, true)
	if err != nil {
		return fmt.Errorf("create a %s view: %w", kind, err)
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()

	req := types.RetrieveProperties{SpecSet: []types.PropertyFilterSpec{{
		ObjectSet: []types.ObjectSpec{{
			Obj:       v.Reference(),
			Skip:      types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: v.Reference().Type, Path: "view"}},
		}},
		PropSet: []types.PropertySpec{{Type: kind, PathSet: props}},
	}}}
	// RetrieveProperties follows the continuation tokens of the pages.
	res, err := property.DefaultCollector(c.c.Client).RetrieveProperties(ctx, req, c.pageSize)
	if err != nil {
		return fmt.Errorf("retrieve %s properties: %w", kind, err)
	}
	if d, ok := dst.(*[]types.ObjectContent); ok {
		*d = res.Returnval
		return nil
	}
	if err := mo.LoadObjectContent(res.Returnval, dst); err != nil {
		return fmt.Errorf("decode %s properties: %w", kind, err)
	}
	return nil
}

func (c *collector) datacenters(ctx context.Context) ([]mo.Datacenter, error) {
	var dcs []mo.Datacenter
	if err := c.retrieve(ctx, c.c.ServiceContent.RootFolder, "Datacenter", []string{"name"}, &dcs); err != nil {
		return nil, err
	}
	return dcs, nil
}
