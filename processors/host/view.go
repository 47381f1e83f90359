package host

import (
	"fmt"

	"github.com/lovoo/goka"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// NewView returns a goka view of the host table: every host, kept current
// by following the table's changelog. Run it, then read through a Reader.
// The table's name derives from the host group in topics' namespace.
func NewView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return hosts.NewView(brokers, topics, opts...)
}

// Reader reads single hosts from a view of the host table, for the API.
type Reader struct {
	view *goka.View
}

// NewReader reads from view, which must come from NewView.
func NewReader(view *goka.View) *Reader { return &Reader{view: view} }

// Get returns the host with id, or (nil, nil) when no such host is
// registered.
func (r *Reader) Get(id string) (*fleetv1.Host, error) {
	v, err := r.view.Get(id)
	if err != nil {
		return nil, fmt.Errorf("read host %s from the host table: %w", id, err)
	}
	if v == nil {
		return nil, nil
	}
	h, ok := v.(*fleetv1.Host)
	if !ok {
		return nil, fmt.Errorf("read host %s: host table holds %T, want *fleetv1.Host", id, v)
	}
	return h, nil
}
