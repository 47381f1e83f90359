package links

import (
	"fmt"

	"github.com/lovoo/goka"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// NewView returns a goka view of the links table. Run it, then read
// through a Reader.
func NewView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return goka.NewView(brokers, goka.GroupTable(Group(topics)), kafka.ProtoCodec[fleetv1.EntityLinks, *fleetv1.EntityLinks]{}, opts...)
}

// Reader reads one entity's links from a view of the links table.
type Reader struct {
	view *goka.View
}

// NewReader reads from view, which must come from NewView.
func NewReader(view *goka.View) *Reader { return &Reader{view: view} }

// Links returns the active links from and to the entity id: those it
// declares that hold, then (unless it is deleted) those others declare to
// it, as far as it remembers them (see MaxIncoming). An unknown id has
// none.
func (r *Reader) Links(id string) ([]*fleetv1.Link, error) {
	v, err := r.view.Get(id)
	if err != nil {
		return nil, fmt.Errorf("read links of %s from the links table: %w", id, err)
	}
	if v == nil {
		return nil, nil
	}
	e, ok := v.(*fleetv1.EntityLinks)
	if !ok {
		return nil, fmt.Errorf("read links of %s: links table holds %T, want *fleetv1.EntityLinks", id, v)
	}
	return current(e), nil
}

// Recovered reports whether the view has caught up with the table.
func (r *Reader) Recovered() bool { return r.view.Recovered() }

func current(e *fleetv1.EntityLinks) []*fleetv1.Link {
	var out []*fleetv1.Link
	for _, l := range e.GetOutgoing() {
		if l.GetStatus() == fleetv1.LinkStatus_LINK_STATUS_ACTIVE {
			out = append(out, &fleetv1.Link{From: proto.CloneOf(e.GetEntity()), Relation: l.GetRelation(), To: proto.CloneOf(l.GetTo()), Active: true})
		}
	}
	if e.GetDeleted() {
		return out
	}
	for _, in := range e.GetIncoming() {
		out = append(out, &fleetv1.Link{From: proto.CloneOf(in.GetFrom()), Relation: in.GetRelation(), To: proto.CloneOf(e.GetEntity()), Active: true})
	}
	return out
}
