package checks

import (
	"fmt"

	"github.com/lovoo/goka"
	"google.golang.org/protobuf/proto"

	"github.com/fleetstream/fleetstream/internal/kafka"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

// NewView returns a goka view of the continuous evaluation table. Run it,
// then read through a Reader.
func NewView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return goka.NewView(brokers, goka.GroupTable(Group(topics)), kafka.ProtoCodec[fleetv1.ChecksTarget, *fleetv1.ChecksTarget]{}, opts...)
}

// NewExecutionsView returns a goka view of the executions table.
func NewExecutionsView(brokers []string, topics kafka.Topics, opts ...goka.ViewOption) (*goka.View, error) {
	return goka.NewView(brokers, goka.GroupTable(ExecutionsGroup(topics)), kafka.ProtoCodec[fleetv1.ExecutionsTable, *fleetv1.ExecutionsTable]{}, opts...)
}

// Reader reads targets and executions from views of the two tables.
type Reader struct {
	targets, executions *goka.View
}

// NewReader reads from views made by NewView and NewExecutionsView.
func NewReader(targets, executions *goka.View) *Reader {
	return &Reader{targets: targets, executions: executions}
}

// Target returns a target's checks status and its member hosts (a
// cluster's), or nil when nothing is known of id.
func (r *Reader) Target(id string) (*fleetv1.ChecksStatus, []string, error) {
	v, err := r.targets.Get(id)
	if err != nil {
		return nil, nil, fmt.Errorf("read checks of %s from the checks table: %w", id, err)
	}
	t, ok := v.(*fleetv1.ChecksTarget)
	if v == nil || !ok || t.GetStatus().GetTargetType() == "" {
		return nil, nil, nil
	}
	var members []string
	for _, m := range t.GetMembers() {
		members = append(members, m.GetHostId())
	}
	return proto.CloneOf(t.GetStatus()), members, nil
}

// Executions returns a target group's running and last executions, or nil
// when it never had one.
func (r *Reader) Executions(groupID string) (*fleetv1.ExecutionGroup, error) {
	v, err := r.executions.Get(groupID)
	if err != nil {
		return nil, fmt.Errorf("read executions of %s from the executions table: %w", groupID, err)
	}
	t, ok := v.(*fleetv1.ExecutionsTable)
	if v == nil || !ok {
		return nil, nil
	}
	return t.GetGroup(), nil
}

// Recovered reports whether both views caught up with their tables.
func (r *Reader) Recovered() bool { return r.targets.Recovered() && r.executions.Recovered() }
