package database

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// NewView returns a goka view of the database table, kept current by
// following the table's changelog. Run it, then read through a Reader.
func NewView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return databases.NewView(brokers, topics, opts...)
}

// Reader reads single databases from a view of the database table, for
// the API.
type Reader struct {
	view *goka.View
}

// NewReader reads from view, which must come from NewView.
func NewReader(view *goka.View) *Reader { return &Reader{view: view} }

// Get returns the database with id, or (nil, nil) when no such database is
// registered: a pending one (secondary instances waiting for a primary)
// is not. A deregistered one is returned, with deregistered set.
func (r *Reader) Get(id string) (*fleetv1.Database, error) {
	v, err := r.view.Get(id)
	if err != nil {
		return nil, fmt.Errorf("read database %s from the database table: %w", id, err)
	}
	if v == nil {
		return nil, nil
	}
	d, ok := v.(*fleetv1.Database)
	if !ok {
		return nil, fmt.Errorf("read database %s: database table holds %T, want *fleetv1.Database", id, v)
	}
	if d.GetRegisteredAt() == nil {
		return nil, nil
	}
	return d, nil
}
