package cloudresource

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// NewView returns a goka view of the resource table: every resource ever
// discovered, tombstones included, kept current by following the table's
// changelog. Run it, then read through a Reader.
func NewView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return resources.NewView(brokers, topics, opts...)
}

// Reader reads single resources from a view of the resource table.
type Reader struct {
	view *goka.View
}

// NewReader reads from view, which must come from NewView.
func NewReader(view *goka.View) *Reader { return &Reader{view: view} }

// Get returns the resource with key id, or (nil, nil) when no such
// resource was ever discovered.
func (r *Reader) Get(id string) (*fleetv1.CloudResource, error) {
	v, err := r.view.Get(id)
	if err != nil {
		return nil, fmt.Errorf("read resource %s from the cloud_resource table: %w", id, err)
	}
	if v == nil {
		return nil, nil
	}
	res, ok := v.(*fleetv1.CloudResource)
	if !ok {
		return nil, fmt.Errorf("read resource %s: cloud_resource table holds %T, want *fleetv1.CloudResource", id, v)
	}
	return res, nil
}

// Recovered reports whether the view has caught up with the table.
func (r *Reader) Recovered() bool { return r.view.Recovered() }
