package cluster

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// NewView returns a goka view of the cluster table: every cluster, kept
// current by following the table's changelog. Run it, then read through a
// Reader.
func NewView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return clusters.NewView(brokers, topics, opts...)
}

// Reader reads single clusters from a view of the cluster table, for the
// API.
type Reader struct {
	view *goka.View
}

// NewReader reads from view, which must come from NewView.
func NewReader(view *goka.View) *Reader { return &Reader{view: view} }

// Recovered reports whether the view caught up with the table; before,
// a missing cluster may only be not read yet.
func (r *Reader) Recovered() bool { return r.view.Recovered() }

// Get returns the cluster with id, or (nil, nil) when no such cluster was
// ever registered. A tombstoned cluster is returned with deregistered set.
func (r *Reader) Get(id string) (*fleetv1.Cluster, error) {
	v, err := r.view.Get(id)
	if err != nil {
		return nil, fmt.Errorf("read cluster %s from the cluster table: %w", id, err)
	}
	if v == nil {
		return nil, nil
	}
	c, ok := v.(*fleetv1.Cluster)
	if !ok {
		return nil, fmt.Errorf("read cluster %s: cluster table holds %T, want *fleetv1.Cluster", id, v)
	}
	return c, nil
}
