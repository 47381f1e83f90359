package sapsystem

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// NewView returns a goka view of the SAP system table, kept current by
// following the table's changelog. Run it, then read through a Reader.
func NewView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return systems.NewView(brokers, topics, opts...)
}

// Reader reads single SAP systems from a view of the SAP system table, for
// the API.
type Reader struct {
	view *goka.View
}

// NewReader reads from view, which must come from NewView.
func NewReader(view *goka.View) *Reader { return &Reader{view: view} }

// Get returns the SAP system with id, or (nil, nil) when no such system is
// registered: a pending one (instances held until its database, an
// ABAP/J2EE instance and a message server are known) is not. A
// deregistered one is returned, with deregistered set.
func (r *Reader) Get(id string) (*fleetv1.SapSystem, error) {
	v, err := r.view.Get(id)
	if err != nil {
		return nil, fmt.Errorf("read SAP system %s from the SAP system table: %w", id, err)
	}
	if v == nil {
		return nil, nil
	}
	s, ok := v.(*fleetv1.SapSystem)
	if !ok {
		return nil, fmt.Errorf("read SAP system %s: SAP system table holds %T, want *fleetv1.SapSystem", id, v)
	}
	if s.GetRegisteredAt() == nil {
		return nil, nil
	}
	return s, nil
}
